#!/usr/bin/env bash
# Run examples/demo.yml against this machine, in a private mount namespace so
# the overlay mounts it makes vanish when it ends and the host never sees them.
# Needs root. Extra arguments go to ansible-playbook (e.g. -v, --check).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/bootstrap.sh"
"$ROOT/scripts/collection.sh" >/dev/null
use_venv

PLAYBOOK="$ROOT/examples/demo.yml"
[[ -f $PLAYBOOK ]] || die "missing $PLAYBOOK"

cd "$ROOT"
# Only our freshly installed collection (plus the extracted ones) on the path.
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR"
# Interpreter discovery can pick a pyenv shim that does not run: name it.
exec unshare --mount --propagation private \
    "$VENV/bin/ansible-playbook" -i localhost, -c local \
    -e ansible_python_interpreter="$VENV/bin/python" \
    "$PLAYBOOK" "$@"
