#!/bin/sh
# Plugs a NIC into a running LC: a veth pair whose host end joins the bridge and whose other end moves
# into the LC's network namespace with its name, MAC and addresses.
#
# usage: lxc-nic.sh PID NAME MAC BRIDGE HOST_IFNAME ADDRESSES
#   PID: any process of the LC (its init); ADDRESSES: comma-separated CIDRs, or "-" for none.
set -eu
pid=$1 name=$2 mac=$3 bridge=$4 host=$5 addresses=$6
peer="p$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
in_lc() { nsenter -t "$pid" -n -- "$@"; }

ip link del "$host" 2>/dev/null || true
ip link add "$host" type veth peer name "$peer"
trap 'ip link del "$host" 2>/dev/null || true' EXIT
[ -e "/proc/sys/net/ipv6/conf/$host/disable_ipv6" ] && echo 1 > "/proc/sys/net/ipv6/conf/$host/disable_ipv6"
ip link set "$peer" netns "/proc/$pid/ns/net"
in_lc ip link set "$peer" name "$name" address "$mac"
if [ "$addresses" != "-" ]; then
  for address in $(echo "$addresses" | tr ',' ' '); do in_lc ip addr add "$address" dev "$name"; done
fi
in_lc ip link set "$name" up
ip link set "$host" master "$bridge" up
trap - EXIT
