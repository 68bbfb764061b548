#!/usr/bin/env python3
"""A measurement, not product code: does a pool's commit grow less with its tree when its loop device
does direct I/O than when it reads and writes its image through the host's page cache?

Usage: python3 bench/commit-by-loop-io.py ROUNDS [FILES,...] [MODES]   (as root; defaults 1000,1000000
and buffered,direct; about a minute and a half)

Per row and mode: a pool of its own (a sparse loop image under /tmp, the loop device attached with
`--direct-io=on` for `direct`, without for `buffered`; btrfs, mounted noatime) holds the tree of
bench/commit-by-origin.py (small files of 100 bytes, 1,000 a directory, and a 64 MiB log), written
in place and committed. Each round, on every pool in turn (rows and modes interleaved, each round
starting with another): commit-by-origin.py's last writes (100 records appended to the log, one
file rewritten, one created, each fsynced), then the pool's commit (BTRFS_IOC_SYNC) timed, and the
loop device's writes during it counted (/sys/block/<loop>/stat: requests, and sectors as 16 KiB
blocks). Prints per pool the median commit and writes, and per mode the largest row against the
smallest. Everything it made is removed at the end, on failure too.
"""
import importlib.util, os, statistics, subprocess, sys, tempfile

sys.dont_write_bytecode = True  # loading commit-by-origin.py leaves no __pycache__ in bench/
here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("commit_by_origin", os.path.join(here, "commit-by-origin.py"))
cbo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cbo)


def run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def writes(device):
    """(write requests, 512-byte sectors written) of a block device so far."""
    fields = open(f"/sys/block/{os.path.basename(device)}/stat").read().split()
    return int(fields[4]), int(fields[6])


def main():
    rounds = int(sys.argv[1])
    rows = [int(n) for n in (sys.argv[2] if len(sys.argv) > 2 else "1000,1000000").split(",")]
    modes = (sys.argv[3] if len(sys.argv) > 3 else "buffered,direct").split(",")
    assert all(m in ("buffered", "direct") for m in modes), "modes: buffered, direct"
    work = tempfile.mkdtemp(prefix="us-commit-loop-io-", dir="/tmp")
    mounts, loops = [], []
    try:
        pools = {}
        for count in rows:
            for mode in modes:
                image, mnt = f"{work}/{mode}-{count}.img", f"{work}/{mode}-{count}"
                with open(image, "wb") as f:
                    f.truncate((1024 + count * 6 // 1000) * 2**20)
                dio = ["--direct-io=on"] if mode == "direct" else []
                device = subprocess.run(["losetup", "--find", "--show", *dio, image], check=True,
                                        capture_output=True, text=True).stdout.strip()
                loops.append(device)
                actual = open(f"/sys/block/{os.path.basename(device)}/loop/dio").read().strip()
                assert actual == ("1" if mode == "direct" else "0"), f"{device}: dio is {actual}"
                run("mkfs.btrfs", "-q", device)
                os.makedirs(mnt)
                run("mount", "-o", "noatime", device, mnt)
                mounts.append(mnt)
                run("btrfs", "subvolume", "create", f"{mnt}/disk")
                cbo.fill(f"{mnt}/disk", count)
                cbo.commit(mnt)
                pools[(mode, count)] = (f"{mnt}/disk", device)
                print(f"{mode} {count}: filled", file=sys.stderr, flush=True)
        times = {key: [] for key in pools}
        requests = {key: [] for key in pools}
        blocks = {key: [] for key in pools}
        order = list(pools)
        for r in range(rounds):
            for key in order[r % len(order):] + order[: r % len(order)]:
                tree, device = pools[key]
                cbo.last_writes(tree, key[1], r)
                before = writes(device)
                times[key].append(cbo.commit(tree))
                after = writes(device)
                requests[key].append(after[0] - before[0])
                blocks[key].append((after[1] - before[1]) / 32)
        for key in order:
            print(f"{key[0]:8} {key[1]:>9,} files: commit {statistics.median(times[key]):.2f} ms, "
                  f"{statistics.median(requests[key]):.0f} write requests, "
                  f"{statistics.median(blocks[key]):.0f} blocks of 16 KiB (medians of {rounds})")
        for mode in modes:
            medians = [statistics.median(times[(mode, count)]) for count in rows]
            print(f"{mode:8} commit {rows[0]:,} -> {rows[-1]:,} files: {medians[0]:.2f} -> {medians[-1]:.2f} ms "
                  f"({medians[-1] / medians[0] * 100:.0f} %)")
    finally:
        for mnt in reversed(mounts):
            subprocess.run(["umount", mnt], check=False)
        for device in loops:
            subprocess.run(["losetup", "-d", device], check=False)
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
