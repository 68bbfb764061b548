#!/usr/bin/env python3
"""A measurement, not product code: does a disk received whole (as the live copy makes a data disk's
copy) commit slower than the disk it was copied from, at 1,000 and at 1,000,000 files?

Usage: python3 bench/commit-by-origin.py TMPDIR ROUNDS [FILES,...] [--unsynced]   (default 1000,1000000)

Per row: a pool (a sparse loop image, its own btrfs filesystem, mounted noatime) holds the `written`
tree (small files of 100 bytes, 1,000 a directory, and a 64 MiB log, as bench/final-sync.ts fills a
row); a second pool holds the `received` tree: a read-only snapshot of the first sent whole,
received, made writable, the snapshot deleted on both sides and dropped. Each round, on every tree
in turn (rows and trees interleaved): the last writes of bench/final-sync.ts's hold (100 records
appended to the log, one file rewritten, one created, each fsynced; with --unsynced not fsynced,
as a final sync writes its target), then the pool's commit (BTRFS_IOC_SYNC) timed. Prints the commit's median per tree and row, and each tree's largest row
against its smallest, and each tree's shape (its root's level, its leaves and their average items,
from `btrfs inspect-internal dump-tree` of the subvolume's tree). Everything it made is removed at
the end, on failure too.
"""
import fcntl, os, statistics, subprocess, sys, tempfile, time

SYNC = 0x9408  # _IO(0x94, 8): writes out delalloc, then commits
FILES_PER_DIR = 1000


def run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def commit(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        started = time.perf_counter()
        fcntl.ioctl(fd, SYNC)
        return (time.perf_counter() - started) * 1000
    finally:
        os.close(fd)


def shape(subvolume):
    """(root level, leaves, items a leaf) of the subvolume's tree, read from its device."""
    show = subprocess.run(["btrfs", "subvolume", "show", subvolume], check=True, capture_output=True, text=True)
    tree = next(l.split()[-1] for l in show.stdout.splitlines() if "Subvolume ID:" in l)
    device = subprocess.run(["findmnt", "-no", "SOURCE", "--target", subvolume], check=True,
                            capture_output=True, text=True).stdout.strip()
    dump = subprocess.Popen(["btrfs", "inspect-internal", "dump-tree", "-t", tree, device],
                            stdout=subprocess.PIPE, text=True)
    level, leaves, items = None, 0, 0
    for line in dump.stdout:
        words = line.split()
        if len(words) < 4 or words[0] not in ("node", "leaf"):
            continue
        if words[0] == "node" and words[2] == "level" and level is None:
            level = int(words[3])
        elif words[0] == "leaf" and words[2] == "items":
            level = 0 if level is None else level
            leaves += 1
            items += int(words[3])
    dump.wait()
    return level, leaves, items / max(leaves, 1)


def fill(root, count):
    body = b"x" * 100
    for d in range(0, (count + FILES_PER_DIR - 1) // FILES_PER_DIR):
        os.makedirs(f"{root}/files/d{d}")
        for i in range(d * FILES_PER_DIR, min(count, (d + 1) * FILES_PER_DIR)):
            with open(f"{root}/files/d{d}/f{i}", "wb") as f:
                f.write(body)
    os.makedirs(f"{root}/log")
    record = b"r" * 99 + b"\n"
    with open(f"{root}/log/service.log", "wb") as f:
        for _ in range(64):
            f.write(record * (1024 * 1024 // 100))


def written_and_received(work, count, mounts):
    """A row's two trees, each on a pool of its own under `work` (mount points appended to `mounts`):
    `written` filled (fill), `received` a read-only snapshot of it sent whole, received, made
    writable, the snapshot deleted on both sides and dropped. Returns their paths."""
    mb = 1024 + count * 6 // 1000
    for side in ("written", "received"):
        image, mnt = f"{work}/{side}-{count}.img", f"{work}/{side}-{count}"
        with open(image, "wb") as f:
            f.truncate(mb * 1024 * 1024)
        run("mkfs.btrfs", "-q", image)
        os.makedirs(mnt)
        run("mount", "-o", "loop,noatime", image, mnt)
        mounts.append(mnt)
    src, dst = f"{work}/written-{count}", f"{work}/received-{count}"
    run("btrfs", "subvolume", "create", f"{src}/disk")
    fill(f"{src}/disk", count)
    run("btrfs", "subvolume", "snapshot", "-r", f"{src}/disk", f"{src}/pass-0")
    send = subprocess.Popen(["btrfs", "send", "-q", f"{src}/pass-0"], stdout=subprocess.PIPE)
    subprocess.run(["btrfs", "receive", "-q", dst], stdin=send.stdout, check=True)
    send.stdout.close()
    assert send.wait() == 0, "btrfs send failed"
    run("btrfs", "property", "set", "-f", "-ts", f"{dst}/pass-0", "ro", "false")
    os.rename(f"{dst}/pass-0", f"{dst}/disk")
    run("btrfs", "subvolume", "delete", f"{src}/pass-0")
    for mnt in (src, dst):
        run("btrfs", "subvolume", "sync", mnt)
        commit(mnt)
    return f"{src}/disk", f"{dst}/disk"


def remove_all(work, mounts):
    """Unmounts `mounts` (last first) and removes `work` with the pool images."""
    for mnt in reversed(mounts):
        subprocess.run(["umount", mnt], check=False)
    subprocess.run(["rm", "-rf", work], check=False)


UNSYNCED = "--unsynced" in sys.argv


def write(path, mode, data):
    with open(path, mode) as f:
        f.write(data)
        f.flush()
        if not UNSYNCED:
            os.fsync(f.fileno())


def last_writes(root, count, r):
    write(f"{root}/log/service.log", "ab", (f"round {r} ".ljust(99, ".").encode() + b"\n") * 100)
    i = (r * 7919) % count
    write(f"{root}/files/d{i // FILES_PER_DIR}/f{i}", "wb", f"rewritten in round {r}\n".encode())
    write(f"{root}/log/created-{r}", "wb", b"created last\n")


def main():
    args = [a for a in sys.argv[1:] if a != "--unsynced"]
    tmp, rounds = args[0], int(args[1])
    rows = [int(n) for n in (args[2] if len(args) > 2 else "1000,1000000").split(",")]
    work = tempfile.mkdtemp(prefix="us-commit-origin-", dir=tmp)
    mounts = []
    try:
        trees = {}
        for count in rows:
            trees[("written", count)], trees[("received", count)] = written_and_received(work, count, mounts)
            print(f"row {count}: filled and received", file=sys.stderr)
        times = {key: [] for key in trees}
        order = list(trees)
        for r in range(rounds):
            for key in order[r % len(order):] + order[: r % len(order)]:
                last_writes(trees[key], key[1], r)
                times[key].append(commit(trees[key]))
        for side in ("written", "received"):
            medians = [statistics.median(times[(side, count)]) for count in rows]
            figures = ", ".join(f"{count:,} files {m:.1f} ms" for count, m in zip(rows, medians))
            print(f"{side:9} commit after the last writes (median of {rounds}): {figures}; "
                  f"{medians[-1] / medians[0] * 100:.0f} % of the smallest row")
        for key, tree in trees.items():
            level, leaves, per_leaf = shape(tree)
            print(f"{key[0]:9} {key[1]:>9,} files: root level {level}, {leaves:,} leaves, {per_leaf:.0f} items a leaf")
    finally:
        remove_all(work, mounts)


if __name__ == "__main__":
    main()
