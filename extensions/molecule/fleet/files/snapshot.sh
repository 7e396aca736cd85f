#!/bin/sh
# What a drift report must not change on a host: fstab, unit files and boot
# links, modules-load.d, every path below /srv (type, size, link target), the
# overlay lines of mountinfo (ids, layers, options) and the mount units'
# states. Prints it; the scenario compares two runs (and takes the overlay
# mount points from the lines starting with overlay-target).
set -eu
echo "## fstab"
sha1sum /etc/fstab
echo "## units and modules-load.d"
find /etc/systemd/system /etc/modules-load.d -printf '%p %y %l\n' | LC_ALL=C sort
find /etc/systemd/system /etc/modules-load.d -type f -exec sha1sum {} + | LC_ALL=C sort
echo "## /srv"
find /srv -printf '%p %y %s %l\n' | LC_ALL=C sort
echo "## overlay mount points"
findmnt --raw --noheadings --types overlay --output TARGET | sed 's/^/overlay-target /'
echo "## mountinfo"
grep -F -- ' - overlay ' /proc/self/mountinfo || true
echo "## mount units"
systemctl list-units --all --type=mount --plain --no-legend --no-pager | grep -F srv- || true
