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
while :; do
  rm -f "$dir/restart" "$dir/started"
  lxc-start -F -P "$lxcpath" -n "$name" < /dev/null > /dev/null 2>> "$dir/supervisor.log"
  [ -e "$dir/restart" ] && [ ! -e "$dir/stop-requested" ] || break
  echo "[understudy] $(date -u +%Y-%m-%dT%H:%M:%SZ) the LC rebooted itself: starting it again" >> "$dir/console.log"
done
rm -f "$dir/supervisor.pid" "$dir/restart" "$dir/started"
