#!/usr/bin/env bash
# Times `btrfs subvolume snapshot -r` of a 1,000-file and a 1,000,000-file subvolume of one fresh pool
# (mounted noatime, as the host's pools are), each after 3 writes fsynced as a service acknowledges
# them and with the cleaner done, rounds interleaved; prints each subvolume's root node (level and
# children) and the sorted times in microseconds. Usage: bench/snapshot-tree.sh (as root, a quiet machine).
set -eu
id=snaptree$$
img=/tmp/$id.img; mnt=/tmp/$id.mnt
cleanup() { umount "$mnt" 2>/dev/null || true; [ -n "${dev:-}" ] && losetup -d "$dev" 2>/dev/null || true; rm -rf "$img" "$mnt"; }
trap cleanup EXIT
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
  t0=$(date +%s%N); btrfs -q subvolume snapshot -r "$mnt/$s" "$mnt/$s.snap"; t1=$(date +%s%N)
  echo "$s $(( (t1 - t0) / 1000 ))"
  btrfs -q subvolume delete "$mnt/$s.snap"; btrfs filesystem sync "$mnt"; btrfs subvolume sync "$mnt" >/dev/null; btrfs filesystem sync "$mnt"
}
for r in $(seq 1 15); do time_snap small; time_snap big; done > /tmp/$id.times
for s in small big; do echo "$s snapshot us: $(grep "^$s " /tmp/$id.times | awk '{print $2}' | sort -n | tr '\n' ' ')"; done
rm -f /tmp/$id.times
