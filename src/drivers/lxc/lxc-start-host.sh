#!/bin/sh
# LXC start-host hook of an LC, run on the host on every boot, after the LC's namespaces exist and
# before its init starts. It records the boot, clears the "booted" mark of the previous boot, sets the
# LC's network defaults and plugs in the NICs listed in LC_DIR/nics (one per line: NAME MAC BRIDGE
# HOST_IFNAME ADDRESSES), so NICs added or moved at run time survive a reboot.
# A second boot within one lxc-start (LXC restarting the LC in-process after a reboot from inside) is
# refused and left to the supervisor (lxc-supervise.sh), which starts the LC afresh.
#
# usage (from lxc.hook.start-host): lxc-start-host.sh LC_DIR [lxc appends: NAME lxc start-host]
set -eu
dir=$1
pid=${LXC_PID:?LXC_PID is not set: run only as an LXC start-host hook}
here=$(dirname "$0")

if [ -e "$dir/started" ]; then
  touch "$dir/restart"
  echo "reboot: the supervisor starts the LC again" >&2
  exit 1
fi
touch "$dir/started"
rm -f "$dir/control/booted"
date -u +%Y-%m-%dT%H:%M:%S.%3NZ >> "$dir/boots"
nsenter -t "$pid" -n -- sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
  net.ipv4.conf.all.promote_secondaries=1 net.ipv4.conf.default.promote_secondaries=1
nsenter -t "$pid" -n -- ip link set lo up
if [ -f "$dir/nics" ]; then
  while read -r name mac bridge host addresses; do
    [ -n "$name" ] || continue
    "$here/lxc-nic.sh" "$pid" "$name" "$mac" "$bridge" "$host" "$addresses"
  done < "$dir/nics"
fi
