#!/bin/bash
# Supervisor of one logical computer (namespace driver). Runs detached from the manager, so LCs outlive
# manager restarts. Boots the LC, and boots it again when the LC asks for a reboot from inside:
# reboot(2) in a PID namespace kills its init with SIGHUP (restart) or SIGINT (halt / power off), and
# `unshare --fork` passes that signal on, so the exit status here is 128+1 or 128+2.
#
# usage: lc-supervise.sh RUNDIR NETNS CGROUP_PROCS_FILES -- BOOT_ARGS...
#   RUNDIR              runtime dir of the LC (state, pids, console.log, control/)
#   NETNS               name of the LC's network namespace (/run/netns/NETNS)
#   CGROUP_PROCS_FILES  ':'-separated cgroup.procs / tasks files the LC's processes join
#   BOOT_ARGS           passed to lc-boot.sh
# Files it keeps in RUNDIR: supervisor.pid, boot.pid (pid of `unshare`, whose child is the init),
# state (booting|rebooting|stopped|crashed), reboots, last-exit, booted-at.
set -u
rundir=$1 netns=$2 cgfiles=$3
shift 4
here=$(dirname "$(readlink -f "$0")")
# The capabilities the LC never gets (lc-caps.sh): dropped from the bounding set (and the inheritable
# set) of everything the boot starts.
. "$here/lc-caps.sh"

write() { printf '%s\n' "$2" > "$rundir/$1.tmp" && mv -f "$rundir/$1.tmp" "$rundir/$1"; }

write supervisor.pid "$$"
write reboots 0
reboots=0
while :; do
  rm -f "$rundir/control/booted"
  write state booting
  write booted-at "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"
  (
    IFS=:
    for f in $cgfiles; do echo "$BASHPID" > "$f"; done
    exec setpriv --inh-caps=-all --bounding-set="$lc_dropped_caps" -- \
      nsenter --net="/run/netns/$netns" -- \
      unshare --pid --fork --mount --uts --ipc --propagation private -- "$here/lc-boot.sh" "$@"
  ) >> "$rundir/console.log" 2>&1 < /dev/null &
  child=$!
  write boot.pid "$child"
  wait "$child"
  rc=$?
  write last-exit "$rc"
  echo "[understudy] init ended with status $rc" >> "$rundir/console.log"
  if [ -e "$rundir/stop-requested" ]; then break; fi
  if [ "$rc" -eq 129 ] && [ ! -e "$rundir/no-reboot" ]; then
    reboots=$((reboots + 1))
    write reboots "$reboots"
    write state rebooting
    continue
  fi
  break
done
rm -f "$rundir/boot.pid" "$rundir/control/booted"
if [ -e "$rundir/stop-requested" ] || [ "$rc" -eq 130 ] || [ "$rc" -eq 0 ]; then
  write state stopped
else
  write state crashed
fi
rm -f "$rundir/supervisor.pid"
