#!/usr/bin/env python3
"""A measurement, not product code: what makes a final sync's writes durable on the target disk
inside the hold at a cost that does not grow with the disk's files — a commit of its pool, or an
fsync of each path the sync wrote (then the commit only started)?

Usage: python3 bench/durable-by-fsync.py TMPDIR ROUNDS [FILES,...]   (default 1000,1000000)

Per row: a pool (a sparse loop image, its own btrfs filesystem, mounted noatime) holding a tree
received whole, as the live copy makes LC2's data disk (bench/commit-by-origin.py's `received`
tree: small files of 100 bytes, 1,000 a directory, and a 64 MiB log). Each round, every row in turn,
and in each row every way in turn: the writes a final sync makes on its target for
bench/final-sync.ts's hold (100 records appended to the log, one file rewritten, one created, none
fsynced), then made durable, timed:
  commit        BTRFS_IOC_SYNC of the pool (what the final sync did: TransidSearcher's markOf);
  fsync         fsync of each written file, then of the directory of the created one (what the final
                sync does now, transid-search.py's fsync_paths);
  fsync+start   the same, then BTRFS_IOC_START_SYNC (the commit started, not waited for: what the
                final sync did before);
  parallel+start the same fsyncs all at once, one thread each (btrfs lets fsyncs that overlap share
                one write of its log tree), then the commit started.
The pool is committed (untimed) before the next way. Prints each way's median per row and its
largest row against its smallest (flat = within 120 %). Everything it made is removed at the end,
on failure too.
"""
import fcntl, importlib.util, os, statistics, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor

START_SYNC = 0x80089418  # _IOR(0x94, 24, __u64)
WAYS = ("commit", "fsync", "fsync+start", "parallel+start")
POOL = ThreadPoolExecutor(max_workers=8)

_spec = importlib.util.spec_from_file_location("origin", os.path.join(os.path.dirname(__file__), "commit-by-origin.py"))
origin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(origin)


def fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def synced_writes(root, count, r, way):
    """The final sync's writes (not fsynced); returns the paths to make durable."""
    tag = f"{way} round {r}"
    log = f"{root}/log/service.log"
    with open(log, "ab") as f:
        f.write((tag.ljust(99, ".").encode() + b"\n") * 100)
    i = (r * 7919 + WAYS.index(way)) % count
    rewritten = f"{root}/files/d{i // origin.FILES_PER_DIR}/f{i}"
    with open(rewritten, "wb") as f:
        f.write(f"rewritten in {tag}\n".encode())
    created = f"{root}/log/created-{way}-{r}"
    with open(created, "wb") as f:
        f.write(b"created last\n")
    return [log, rewritten, created, f"{root}/log"]


def durable(root, paths, way):
    started = time.perf_counter()
    if way == "commit":
        origin.commit(root)
    else:
        if way == "parallel+start":
            list(POOL.map(fsync, paths))
        else:
            for p in paths:
                fsync(p)
        if way.endswith("+start"):
            fd = os.open(root, os.O_RDONLY)
            try:
                fcntl.ioctl(fd, START_SYNC, bytearray(8), True)
            finally:
                os.close(fd)
    return (time.perf_counter() - started) * 1000


def main():
    tmp, rounds = sys.argv[1], int(sys.argv[2])
    rows = [int(n) for n in (sys.argv[3] if len(sys.argv) > 3 else "1000,1000000").split(",")]
    work = tempfile.mkdtemp(prefix="us-durable-fsync-", dir=tmp)
    mounts = []
    try:
        trees = {}
        for count in rows:
            trees[count] = origin.written_and_received(work, count, mounts)[1]
            print(f"row {count}: filled and received", file=sys.stderr)
        times = {(count, way): [] for count in rows for way in WAYS}
        for r in range(rounds):
            for count in rows[r % len(rows):] + rows[: r % len(rows)]:
                for way in WAYS[r % len(WAYS):] + WAYS[: r % len(WAYS)]:
                    paths = synced_writes(trees[count], count, r, way)
                    times[(count, way)].append(durable(trees[count], paths, way))
                    origin.commit(trees[count])
        for way in WAYS:
            medians = [statistics.median(times[(count, way)]) for count in rows]
            ratio = max(medians) / min(medians) * 100
            figures = ", ".join(f"{count:,} files {m:.2f} ms" for count, m in zip(rows, medians))
            print(f"{way:14} (median of {rounds}): {figures}; slowest row {ratio:.0f} % of the fastest: "
                  f"{'flat' if ratio <= 120 else 'NOT flat'}")
    finally:
        origin.remove_all(work, mounts)


if __name__ == "__main__":
    main()
