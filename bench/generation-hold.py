#!/usr/bin/env python3
"""A measurement, not product code: is a hold flat when no snapshot shares the disk's tree?

The final sync of a switch diffs the source against a base snapshot (`btrfs send -p`). Each base
shares the source's tree, so the service's last writes inside the hold copy shared tree nodes, and
the commit inside the hold writes the references that copying takes: both grow with the tree
(bench/commit-after-snapshot.sh). This script measures the other way to find what changed since the
last pass, which needs no snapshot at all: sync the pool (write out its buffered data, commit),
then search the source's tree for the items written after the last pass's transaction
(BTRFS_IOC_TREE_SEARCH_V2 with a minimum transid; the search skips every node older than it), and
copy those inodes' new extents into the target.

One pool per mode; in each, per row (1,000 files and 1,000,000 files of 100 bytes, in directories
of 1,000, plus a 64 MiB log) a source and a target filled alike (no block shared). The modes:
  - `unshared`: no snapshot of either side ever exists;
  - `shared`: a read-only snapshot of each side is taken after the catch-up pass and deleted (and
    dropped by the cleaner) after the hold, as the bases of today's final sync are;
  - `received`: the target is the initial copy as the live copy makes it: a read-only snapshot of
    the source sent whole (`btrfs send | btrfs receive`), the received subvolume made writable, the
    snapshot deleted and dropped by the cleaner before the rounds; no snapshot after that (does a
    tree once shared hold as flat as one never shared?);
  - `reflinked`: the target is a reflink copy of the source on the same pool (`cp -a
    --reflink=always`: a tree of its own, its file data the source's extents, shared), as a copy
    on one pool could make it instead of a writable snapshot of the source's cut; no snapshot ever;
  - `snapshotted`: the written side (the source of the syncs) is made as the live copy makes a
    standby's disk: a read-only snapshot of the filled tree sent whole and received, a second one
    sent incrementally onto it (received as a snapshot of the first), the disk a writable snapshot of
    that, every snapshot deleted and dropped before the rounds; the tree it was copied from is the
    target (a switch back's direction: the standby's disk serves and is synced back);
  - `fresh`: the same with the written side received whole (no incremental pass) and made
    writable: a tree that never shared a node (does a standby's disk made of snapshots hold slower
    than one of its own?);
  - `dropped`: the same bases, deleted and dropped by the cleaner before the hold instead; the hold
    cuts the source with a read-only snapshot (its commit) and, after the copy, snapshots the target
    (its commit; no fsync per file): the two snapshots are the next bases, so that a sync outside the
    hold can still diff against bases while nothing shares either tree inside it. The snapshots are
    made by the ioctl (BTRFS_IOC_SNAP_CREATE_V2), not by the `btrfs` program.
Rounds interleave the rows and the modes. (The modes need their own pools: on one pool, the unshared
rounds after shared ones were measured slower at 1,000,000 files, 140 % against 114 % alone.)
Each round: a catch-up change (50 files rewritten, 50 created, 10 deleted) and a catch-up pass (not
timed); then the hold, timed: the service's last writes (100 records appended to the log in one fsynced write, one file
rewritten and fsynced in one directory, one created in another) and the final sync (commit, search,
copy the new extents or the whole file, fsync what was written, check the copied bytes by hash).
At the end each target is compared with its source in full (`diff -r`), so a sync that missed
something fails the run. Prints medians per row, mode and phase and judges each mode's hold and
final sync flat (the 1,000,000-file row within 120 % of the 1,000-file row).
It omits what a product tracker needs: renames (an inode moved under another name), hard links,
extended attributes, nocow files (overwritten in place: their extents keep their transid), special
files, and recovery.
Usage: python3 bench/generation-hold.py [dir for the image, default /tmp] [rounds, default 9]
[files in the big row, default 1000000]
[modes, default unshared,shared; or received, reflinked, snapshotted, fresh, dropped]
(as root; about 20 minutes with both modes, 6 with one: filling and comparing the 1,000,000-file rows takes most of it).
"""
import fcntl, hashlib, os, shutil, struct, subprocess, sys, time

base_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
big = int(sys.argv[3]) if len(sys.argv) > 3 else 1000000
modes = sys.argv[4].split(",") if len(sys.argv) > 4 else ["unshared", "shared"]
MODES = {"unshared", "shared", "received", "reflinked", "snapshotted", "fresh", "dropped"}
assert modes and set(modes) <= MODES, f"modes: {', '.join(sorted(MODES))} (comma-separated)"

TREE_SEARCH_V2 = 0xC0709411  # _IOWR(0x94, 17, struct btrfs_ioctl_search_args_v2)
INO_LOOKUP = 0xD0009412  # _IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args)
START_SYNC = 0x80089418  # _IOR(0x94, 24, __u64): starts a commit, returns its transid
WAIT_SYNC = 0x40089416  # _IOW(0x94, 22, __u64)
SYNC = 0x9408  # _IO(0x94, 8): writes out delalloc, then commits
SNAP_CREATE_V2 = 0x50009417  # _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2), 4096 bytes
SUBVOL_RDONLY = 1 << 1
INODE_ITEM, INODE_REF, EXTENT_DATA = 1, 12, 108
FIRST_INO = 256


def run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def commit(path):
    """Writes out the pool's data still in the page cache and commits it (BTRFS_IOC_SYNC, as
    syncfs(2): a commit alone leaves that data out of the tree, and a search would miss it); returns
    the committed transaction's id (START_SYNC with nothing running returns the last committed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, SYNC)
        buf = bytearray(8)
        fcntl.ioctl(fd, START_SYNC, buf, True)
        fcntl.ioctl(fd, WAIT_SYNC, bytes(buf))
        return struct.unpack("=Q", buf)[0]
    finally:
        os.close(fd)


def snap(subvolume, dest):
    """A read-only snapshot of `subvolume` at `dest` (the ioctl writes out the subvolume's buffered
    data and commits); returns the last committed transaction's id."""
    src = os.open(subvolume, os.O_RDONLY)
    parent = os.open(os.path.dirname(dest), os.O_RDONLY)
    try:
        name = os.path.basename(dest).encode()
        args = struct.pack("=qQQ4Q", src, 0, SUBVOL_RDONLY, 0, 0, 0, 0) + name + bytes(4040 - len(name))
        fcntl.ioctl(parent, SNAP_CREATE_V2, bytearray(args), True)
        buf = bytearray(8)
        fcntl.ioctl(src, START_SYNC, buf, True)
        fcntl.ioctl(src, WAIT_SYNC, bytes(buf))
        return struct.unpack("=Q", buf)[0]
    finally:
        os.close(src)
        os.close(parent)


def search(fd, min_transid, lo=(0, 0, 0), hi=(2**64 - 1, 255, 2**64 - 1)):
    """(objectid, type, offset, data) of the items in leaves of fd's subvolume newer than min_transid."""
    found = []
    while True:
        key = struct.pack("=7Q4I4Q", 0, lo[0], hi[0], lo[2], hi[2], min_transid, 2**64 - 1, lo[1], hi[1], 4096, 0, 0, 0, 0, 0)
        buf = bytearray(key + struct.pack("=Q", 1 << 18) + bytes(1 << 18))
        fcntl.ioctl(fd, TREE_SEARCH_V2, buf, True)
        count = struct.unpack_from("=I", buf, 7 * 8 + 2 * 4)[0]
        if count == 0:
            return found
        at = 112
        for _ in range(count):
            _, objectid, offset, kind, length = struct.unpack_from("=3Q2I", buf, at)
            found.append((objectid, kind, offset, bytes(buf[at + 32 : at + 32 + length])))
            at += 32 + length
        # The next call starts after the last key (keys compare as (objectid, type, offset)).
        o, k, f = found[-1][0], found[-1][1], found[-1][2]
        if f < 2**64 - 1:
            lo = (o, k, f + 1)
        elif k < 255:
            lo = (o, k + 1, 0)
        else:
            lo = (o + 1, 0, 0)
        if lo > hi:
            return found


def dir_path(fd, ino):
    """The path of directory `ino` inside fd's subvolume ('' for its top)."""
    buf = bytearray(struct.pack("=QQ", 0, ino) + bytes(4080))
    fcntl.ioctl(fd, INO_LOOKUP, buf, True)
    return buf[16:].split(b"\0")[0].decode()


def changes(source, since):
    """What changed in `source` after transaction `since` (items committed): changed directories,
    and per changed file its path, size, whether created since, and its new extents' ranges (None:
    copy whole)."""
    fd = os.open(source, os.O_RDONLY)
    try:
        items = search(fd, since + 1)
        inodes, refs, extents = {}, {}, {}
        for ino, kind, offset, data in items:
            if ino < FIRST_INO:
                continue
            if kind == INODE_ITEM:
                generation, transid, size = struct.unpack_from("=3Q", data, 0)
                mode = struct.unpack_from("=I", data, 52)[0]
                if transid > since:
                    inodes[ino] = (generation > since, size, mode)
            elif kind == INODE_REF:
                name_len = struct.unpack_from("=H", data, 8)[0]
                refs.setdefault(ino, (offset, data[10 : 10 + name_len].decode()))
            elif kind == EXTENT_DATA:
                generation, ram_bytes = struct.unpack_from("=2Q", data, 0)
                if generation <= since:
                    continue
                if data[20] == 0:  # inline: the file is in its metadata
                    extents.setdefault(ino, []).append(None)
                else:
                    num_bytes = struct.unpack_from("=Q", data, 45)[0]
                    extents.setdefault(ino, []).append((offset, num_bytes))
        dirs, files = [], []
        for ino, (created, size, mode) in inodes.items():
            if (mode & 0o170000) == 0o040000:
                dirs.append(dir_path(fd, ino))
                continue
            if ino not in refs:  # its reference lies in an older leaf: look it up
                found = search(fd, 0, (ino, INODE_REF, 0), (ino, INODE_REF, 2**64 - 1))
                if not found:
                    continue  # removed since: its directory changed too
                name_len = struct.unpack_from("=H", found[0][3], 8)[0]
                refs[ino] = (found[0][2], found[0][3][10 : 10 + name_len].decode())
            parent, name = refs[ino]
            ranges = extents.get(ino, [])
            whole = created or any(r is None for r in ranges)
            files.append((os.path.join(dir_path(fd, parent), name), size, None if whole else ranges))
        return dirs, files
    finally:
        os.close(fd)


def sync(source, target, since, phases=None, cuts=None):
    """Carries what changed in `source` after transaction `since` into `target`; returns the
    committed transaction the next sync starts after. `cuts` (source snapshot, target snapshot):
    the source is cut by a snapshot instead of a sync, and the target snapshotted after the copy
    instead of fsynced file by file."""
    t = time.perf_counter()
    committed = snap(source, cuts[0]) if cuts else commit(source)
    t = lap(phases, "commit", t)
    dirs, files = changes(source, since)
    t = lap(phases, "search", t)
    written = {}
    for rel in dirs:  # names gone from a changed directory go from the target too
        there = os.path.join(target, rel)
        here = set(os.listdir(os.path.join(source, rel)))
        for name in os.listdir(there):
            if name not in here:
                gone = os.path.join(there, name)
                shutil.rmtree(gone) if os.path.isdir(gone) and not os.path.islink(gone) else os.remove(gone)
    for rel, size, ranges in files:
        src, dst = os.path.join(source, rel), os.path.join(target, rel)
        if ranges is None or not os.path.exists(dst):
            shutil.copy2(src, dst)
            ranges = None
        else:
            with open(src, "rb") as a, open(dst, "r+b") as b:
                for lo, ln in ranges:
                    a.seek(lo)
                    b.seek(lo)
                    b.write(a.read(ln))
                b.truncate(size)
                shutil.copystat(src, dst)
        if not cuts:
            fd = os.open(dst, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        written[rel] = ranges
    for rel in dirs if not cuts else []:
        fd = os.open(os.path.join(target, rel), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    if cuts:
        snap(target, cuts[1])
    t = lap(phases, "copy", t)
    digest = [hashlib.sha256(), hashlib.sha256()]
    for rel, ranges in sorted(written.items()):
        for k, root in enumerate((source, target)):
            with open(os.path.join(root, rel), "rb") as f:
                digest[k].update(b"%s %d" % (rel.encode(), os.fstat(f.fileno()).st_size))
                for lo, ln in ranges or [(0, -1)]:
                    f.seek(lo)
                    digest[k].update(f.read(ln))
    assert digest[0].digest() == digest[1].digest(), f"{target}: the copied bytes differ from the source's"
    lap(phases, "check", t)
    return committed


def lap(phases, name, started):
    now = time.perf_counter()
    if phases is not None:
        phases.setdefault(name, []).append((now - started) * 1000)
    return now


pools = {}  # mode -> (image, loop device, mount point)
try:
    for mode in modes:
        img, mnt = os.path.join(base_dir, f"genhold{os.getpid()}-{mode}.img"), f"/tmp/genhold{os.getpid()}-{mode}.mnt"
        run("truncate", "-s", "12G", img)
        pools[mode] = (img, None, None)
        dev = subprocess.run(["losetup", "-f", "--show", img], check=True, capture_output=True, text=True).stdout.strip()
        pools[mode] = (img, dev, None)
        run("mkfs.btrfs", "-q", dev)
        os.makedirs(mnt)
        run("mount", "-o", "noatime", dev, mnt)
        pools[mode] = (img, dev, mnt)
    log = os.urandom(64 << 20)
    rows = {"1k": 1000, "1m": big}
    started = time.perf_counter()
    since = {}
    for mode in modes:
        mnt = pools[mode][2]
        for row, n in rows.items():
            for side in ("src",) if mode in ("received", "reflinked", "snapshotted", "fresh") else ("src", "dst"):
                top = f"{mnt}/{row}.{side}"
                run("btrfs", "subvolume", "create", top)
                for i in range(n):
                    d = f"{top}/d{i // 1000:04d}"
                    if i % 1000 == 0:
                        os.makedirs(d)
                    fd = os.open(f"{d}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644)
                    os.write(fd, b"x" * 100)
                    os.close(fd)
                os.makedirs(f"{top}/new")
                with open(f"{top}/log", "wb") as f:
                    f.write(log)
        if mode == "received":  # the initial copy: a snapshot sent whole, received, made writable, dropped
            for row in rows:
                source, target = f"{mnt}/{row}.src", f"{mnt}/{row}.dst"
                run("btrfs", "subvolume", "snapshot", "-r", source, f"{source}.init")
                os.makedirs(f"{mnt}/recv-{row}")
                send = subprocess.Popen(["btrfs", "send", "-q", f"{source}.init"], stdout=subprocess.PIPE)
                subprocess.run(["btrfs", "receive", "-q", f"{mnt}/recv-{row}"], stdin=send.stdout, check=True)
                send.stdout.close()
                assert send.wait() == 0, "btrfs send failed"
                run("btrfs", "property", "set", "-f", "-ts", f"{mnt}/recv-{row}/{row}.src.init", "ro", "false")
                os.rename(f"{mnt}/recv-{row}/{row}.src.init", target)
                os.rmdir(f"{mnt}/recv-{row}")
                run("btrfs", "subvolume", "delete", f"{source}.init")
            run("btrfs", "subvolume", "sync", mnt)
        if mode in ("snapshotted", "fresh"):  # the standby's disk as a live copy makes it, then written
            for row in rows:
                source, target = f"{mnt}/{row}.src", f"{mnt}/{row}.dst"
                recv = f"{mnt}/recv-{row}"
                os.makedirs(recv)
                passes = ["init0", "init1"] if mode == "snapshotted" else ["init0"]
                for k, name in enumerate(passes):
                    if k > 0:  # the source written between the passes
                        with open(f"{source}/new/between-passes", "w") as f:
                            f.write("written during the copy\n")
                    run("btrfs", "subvolume", "snapshot", "-r", source, f"{source}.{name}")
                    parent = ["-p", f"{source}.{passes[k - 1]}"] if k > 0 else []
                    send = subprocess.Popen(["btrfs", "send", "-q", *parent, f"{source}.{name}"], stdout=subprocess.PIPE)
                    subprocess.run(["btrfs", "receive", "-q", recv], stdin=send.stdout, check=True)
                    send.stdout.close()
                    assert send.wait() == 0, "btrfs send failed"
                last = f"{recv}/{row}.src.{passes[-1]}"
                if mode == "snapshotted":
                    run("btrfs", "subvolume", "snapshot", last, target)
                else:
                    run("btrfs", "property", "set", "-f", "-ts", last, "ro", "false")
                    os.rename(last, target)
                for name in passes:
                    for snapshot in (f"{source}.{name}", f"{recv}/{row}.src.{name}"):
                        if os.path.exists(snapshot):
                            run("btrfs", "subvolume", "delete", snapshot)
                os.rmdir(recv)
                # The received tree is the one written (the source of the syncs).
                os.rename(source, f"{source}.orig")
                os.rename(target, source)
                os.rename(f"{source}.orig", target)
            run("btrfs", "subvolume", "sync", mnt)
        if mode == "reflinked":  # a tree of its own whose file data are the source's extents
            for row in rows:
                source, target = f"{mnt}/{row}.src", f"{mnt}/{row}.dst"
                run("btrfs", "subvolume", "create", target)
                run("cp", "-a", "--reflink=always", f"{source}/.", f"{target}/")
        for row in rows:
            since[(mode, row)] = commit(mnt)
    print(f"filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    figures = {}
    for r in range(rounds):
        for row, n in rows.items():
            for mode in modes:
                mnt = pools[mode][2]
                source, target = f"{mnt}/{row}.src", f"{mnt}/{row}.dst"
                # The catch-up change and pass (not timed).
                stride = max(1, n // 200)
                pick = lambda k: f"{source}/d{((r * 61 + k * stride) % n) // 1000:04d}/f{(r * 61 + k * stride) % n}"
                for k in range(50):
                    if os.path.exists(pick(k)):
                        with open(pick(k), "w") as f:
                            f.write(f"rewritten in round {r}\n")
                for k in range(50):
                    with open(f"{source}/new/r{r}-{k}", "w") as f:
                        f.write(f"new {k}\n")
                for k in range(50, 60):
                    if os.path.exists(pick(k)):
                        os.remove(pick(k))
                since[(mode, row)] = sync(source, target, since[(mode, row)])
                if mode in ("shared", "dropped"):  # the pass's new bases, as today's final sync has them
                    for old in (f"{source}.cut", f"{target}.after"):  # the last hold's snapshots, the bases until now
                        if os.path.exists(old):
                            run("btrfs", "subvolume", "delete", old)
                    run("btrfs", "subvolume", "snapshot", "-r", source, f"{source}.base")
                    run("btrfs", "subvolume", "snapshot", "-r", target, f"{target}.base")
                since[(mode, row)] = sync(source, target, since[(mode, row)])  # the disks flushed before the hold
                if mode == "dropped":  # before the hold: the bases go, and the cleaner drops them
                    run("btrfs", "subvolume", "delete", f"{source}.base", f"{target}.base")
                    run("btrfs", "subvolume", "sync", mnt)
                # The hold: the service's last writes, then the final sync.
                phases = figures.setdefault((row, mode), {})
                t = time.perf_counter()
                fd = os.open(f"{source}/log", os.O_WRONLY | os.O_APPEND)
                os.write(fd, f"round {r} ".ljust(99, ".").encode() * 100)
                os.fsync(fd)
                os.close(fd)
                for path, flags in (
                    (f"{source}/d{(r * 7919 % n) // 1000:04d}/f{r * 7919 % n}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                    (f"{source}/d{(r * 104729 % n) // 1000:04d}/last-{r}", os.O_WRONLY | os.O_CREAT),
                ):
                    fd = os.open(path, flags, 0o644)
                    os.write(fd, f"written last in round {r}\n".encode())
                    os.fsync(fd)
                    os.close(fd)
                t = lap(phases, "last writes", t)
                cuts = (f"{source}.cut", f"{target}.after") if mode == "dropped" else None
                since[(mode, row)] = sync(source, target, since[(mode, row)], phases, cuts)
                lap(phases, "final sync", t)
                phases.setdefault("hold", []).append(phases["last writes"][-1] + phases["final sync"][-1])
                if mode == "shared":  # the bases go, and the cleaner drops them, before the next pass
                    run("btrfs", "subvolume", "delete", f"{source}.base", f"{target}.base")
                    run("btrfs", "subvolume", "sync", mnt)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)

    for mode in modes:
        for row in rows:
            mnt = pools[mode][2]
            result = subprocess.run(["diff", "-r", "-q", f"{mnt}/{row}.src", f"{mnt}/{row}.dst"], capture_output=True, text=True)
            assert result.returncode == 0, f"{mode} {row}: the target differs from its source:\n{result.stdout[:2000]}"
    print("every target equals its source (diff -r)")

    med = lambda v: sorted(v)[len(v) // 2]
    names = ["hold", "last writes", "final sync", "commit", "search", "copy", "check"]
    print(f"\nMedians over {rounds} rounds, ms (1,000 files -> {big:,} files), one pool per mode:")
    print("| mode | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    ok = True
    for mode in modes:
        cells = []
        for name in names:
            a, b = med(figures[("1k", mode)][name]), med(figures[("1m", mode)][name])
            cells.append(f"{a:.1f} -> {b:.1f} ({b / a * 100:.0f} %)")
        print(f"| {mode} | " + " | ".join(cells) + " |")
    for mode in modes:
        for name in ("hold", "final sync"):
            a, b = med(figures[("1k", mode)][name]), med(figures[("1m", mode)][name])
            flat = b <= 1.2 * a
            ok = ok and (flat or mode == "shared")
            print(f"{mode}, {name}: {'PASS' if flat else 'FAIL'} flat — {big:,} files {b / a * 100:.0f} % of 1,000 files (flat = within 120 %)")
    verdict = "flat" if ok else "NOT flat"
    judged = [m for m in modes if m != "shared"]
    print(f"RESULT: the hold ({', '.join(judged)}) is {verdict}" if judged else "RESULT: (the shared mode alone is the control; nothing judged)")
    sys.exit(0 if ok else 1)
finally:
    for img, dev, mnt in pools.values():
        if mnt:
            subprocess.run(["umount", mnt])
            os.rmdir(mnt)
        if dev:
            subprocess.run(["losetup", "-d", dev])
        os.remove(img)
