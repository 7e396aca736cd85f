#!/usr/bin/env bash
# Write through a live overlay ($1) every kind of change the kernel keeps in an upper dir.
set -eu
cd "$1"
printf 'new file\n' > 'new file with spaces'
printf 'line\n' > "$(printf 'new\nline')"
printf 'ünïcode\n' > 'näme-ü'
head -c 300000 /dev/urandom > big
truncate -s 10M sparse && printf 'tail' | dd of=sparse bs=1 seek=5000000 conv=notrunc status=none
ln big big-link
ln -s 'new file with spaces' symlink
mkfifo fifo
mknod chardev c 1 3
printf 'changed\n' >> modified
rm deleted
rm -r replaced && mkdir replaced && printf 'fresh\n' > replaced/fresh
mv renamed moved
chown 1234:5678 chowned
chmod 0600 chmodded
setfattr -n user.note -v kept modified 2>/dev/null || true
mkdir -p deep/a/b && printf 'deep\n' > deep/a/b/c
