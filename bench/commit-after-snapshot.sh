#!/usr/bin/env bash
# What a commit inside the hold costs, and why it grows with the files: on one fresh pool (mounted
# noatime, as the host's pools are) with a 1,000-file and a 1,000,000-file subvolume, each holding a
# 64 MiB log, every round writes what the final-sync bench writes inside its hold — 100 records
# appended to the log, one file rewritten in one directory and one created in another, each fsynced
# — and then times one commit of the pool, in one of three ways:
#   snapshot  `btrfs subvolume snapshot -r` (the cut of today's final sync);
#   commit    `btrfs filesystem sync` (a plain transaction commit: what any cut that reads the
#             source through btrfs send needs, since send reads the last committed tree);
# each either after a read-only base snapshot taken just before the writes (`shared`: the state
# of a final sync, whose source shares its tree with the base of the last pass) or with none
# (`alone`). Rounds are interleaved; it prints each case's times (microseconds, sorted) and median,
# and judges each pair of rows flat (the 1,000,000-file median within 120 % of the 1,000-file one).
# Usage: bench/commit-after-snapshot.sh [rounds] (as root, a quiet machine; about 1 minute with 9).
set -eu
rounds=${1:-9}
id=commitsnap$$
img=/tmp/$id.img
mnt=/tmp/$id.mnt
dev=
cleanup() {
  umount "$mnt" 2>/dev/null || true
  if [ -n "$dev" ]; then losetup -d "$dev" 2>/dev/null || true; fi
  rm -rf "$img" "$mnt" "/tmp/$id.times"
}
trap cleanup EXIT
truncate -s 8G "$img"
dev=$(losetup -f --show "$img")
mkfs.btrfs -q "$dev" 2>/dev/null
mkdir -p "$mnt"
mount -o noatime "$dev" "$mnt"
for s in small big; do btrfs -q subvolume create "$mnt/$s"; done
python3 - "$mnt" <<'PY'
import os, sys
m = sys.argv[1]
for name, n in (("small", 1000), ("big", 1000000)):
    for i in range(n):
        d = f"{m}/{name}/d{i // 1000:04d}"
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        fd = os.open(f"{d}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"x" * 100)
        os.close(fd)
    with open(f"{m}/{name}/log", "wb") as f:
        f.write(b"r" * (64 << 20))
PY
btrfs filesystem sync "$mnt"

# The writes of one round inside the hold, into subvolume $1, round $2 (other directories each round).
hold_writes() {
  python3 - "$mnt/$1" "$2" <<'PY'
import os, sys
root, r = sys.argv[1], int(sys.argv[2])
fd = os.open(root + "/log", os.O_WRONLY | os.O_APPEND)
for i in range(100):
    os.write(fd, b"record %d\n" % i)
    os.fsync(fd)
os.close(fd)
dirs = sorted(x for x in os.listdir(root) if x.startswith("d"))
d1, d2 = dirs[(r * 7) % len(dirs)], dirs[(r * 13 + 3) % len(dirs)]
first = sorted(os.listdir(os.path.join(root, d1)))[0]
fd = os.open(os.path.join(root, d1, first), os.O_WRONLY)
os.write(fd, b"rewritten %d" % r)
os.fsync(fd)
os.close(fd)
fd = os.open(os.path.join(root, d2, "new%d" % r), os.O_CREAT | os.O_WRONLY)
os.write(fd, b"new")
os.fsync(fd)
os.close(fd)
PY
}

# One measurement: subvolume $1, round $2, operation $3 (snapshot|commit), base $4 (shared|alone).
one() {
  local s=$1 r=$2 op=$3 base=$4 t0 t1
  if [ "$base" = shared ]; then btrfs -q subvolume snapshot -r "$mnt/$s" "$mnt/$s.base"; fi
  btrfs filesystem sync "$mnt"
  hold_writes "$s" "$r"
  if [ "$op" = snapshot ]; then
    t0=$(date +%s%N)
    btrfs -q subvolume snapshot -r "$mnt/$s" "$mnt/$s.cut"
    t1=$(date +%s%N)
    btrfs -q subvolume delete "$mnt/$s.cut"
  else
    t0=$(date +%s%N)
    btrfs filesystem sync "$mnt"
    t1=$(date +%s%N)
  fi
  if [ "$base" = shared ]; then btrfs -q subvolume delete "$mnt/$s.base"; fi
  # Nothing of this round left to the next: the deletions dropped by the cleaner, all committed.
  btrfs filesystem sync "$mnt"
  btrfs subvolume sync "$mnt" >/dev/null
  echo "$op-$base-$s $(((t1 - t0) / 1000))"
}

for r in $(seq 1 "$rounds"); do
  for op in snapshot commit; do
    for base in shared alone; do
      one small "$r" "$op" "$base"
      one big "$r" "$op" "$base"
    done
  done
done >"/tmp/$id.times"

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
verdict=PASS
for op in snapshot commit; do
  for base in shared alone; do
    for s in small big; do
      times=$(grep "^$op-$base-$s " "/tmp/$id.times" | awk '{print $2}' | sort -n | tr '\n' ' ')
      echo "$op $base $s us: $times(median $(echo "$times" | tr ' ' '\n' | grep . | median))"
    done
    small=$(grep "^$op-$base-small " "/tmp/$id.times" | awk '{print $2}' | median)
    big=$(grep "^$op-$base-big " "/tmp/$id.times" | awk '{print $2}' | median)
    ratio=$((big * 100 / small))
    if [ "$ratio" -le 120 ]; then flat=PASS; else
      flat=FAIL
      [ "$base" = shared ] && verdict=FAIL
    fi
    echo "  $op after writes, base $base: 1,000,000 files at $ratio % of 1,000: $flat flat (within 120 %)"
  done
done
echo "a commit inside the hold of a final sync (base shared): $verdict flat"
