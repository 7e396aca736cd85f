#!/usr/bin/env bash
# A lower layer ($1) with what write_cases.sh changes.
set -eu
mkdir -p "$1/replaced/sub" "$1/renamed/inner" "$1/kept"
printf 'lower\n' > "$1/modified"
printf 'gone\n' > "$1/deleted"
printf 'old\n' > "$1/replaced/old"
printf 'sub\n' > "$1/replaced/sub/file"
printf 'moved data\n' > "$1/renamed/inner/data"
printf 'owner changes\n' > "$1/chowned"
printf 'mode changes\n' > "$1/chmodded"
printf 'untouched\n' > "$1/kept/file"
