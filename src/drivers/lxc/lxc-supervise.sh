#!/bin/sh
# Supervises one LXC LC, detached from the manager: runs `lxc-start -F` and starts it again when the
# LC rebooted itself. LXC's own in-process restart after a reboot loses the idmap of the root
# filesystem (every file then shows as nobody), so the start-host hook refuses a second boot within one
# lxc-start (it leaves LC_DIR/restart) and the LC is started afresh here instead.
#
# usage: lxc-supervise.sh LXC_PATH CONTAINER LC_DIR
set -u
lxcpath=$1 name=$2 dir=$3
echo $$ > "$dir/supervisor.pid"
rm -f "$dir/crashed"
while :; do
  rm -f "$dir/restart" "$dir/started"
  lxc-start -F -P "$lxcpath" -n "$name" < /dev/null > /dev/null 2>> "$dir/supervisor.log"
  code=$?
  if [ -e "$dir/restart" ] && [ ! -e "$dir/stop-requested" ]; then
    echo "[understudy] $(date -u +%Y-%m-%dT%H:%M:%SZ) the LC rebooted itself: starting it again" >> "$dir/console.log"
    continue
  fi
  # An LC that ended without being asked to is recorded as crashed when lxc-start failed or when its init
  # died without the orderly shutdown that takes the "booted" mark back (lxc-start exits 0 even when the
  # init was killed).
  if [ ! -e "$dir/stop-requested" ] && { [ "$code" -ne 0 ] || [ -e "$dir/control/booted" ]; }; then
    echo "lxc-start exited with $code at $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$dir/crashed"
  fi
  break
done
rm -f "$dir/supervisor.pid" "$dir/restart" "$dir/started"
