#!/usr/bin/env bash
# The unit tests (tests/unit, pytest, no root needed) on one ansible-core:
#
#   scripts/units.sh            ansible-core 2.19 on Python 3.11 (.venv)
#   scripts/units.sh --newest   the newest ansible-core on Python 3.13 (.venv-newest)
#
# Extra arguments go to pytest. The whole suite's pytest stage runs them on
# .venv together with the integration tests; this runs them alone.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
    local venv=$VENV
    if [[ ${1:-} == --newest ]]; then
        venv=$VENV_NEWEST
        shift
    fi
    [[ -x $venv/bin/pytest ]] || die "no $venv/bin/pytest; run scripts/bootstrap.sh"
    [[ -e $CACHE/pythonpath/ansible_collections/overlayfs/mounts ]] || die "run scripts/collection.sh first"
    log "pytest tests/unit with ansible-core $("$venv/bin/python" -c 'import ansible; print(ansible.__version__)') on Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')"
    cd "$ROOT"
    PYTHONPATH="$CACHE/pythonpath${PYTHONPATH:+:$PYTHONPATH}" "$venv/bin/pytest" -q -p no:cacheprovider tests/unit "$@"
}

main "$@"
