#!/bin/bash
# Runs a command inside a running logical computer, inside its cgroups (so its limits apply).
# usage: lc-exec.sh CGROUP_PROCS_FILES INIT_PID COMMAND [ARGS]...
set -eu
here=$(dirname "$(readlink -f "$0")")
. "$here/lc-caps.sh"
cgfiles=$1 initpid=$2
shift 2
IFS=:
for f in $cgfiles; do echo "$$" > "$f"; done
unset IFS
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
  setpriv --inh-caps=-all --bounding-set="$lc_dropped_caps" -- \
  nsenter --target "$initpid" --mount --uts --ipc --net --pid --root --wd -- "$@"
