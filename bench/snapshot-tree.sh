#!/usr/bin/env bash
# Times `btrfs subvolume snapshot -r` of a 1,000-file and a 1,000,000-file subvolume of one fresh pool
# (mounted noatime, as the host's pools are), each after 3 writes fsynced as a service acknowledges
# them and with the cleaner done, rounds interleaved; prints each subvolume's root node (level and
# children) and the sorted times in microseconds. Usage: bench/snapshot-tree.sh (as root, a quiet machine).
# With --events, each snapshot runs under `perf stat -a -e 'btrfs:*'` instead (5 rounds; the times then
# include perf's start and mean nothing) and the btrfs events of round 3 are printed per size.
set -eu
events=false
[ "${1:-}" = --events ] && events=true
id=snaptree$$
tracefs=
img=/tmp/$id.img; mnt=/tmp/$id.mnt
cleanup() { [ -n "$tracefs" ] && umount "$tracefs"; rm -f /tmp/$id.perf.*; umount "$mnt" 2>/dev/null || true; [ -n "${dev:-}" ] && losetup -d "$dev" 2>/dev/null || true; rm -rf "$img" "$mnt"; }
trap cleanup EXIT
if $events && [ -z "$(ls -A /sys/kernel/tracing)" ]; then mount -t tracefs nodev /sys/kernel/tracing; tracefs=/sys/kernel/tracing; fi
truncate -s 8G "$img"; dev=$(losetup -f --show "$img"); mkfs.btrfs -q "$dev"; mkdir -p "$mnt"; mount -o noatime "$dev" "$mnt"
for s in small big; do btrfs -q subvolume create "$mnt/$s"; done
python3 - "$mnt" <<'PY'
import os, sys
m = sys.argv[1]
for name, n in (("small", 1000), ("big", 1000000)):
    for i in range(n):
        d = f"{m}/{name}/d{i // 1000:04d}"
        if i % 1000 == 0: os.makedirs(d, exist_ok=True)
        fd = os.open(f"{d}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b"x" * 100); os.close(fd)
PY
btrfs filesystem sync "$mnt"
umount "$mnt"
for s in 256 257; do echo "== subvol $s root node:"; btrfs inspect-internal dump-tree -t $s "$dev" 2>/dev/null | grep -m1 -E "^(node|leaf) " || true; done
mount -o noatime "$dev" "$mnt"
time_snap() { # $1 subvol
  local s=$1 t0 t1
  for k in 1 2 3; do dd if=/dev/urandom of="$mnt/$s/d0000/w$k" bs=4k count=1 conv=fsync status=none; done
  local snap=(btrfs -q subvolume snapshot -r "$mnt/$s" "$mnt/$s.snap")
  if $events; then snap=(perf stat -x, -o "/tmp/$id.perf.$s.$r" -a -e 'btrfs:*' -- "${snap[@]}"); fi
  t0=$(date +%s%N); "${snap[@]}"; t1=$(date +%s%N)
  echo "$s $(( (t1 - t0) / 1000 ))"
  btrfs -q subvolume delete "$mnt/$s.snap"; btrfs filesystem sync "$mnt"; btrfs subvolume sync "$mnt" >/dev/null; btrfs filesystem sync "$mnt"
}
rounds=15
$events && rounds=5
for r in $(seq 1 "$rounds"); do time_snap small; time_snap big; done > /tmp/$id.times
for s in small big; do echo "$s snapshot us: $(grep "^$s " /tmp/$id.times | awk '{print $2}' | sort -n | tr '\n' ' ')"; done
rm -f /tmp/$id.times
if $events; then
  for s in small big; do
    echo "== $s: btrfs events during the snapshot (round 3)"
    grep -v '^#' "/tmp/$id.perf.$s.3" | awk -F, '$1 + 0 > 0 {print $1, $3}' | sort -k1 -n -r | head -25
  done
fi
