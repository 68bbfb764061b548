#!/bin/bash
# Boots a logical computer. Runs as PID 1 of a new PID namespace, in new mount, UTS and IPC namespaces
# and in the LC's network namespace. Mounts the disks, /proc, /sys, /dev and the control channel under
# the root filesystem, pivots into it and hands over to the image's own init.
#
# usage: lc-boot.sh ROOTFS HOSTNAME CONTROL_DIR [SOURCE TARGET]...
#   SOURCE TARGET pairs: host directories (the other disks) bind-mounted at TARGET inside the LC.
set -eu
root=$1 name=$2 control=$3
shift 3

mount --make-rprivate /
mount --bind "$root" "$root"
while [ $# -ge 2 ]; do
  mkdir -p "$root$2"
  mount --bind "$1" "$root$2"
  shift 2
done
mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
# /proc/sys and /proc/sysrq-trigger read-only (the kernel's settings and the magic SysRq key belong to
# the host). The LC keeps CAP_SYS_ADMIN (docs/logical-computers.md), so this stops writes, not a root
# that remounts them.
for ro in sys sysrq-trigger; do
  [ -e "$root/proc/$ro" ] || continue
  mount --bind "$root/proc/$ro" "$root/proc/$ro"
  mount -o remount,bind,ro,nosuid,nodev,noexec "$root/proc/$ro"
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o mode=755,nosuid,size=1m devfs "$root/dev"
for dev in null zero full random urandom tty; do
  touch "$root/dev/$dev"
  mount --bind "/dev/$dev" "$root/dev/$dev"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
ln -sf pts/ptmx "$root/dev/ptmx"
ln -sf /proc/self/fd "$root/dev/fd"
mount -t tmpfs -o nosuid,nodev,size=64m shm "$root/dev/shm"
mount -t tmpfs -o mode=755,nosuid,nodev,size=16m run "$root/run"
mkdir -p "$root/run/understudy"
mount --bind "$control" "$root/run/understudy"
hostname "$name"

cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
# From here on only the image's own programs are reachable.
umount -l /.oldroot
rmdir /.oldroot 2>/dev/null || true
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=linux
exec /sbin/init
