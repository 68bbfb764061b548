#!/usr/bin/env python3
"""A measurement, not product code: how long does the transid helper take to leave once its stdin
closes, against an interpreter with the same modules leaving in order?

Usage: python3 bench/helper-exit.py [ROUNDS]   (default 31; a few seconds; no root needed)

A switch closes the helper (src/disk-copy/btrfs/transid-search.py --serve) right after the final
sync, as the hold is released, so the CPU its exit takes is taken from the service's first requests
(two CPUs on this machine). Each round, in turn: the helper is started, answers a ping, and its stdin
is closed; then the baseline, `python3 -c` importing the helper's modules and reading its stdin to
the end, answers the same way and has its stdin closed. Timed from the close to the process's end
(waitpid), each; the child's CPU time from its rusage. Prints the medians and their ratio, and
judges the helper's exit against the goal (under 2 ms, a tenth of a hold's disk part).
"""
import os, statistics, subprocess, sys, time

here = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(here, "..", "src", "disk-copy", "btrfs", "transid-search.py")
BASELINE = (
    "import fcntl, hashlib, json, os, stat, struct, sys, uuid\n"
    "for line in sys.stdin:\n"
    "    sys.stdout.write(json.dumps({'pong': True}) + '\\n' + json.dumps({'end': True}) + '\\n')\n"
    "    sys.stdout.flush()\n"
)
GOAL_MS = 2.0


def leave(argv):
    """Starts argv, waits for its answer to a ping, closes its stdin: (ms to its end, CPU ms)."""
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    child.stdin.write(b'{"ping": true}\n')
    child.stdin.flush()
    answer = [child.stdout.readline(), child.stdout.readline()]
    if b"pong" not in answer[0] or b"end" not in answer[1]:
        child.kill()
        raise SystemExit(f"{argv[:2]} did not answer the ping: {answer!r}")
    started = time.perf_counter()
    child.stdin.close()
    _, status, usage = os.wait4(child.pid, 0)
    ended = time.perf_counter()
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stdout.close()
    if child.returncode != 0:
        raise SystemExit(f"{argv[:2]} ended with status {child.returncode}")
    return (ended - started) * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 31
    if rounds < 1:
        raise SystemExit("ROUNDS: a whole number, 1 or more")
    helper, baseline = [], []
    for _ in range(rounds):
        helper.append(leave([sys.executable, HELPER, "--serve"]))
        baseline.append(leave([sys.executable, "-c", BASELINE]))
    rows = [("transid-search.py --serve (as built)", helper), ("same modules, orderly exit (baseline)", baseline)]
    print(f"From stdin closed to the process's end, median of {rounds} (CPU: the child's whole life)")
    print("| process | exit | CPU |")
    print("|---|---|---|")
    for name, figures in rows:
        print(f"| {name} | {statistics.median(f[0] for f in figures):.2f} ms | {statistics.median(f[1] for f in figures):.1f} ms |")
    exit_ms = statistics.median(f[0] for f in helper)
    ratio = exit_ms / statistics.median(f[0] for f in baseline)
    verdict = "PASS" if exit_ms < GOAL_MS else "FAIL"
    print(f"helper exit {exit_ms:.2f} ms = {ratio * 100:.0f} % of the baseline's; goal under {GOAL_MS} ms: {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
