#!/usr/bin/env python3
"""A measurement, not product code: a final sync inside the hold without any btrfs commit.

One pool, subvolumes small (1,000 files) and big (1,000,000 files), each with a 64 MiB log, and a
`marker` subvolume. A fanotify group (filesystem mark on the pool's top level, directory handles and
names) runs throughout. Each round, per row: a base snapshot `pre` of the source, a target made equal
to it (a writable snapshot of `pre`), a commit; then the hold: the source's last writes (100 fsynced
appends to the log, one file rewritten in one directory, one created in another), then the sync:
events read up to a marker event, names resolved through the directory handles, per regular file the
changed byte ranges found by comparing FIEMAP extents with `pre`'s file, those ranges copied into the
target (else the file copied whole), and the synced paths hashed on both sides (a patched file's
ranges). Times the sync (not the last writes) and its phases, medians over the rounds, and judges
the two rows flat (within 120 %). It omits what a real tracker needs (writes through a shared
mapping, watch overflow, directories created in the window, hard links, attributes, recovery).
Usage: python3 bench/commit-free-hold.py [dir for the image, default /tmp] [rounds, default 11]
(as root; about a minute).
"""
import ctypes, hashlib, os, select, shutil, struct, subprocess, sys, time

base_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 11
libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
libc.open_by_handle_at.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]


def run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


img = os.path.join(base_dir, f"cfh{os.getpid()}.img")
mnt = f"/tmp/cfh{os.getpid()}.mnt"
run("truncate", "-s", "8G", img)
dev = subprocess.run(["losetup", "-f", "--show", img], check=True, capture_output=True, text=True).stdout.strip()
try:
    run("mkfs.btrfs", "-q", dev)
    os.makedirs(mnt)
    run("mount", "-o", "noatime", dev, mnt)
    for s in ("small", "big", "marker"):
        run("btrfs", "subvolume", "create", f"{mnt}/{s}")
    for name, n in (("small", 1000), ("big", 1000000)):
        for i in range(n):
            d = f"{mnt}/{name}/d{i // 1000:04d}"
            if i % 1000 == 0:
                os.makedirs(d, exist_ok=True)
            fd = os.open(f"{d}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(fd, b"x" * 100)
            os.close(fd)
        with open(f"{mnt}/{name}/log", "wb") as f:
            f.write(os.urandom(64 << 20))
    run("btrfs", "filesystem", "sync", mnt)

    group = libc.fanotify_init(0xC00 | 0x2, os.O_RDONLY)  # DFID_NAME, nonblocking
    mask = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x40000000 | 0x08000000
    assert libc.fanotify_mark(group, 0x1 | 0x100, mask, -100, mnt.encode()) == 0
    mount_fd = os.open(mnt, os.O_RDONLY)

    def read_events(marker_name):
        """(dir path, name) of every event up to the marker's."""
        found, seen_marker = [], False
        while not seen_marker:
            select.select([group], [], [], 1.0)
            try:
                buf = os.read(group, 1 << 20)
            except BlockingIOError:
                continue
            at = 0
            while at < len(buf):
                length, _, _, meta, m, _, _ = struct.unpack_from("=IBBHQii", buf, at)
                info = at + meta
                while info < at + length:
                    _, _, ilen = struct.unpack_from("=BBH", buf, info)
                    handle_bytes = struct.unpack_from("=I", buf, info + 12)[0]
                    handle = buf[info + 12 : info + 20 + handle_bytes]
                    name = buf[info + 20 + handle_bytes : info + ilen].split(b"\0")[0].decode()
                    found.append((bytes(handle), name))
                    if name == marker_name:
                        seen_marker = True
                    info += ilen
                at += length
        return found

    dir_cache = {}

    def dir_of(handle):
        if handle not in dir_cache:
            h = ctypes.create_string_buffer(handle)
            fd = libc.open_by_handle_at(mount_fd, h, os.O_RDONLY | os.O_PATH)
            if fd < 0:
                dir_cache[handle] = None
            else:
                dir_cache[handle] = os.readlink(f"/proc/self/fd/{fd}")
                os.close(fd)
        return dir_cache[handle]

    FS_IOC_FIEMAP = 0xC020660B

    def extents(path):
        """(logical, physical, length) of a file's extents (FIEMAP, no sync)."""
        out, start = [], 0
        while True:
            count = 64
            req = bytearray(struct.pack("=QQIIII", start, 2**64 - 1 - start, 0, 0, count, 0) + bytes(56 * count))
            fd = os.open(path, os.O_RDONLY)
            try:
                import fcntl

                fcntl.ioctl(fd, FS_IOC_FIEMAP, req, True)
            finally:
                os.close(fd)
            mapped = struct.unpack_from("=I", req, 20)[0]
            last = False
            for i in range(mapped):
                lo, ph, ln, _, _, flags = struct.unpack_from("=QQQQQI", req, 32 + 56 * i)
                if flags & 0x200:  # FIEMAP_EXTENT_DATA_INLINE: in the metadata, no address to compare
                    return None
                out.append((lo, ph, ln))
                if flags & 1:
                    last = True
            if last or mapped == 0:
                return out
            start = out[-1][0] + out[-1][2]

    def changed_ranges(live, pre):
        """The ranges of `live` not in `pre`'s extents, or None when it must be copied whole."""
        now, before = extents(live), extents(pre)
        if now is None or before is None:
            return None
        return [(lo, ln) for lo, ph, ln in now if (lo, ph, ln) not in set(before)]

    phase = {}

    def sync_hold(row, source, pre, target, marker_name):
        t = time.perf_counter()
        events = read_events(marker_name)
        phase.setdefault((row, "events"), []).append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        paths = set()
        for handle, name in events:
            d = dir_of(handle)
            if d and (d == source or d.startswith(source + "/")):
                paths.add(os.path.relpath(os.path.join(d, name), source))
        phase.setdefault((row, "resolve"), []).append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        copied = 0
        checked = {}
        for rel in sorted(paths):
            src, was, dst = (os.path.join(x, rel) for x in (source, pre, target))
            if not os.path.exists(src):
                if os.path.lexists(dst):
                    os.remove(dst)
                continue
            tr = time.perf_counter()
            ranges = (
                changed_ranges(src, was)
                if os.path.isfile(src) and os.path.isfile(was) and os.path.isfile(dst)
                else None
            )
            phase.setdefault((row, "fiemap"), []).append((time.perf_counter() - tr) * 1000)
            checked[rel] = ranges
            if ranges is not None:
                with open(src, "rb") as a, open(dst, "r+b") as b:
                    for lo, ln in ranges:
                        a.seek(lo)
                        data = a.read(ln)
                        b.seek(lo)
                        b.write(data)
                        copied += len(data)
                    b.truncate(os.fstat(a.fileno()).st_size)
            else:
                shutil.copy2(src, dst)
                copied += os.path.getsize(src)
        phase.setdefault((row, "ranges+copy"), []).append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        # The check reads what was written: a patched file's ranges (and its size), a copied file whole.
        digest = [hashlib.sha256(), hashlib.sha256()]
        for rel in sorted(paths):
            for k, root in enumerate((source, target)):
                p = os.path.join(root, rel)
                if not os.path.isfile(p):
                    continue
                with open(p, "rb") as f:
                    digest[k].update(b"%d" % os.fstat(f.fileno()).st_size)
                    if checked.get(rel) is None:
                        digest[k].update(f.read())
                    else:
                        for lo, ln in checked[rel]:
                            f.seek(lo)
                            digest[k].update(f.read(ln))
        assert digest[0].digest() == digest[1].digest(), f"{row}: differ"
        phase.setdefault((row, "verify"), []).append((time.perf_counter() - t) * 1000)
        return len(paths), copied

    times = {"small": [], "big": []}
    for r in range(rounds):
        for row in ("small", "big"):
            source, pre, target = f"{mnt}/{row}", f"{mnt}/{row}.pre", f"{mnt}/{row}.target"
            run("btrfs", "subvolume", "snapshot", "-r", source, pre)
            run("btrfs", "subvolume", "snapshot", pre, target)
            run("btrfs", "filesystem", "sync", mnt)
            # Events so far are before the hold.
            touch = f"m{r}{row}a"
            open(f"{mnt}/marker/{touch}", "w").close()
            read_events(touch)
            # The hold: the source's last writes (not timed), then the sync.
            fd = os.open(f"{source}/log", os.O_WRONLY | os.O_APPEND)
            for i in range(100):
                os.write(fd, b"record %d %d\n" % (r, i))
                os.fsync(fd)
            os.close(fd)
            dirs = sorted(x for x in os.listdir(source) if x.startswith("d"))
            d1, d2 = dirs[(r * 7) % len(dirs)], dirs[(r * 13 + 3) % len(dirs)]
            first = sorted(os.listdir(f"{source}/{d1}"))[0]
            fd = os.open(f"{source}/{d1}/{first}", os.O_WRONLY)
            os.write(fd, b"rewritten %d" % r)
            os.fsync(fd)
            os.close(fd)
            fd = os.open(f"{source}/{d2}/new{r}", os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(fd, b"new")
            os.fsync(fd)
            os.close(fd)
            t0 = time.perf_counter()
            marker = f"m{r}{row}b"
            open(f"{mnt}/marker/{marker}", "w").close()
            n, copied = sync_hold(row, source, pre, target, marker)
            times[row].append((time.perf_counter() - t0) * 1000)
            run("btrfs", "subvolume", "delete", target)
            run("btrfs", "subvolume", "delete", pre)
            run("btrfs", "filesystem", "sync", mnt)
            run("btrfs", "subvolume", "sync", mnt)
    for (row, name), v in sorted(phase.items()):
        print(f"  {row} {name}: median {sorted(v)[len(v) // 2]:.2f} ms")
    med = {row: sorted(v)[len(v) // 2] for row, v in times.items()}
    print(f"median sync inside the hold, no commit: 1,000 files {med['small']:.2f} ms, 1,000,000 files {med['big']:.2f} ms, "
          f"{med['big'] / med['small'] * 100:.0f} % ({'PASS' if med['big'] <= 1.2 * med['small'] else 'FAIL'} flat)")
finally:
    for fd in ("group", "mount_fd"):
        if fd in dir():
            os.close(globals()[fd])
    subprocess.run(["umount", mnt])
    subprocess.run(["losetup", "-d", dev])
    os.remove(img)
    os.rmdir(mnt)
