#!/usr/bin/env bash
# Compile the code that runs on managed hosts (plugins/modules and
# plugins/module_utils) with the oldest target Python the README names: 3.9,
# Debian 11's own, in the localhost/debian-systemd:11 image that
# scripts/build-image.sh makes (built here if missing). ansible-test's
# compile and import tests cover 3.11 to 3.13 (scripts/sanity.sh); no 3.9
# interpreter exists on the host itself. The molecule persist scenario also
# runs the modules on that Python for real.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE=localhost/debian-systemd:11

main() {
    "$ROOT/scripts/build-image.sh" 11 >&2
    log "compiling plugins/modules and plugins/module_utils with $IMAGE's python3"
    podman run --rm --network=none -v "$ROOT/plugins:/src:ro" "$IMAGE" python3 -c '
import os, sys
count = 0
for top in ("/src/modules", "/src/module_utils"):
    for base, dirs, files in os.walk(top):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(base, name)
                with open(path, "rb") as handle:
                    compile(handle.read(), path, "exec", dont_inherit=True)
                count += 1
print("Python %s compiled %d files" % (sys.version.split()[0], count))
'
}

main "$@"
