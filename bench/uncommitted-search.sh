#!/usr/bin/env bash
# Can the changes since a snapshot be found without a commit? On a fresh pool, after a read-only
# snapshot `pre` of a 300-file subvolume, three changes are made and fsynced — a chmod, a new file
# written in a directory, 8,000 bytes appended to a file — and the subvolume's uncommitted tree is
# searched (BTRFS_IOC_TREE_SEARCH_V2, leaves newer than pre's generation), then searched again after
# `btrfs filesystem sync` (a commit). Prints, per change, what each search saw and says whether the
# search without a commit saw every change. Usage: bench/uncommitted-search.sh (as root; a few seconds).
set -eu
. "$(dirname "$0")/fresh-pool.sh"
fresh_pool uncommitted$$ 1G
btrfs -q subvolume create "$mnt/live"
for i in $(seq 1 300); do echo x >"$mnt/live/f$i"; done
mkdir "$mnt/live/dir"
btrfs filesystem sync "$mnt"
btrfs -q subvolume snapshot -r "$mnt/live" "$mnt/pre"
btrfs filesystem sync "$mnt"
gen=$(btrfs subvolume show "$mnt/pre" | awk '/Generation:/ {print $2}')
python3 - "$mnt/live" <<'PY'
import os, sys
live = sys.argv[1]
os.chmod(live + "/f100", 0o600)
fd = os.open(live + "/dir/new", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"new")
os.fsync(fd)
os.close(fd)
fd = os.open(live + "/f200", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"appended" * 1000)
os.fsync(fd)
os.close(fd)
PY
probe() {
  python3 - "$mnt/live" "$((gen + 1))" "$1" <<'PY'
import fcntl, os, struct, sys
live, min_transid, when = sys.argv[1], int(sys.argv[2]), sys.argv[3]
TREE_SEARCH_V2 = 0xC0709411  # _IOWR(0x94, 17, struct btrfs_ioctl_search_args_v2)
INODE_ITEM, DIR_INDEX, EXTENT_DATA = 1, 96, 108

def items(ino):
    """(type, offset, data) of every item of inode `ino` in leaves newer than min_transid."""
    key = struct.pack("=7Q4I4Q", 0, ino, ino, 0, 2**64 - 1, min_transid, 2**64 - 1, 0, 255, 4096, 0, 0, 0, 0, 0)
    buf = bytearray(key + struct.pack("=Q", 1 << 16) + bytes(1 << 16))
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, TREE_SEARCH_V2, buf, True)
    finally:
        os.close(fd)
    count = struct.unpack_from("=I", buf, 7 * 8 + 2 * 4)[0]
    found, at = [], 112
    for _ in range(count):
        _, _, offset, kind, length = struct.unpack_from("=3Q2I", buf, at)
        found.append((kind, offset, bytes(buf[at + 32 : at + 32 + length])))
        at += 32 + length
    return found

def inode(ino):
    """(size, mode) of the inode item, or None."""
    for kind, _, data in items(ino):
        if kind == INODE_ITEM:
            size, mode = struct.unpack_from("=Q", data, 16)[0], struct.unpack_from("=I", data, 52)[0]
            return size, mode & 0o7777
    return None

ino = lambda name: os.lstat(os.path.join(live, name)).st_ino
checks = [
    ("chmod f100 0600", inode(ino("f100")) is not None and inode(ino("f100"))[1] == 0o600),
    ("dir/new written: its size 3", inode(ino("dir/new")) == (3, 0o644)),
    ("dir/new: its directory's index entry", any(k == DIR_INDEX for k, _, _ in items(ino("dir")))),
    ("f200 appended: its extents", any(k == EXTENT_DATA for k, _, _ in items(ino("f200")))),
    ("f200 appended: its size 8002", (inode(ino("f200")) or (0, 0))[0] == 8002),
]
for what, seen in checks:
    print(f"{when:>15}: {what:40} {'seen' if seen else 'NOT seen'}")
sys.exit(0 if all(seen for _, seen in checks) else 1)
PY
}
before=0
probe "without commit" || before=1
btrfs filesystem sync "$mnt"
after=0
probe "after a commit" || after=1
if [ "$before" = 0 ]; then
  echo "the uncommitted tree shows every change: a search could find them without a commit"
else
  echo "the uncommitted tree misses changes (delayed inode items and directory indexes): a commit is needed"
fi
[ "$after" = 0 ] || echo "unexpected: a change is missing even after the commit"
