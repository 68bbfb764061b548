#!/usr/bin/env bash
# What a fanotify watch sees of a btrfs subvolume's changes, on this kernel: on a fresh pool with two
# subvolumes, a group reporting directory handles and names (FAN_REPORT_DFID_NAME) tries a
# filesystem mark on a subvolume, then on the pool's top level; then one subvolume gets a new file,
# a new directory with a file, a chmod, a rename, and a file written through a shared mapping (mmap +
# msync, then closed), and the other subvolume a new file. Prints the marks' outcome and the events
# after each step. Usage: bench/fanotify-probe.sh (as root; a few seconds).
set -eu
. "$(dirname "$0")/fresh-pool.sh"
fresh_pool fanprobe$$ 1G
btrfs -q subvolume create "$mnt/live"
btrfs -q subvolume create "$mnt/other"
python3 - "$mnt" <<'PY'
import ctypes, mmap, os, select, struct, sys, time

top = sys.argv[1]
live, other = top + "/live", top + "/other"
libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
FAN_REPORT_DFID_NAME, FAN_MARK_ADD, FAN_MARK_FILESYSTEM, AT_FDCWD = 0xC00, 0x1, 0x100, -100
NAMES = {0x2: "modify", 0x4: "attrib", 0x8: "close_write", 0x40: "moved_from", 0x80: "moved_to",
         0x100: "create", 0x200: "delete", 0x40000000: "dir"}
mask = sum(NAMES) | 0x08000000  # and FAN_EVENT_ON_CHILD
group = libc.fanotify_init(FAN_REPORT_DFID_NAME, os.O_RDONLY)
if group < 0:
    sys.exit("fanotify_init: " + os.strerror(ctypes.get_errno()))
for where in (live, top):
    ok = libc.fanotify_mark(group, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, where.encode()) == 0
    print(f"filesystem mark on {'a subvolume' if where == live else 'the top level'}:",
          "ok" if ok else os.strerror(ctypes.get_errno()))

def events(step):
    time.sleep(0.2)
    seen = []
    while select.select([group], [], [], 0.3)[0]:
        buf = os.read(group, 65536)
        at = 0
        while at < len(buf):
            length, _, _, meta, m, _, _ = struct.unpack_from("=IBBHQii", buf, at)
            info, names = at + meta, []
            while info < at + length:
                _, _, ilen = struct.unpack_from("=BBH", buf, info)
                handle_bytes = struct.unpack_from("=I", buf, info + 12)[0]
                names.append(buf[info + 20 + handle_bytes : info + ilen].split(b"\0")[0].decode())
                info += ilen
            kinds = "+".join(n for bit, n in NAMES.items() if m & bit)
            seen.append(f"{','.join(names)} ({kinds})")
            at += length
    print(f"{step}: {'; '.join(seen) if seen else 'no event'}")

open(live + "/a", "w").write("x")
os.mkdir(live + "/d")
open(live + "/d/b", "w").write("y")
os.chmod(live + "/a", 0o600)
os.rename(live + "/a", live + "/d/a2")
with open(live + "/m", "wb") as f:
    f.write(b"\0" * 4096)
events("create a, mkdir d, create d/b, chmod a, rename a to d/a2, create m")
f = open(live + "/m", "r+b")
mapped = mmap.mmap(f.fileno(), 4096)
events("m opened for writing and mapped")
mapped[0:5] = b"HELLO"
mapped.flush()
events("m written through the mapping, msync")
mapped.close()
f.close()
events("m unmapped and closed")
open(other + "/z", "w").write("z")
events("create z in the other subvolume")
PY
