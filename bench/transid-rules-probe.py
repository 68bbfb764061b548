#!/usr/bin/env python3
"""A probe, not product code: what a transid search sees of the changes a sync must carry.

A tracker that finds the changes since a pass by the items newer than its transaction
(bench/generation-hold.py) must tell, for each changed file, whether its new extents are all that
changed. On a fresh pool, after a commit (transaction T), each case below is made to one file, the
pool is committed again, and the subvolume's tree is searched for the items newer than T. Prints,
per case, the file's inode transid, its extent items newer than T, its name's directory entry
transid and its inode flags, and says which rule tells the case apart:
  - a hole punched in the middle of a file;
  - 4 KiB overwritten in a nocow file (chattr +C);
  - a file renamed over another name, then written;
  - 4 KiB overwritten in a file;
  - an extended attribute set;
  - a file truncated shorter;
  - a write through one of two hard links.
Each commit first writes out the data still in the page cache (BTRFS_IOC_SYNC, as syncfs(2)). With
--no-flush it does not: the buffered writes are then not in the tree at all (no new extent), and
a write within the same clock tick as the file's last change does not even give its inode a newer
transid, so a tracker must write out the buffered data before it searches; the run then says NO to
the cases it misses and exits 1.
Usage: python3 bench/transid-rules-probe.py [--no-flush] (as root; a few seconds).
"""
import fcntl, os, struct, subprocess, sys

TREE_SEARCH_V2 = 0xC0709411
START_SYNC, WAIT_SYNC, SYNC = 0x80089418, 0x40089416, 0x9408
INODE_ITEM, INODE_REF, DIR_ITEM, DIR_INDEX, EXTENT_DATA = 1, 12, 84, 96, 108
NODATACOW = 1 << 0


def run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def commit(path, flush=True):
    """Commits the pool; returns the transaction id. With `flush`, the data still in the page cache is
    written first (BTRFS_IOC_SYNC, as syncfs(2)); without, only a commit is started and waited for."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if flush:
            fcntl.ioctl(fd, SYNC)
        buf = bytearray(8)
        fcntl.ioctl(fd, START_SYNC, buf, True)
        fcntl.ioctl(fd, WAIT_SYNC, bytes(buf))
        return struct.unpack("=Q", buf)[0]
    finally:
        os.close(fd)


def search(path, min_transid, objectid):
    """(type, offset, data) of the items of `objectid` in leaves newer than min_transid."""
    fd = os.open(path, os.O_RDONLY)
    try:
        key = struct.pack("=7Q4I4Q", 0, objectid, objectid, 0, 2**64 - 1, min_transid, 2**64 - 1, 0, 255, 4096, 0, 0, 0, 0, 0)
        buf = bytearray(key + struct.pack("=Q", 1 << 16) + bytes(1 << 16))
        fcntl.ioctl(fd, TREE_SEARCH_V2, buf, True)
    finally:
        os.close(fd)
    count, at, found = struct.unpack_from("=I", buf, 64)[0], 112, []
    for _ in range(count):
        _, _, offset, kind, length = struct.unpack_from("=3Q2I", buf, at)
        found.append((kind, offset, bytes(buf[at + 32 : at + 32 + length])))
        at += 32 + length
    return found


def describe(live, name, since):
    """Inode transid, flags, nbytes; extents newer than `since`; the name's entry transid."""
    ino = os.lstat(os.path.join(live, name)).st_ino
    items = search(live, 0, ino)
    inode = next(d for k, _, d in items if k == INODE_ITEM)
    transid, nbytes, flags = struct.unpack_from("=Q", inode, 8)[0], struct.unpack_from("=Q", inode, 24)[0], struct.unpack_from("=Q", inode, 64)[0]
    extents = []
    for kind, offset, data in items:
        if kind == EXTENT_DATA and struct.unpack_from("=Q", data, 0)[0] > since:
            extents.append((offset, struct.unpack_from("=Q", data, 45)[0] if data[20] else len(data) - 21))
    entry = None
    for kind, _, data in search(live, 0, 256):  # the top directory's entries
        if kind == DIR_INDEX and data[30 : 30 + struct.unpack_from("=H", data, 27)[0]].decode() == name:
            entry = struct.unpack_from("=Q", data, 17)[0]
    return {"transid": transid, "nbytes": nbytes, "nocow": bool(flags & NODATACOW), "new extents": extents, "entry transid": entry}


img, mnt = f"/tmp/probe{os.getpid()}.img", f"/tmp/probe{os.getpid()}.mnt"
run("truncate", "-s", "1G", img)
dev = subprocess.run(["losetup", "-f", "--show", img], check=True, capture_output=True, text=True).stdout.strip()
try:
    run("mkfs.btrfs", "-q", dev)
    os.makedirs(mnt)
    run("mount", "-o", "noatime", dev, mnt)
    live = f"{mnt}/live"
    run("btrfs", "subvolume", "create", live)
    block = os.urandom(256 << 10)
    for name in ("punched", "overwritten", "renamed-over", "moved", "xattr", "truncated", "linked"):
        with open(f"{live}/{name}", "wb") as f:
            f.write(block)
    open(f"{live}/nocow", "wb").close()
    run("chattr", "+C", f"{live}/nocow")
    with open(f"{live}/nocow", "wb") as f:
        f.write(block)
    os.link(f"{live}/linked", f"{live}/linked-too")
    flush = sys.argv[1:] != ["--no-flush"]
    since = commit(mnt, flush)
    before = {name: describe(live, name, since) for name in ("punched", "nocow", "overwritten", "xattr", "truncated", "linked", "moved")}

    run("fallocate", "--punch-hole", "--offset", "65536", "--length", "65536", f"{live}/punched")
    for name in ("nocow", "overwritten"):
        fd = os.open(f"{live}/{name}", os.O_WRONLY)
        os.pwrite(fd, b"y" * 4096, 131072)
        os.close(fd)
    os.replace(f"{live}/moved", f"{live}/renamed-over")
    fd = os.open(f"{live}/renamed-over", os.O_WRONLY)
    os.pwrite(fd, b"z" * 4096, 0)
    os.close(fd)
    os.setxattr(f"{live}/xattr", "user.probe", b"1")
    os.truncate(f"{live}/truncated", 100000)
    fd = os.open(f"{live}/linked-too", os.O_WRONLY)
    os.pwrite(fd, b"w" * 4096, 0)
    os.close(fd)
    commit(mnt, flush)

    after = {name: describe(live, name, since) for name in ("punched", "nocow", "overwritten", "renamed-over", "xattr", "truncated", "linked")}
    print(f"T = {since}")
    for name, seen in after.items():
        was = before.get(name if name != "renamed-over" else "moved")
        print(f"{name:13} before {was}\n{'':13} after  {seen}")
    a = after
    verdicts = [
        ("punched: no new extent covers the hole; nbytes dropped",
         not any(o <= 65536 < o + n for o, n in a["punched"]["new extents"]) and a["punched"]["nbytes"] < before["punched"]["nbytes"]),
        ("nocow overwrite: no new extent, the inode's nocow flag set", not a["nocow"]["new extents"] and a["nocow"]["nocow"]),
        ("overwrite: a new extent over 128-132 KiB", any(o <= 131072 < o + n for o, n in a["overwritten"]["new extents"])),
        ("renamed over: its entry's transid is newer than T", (a["renamed-over"]["entry transid"] or 0) > since),
        ("xattr: the inode's transid is newer than T, no new extent", a["xattr"]["transid"] > since and not a["xattr"]["new extents"]),
        ("truncated: the inode's transid is newer than T", a["truncated"]["transid"] > since),
        ("hard link written: a new extent", bool(a["linked"]["new extents"])),
    ]
    for what, ok in verdicts:
        print(f"{'yes' if ok else 'NO ':3}  {what}")
    sys.exit(0 if all(ok for _, ok in verdicts) else 1)
finally:
    subprocess.run(["umount", mnt])
    subprocess.run(["losetup", "-d", dev])
    os.remove(img)
    os.rmdir(mnt)
