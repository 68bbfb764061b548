#!/usr/bin/env python3
"""What changed in a btrfs subvolume after a transaction, found without any snapshot.

Usage: transid-search.py SUBVOLUME SINCE [--limit N]
       transid-search.py --serve   (requests on stdin, one JSON object a line: see serve)

Served, it also makes read-only snapshots (BTRFS_IOC_SNAP_CREATE_V2), so that the hold of a switch
starts no `btrfs` process for the snapshots of its final sync.

Writes out the pool's buffered data and commits it (BTRFS_IOC_SYNC, as syncfs(2): a commit alone
leaves buffered writes out of the tree), then searches the subvolume's tree for the items in leaves
newer than transaction SINCE (BTRFS_IOC_TREE_SEARCH_V2 with min_transid: every older node is
skipped, so the cost follows the change, not the tree). Prints JSON lines on stdout:
  {"transid": T, "uuid": U, "createdIn": C}
                      the committed transaction (the next search starts after it), the
                      subvolume's UUID (a subvolume put in another's place has another) and the
                      transaction that created it (a snapshot holds every change of its source
                      up to that one);
  {"inode": ...}      one per inode changed after SINCE (its item's transid is newer), with
                      kind, created (its generation is newer), size, nbytes, nlink, nocow, transid
                      (the transaction that last changed its item), paths
                      (every name, relative to the subvolume), newerEntry (a name whose directory
                      entry is newer: created, renamed or linked since), inline (data in the
                      metadata), extents ([offset, length] of its file extents newer than SINCE)
                      and, served with markAt, mark (see answer);
  {"overflow": true}  more than N inodes changed (default 100000), a changed name is not UTF-8, or a
                      changed file has names only extended references hold (many hard links):
                      nothing else is printed after it, and the caller falls back to a sync that
                      does not need the list.
A removed inode is not listed (its item is gone); its directory is, as changed.
Exits 2 with a message on stderr for bad arguments, 1 when an ioctl fails.
"""
import fcntl, hashlib, json, os, stat, struct, sys, uuid

TREE_SEARCH_V2 = 0xC0709411  # _IOWR(0x94, 17, struct btrfs_ioctl_search_args_v2)
INO_LOOKUP = 0xD0009412  # _IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args)
SYNC = 0x9408  # _IO(0x94, 8): writes out delalloc, then commits
START_SYNC = 0x80089418  # _IOR(0x94, 24, __u64): the running transaction's id (committing it), or the last committed
WAIT_SYNC = 0x40089416  # _IOW(0x94, 22, __u64)
FS_INFO = 0x8400941F  # _IOR(0x94, 31, struct btrfs_ioctl_fs_info_args): 1024 bytes, flags at 48, generation at 56
FS_INFO_FLAG_GENERATION = 1 << 1
FS_IOC_GETFLAGS = 0x80086601  # _IOR('f', 1, long)
FS_NOCOW_FL = 0x00800000
GET_SUBVOL_INFO = 0x81F8943C  # _IOR(0x94, 60, struct btrfs_ioctl_get_subvol_info_args): 504 bytes, uuid at 296, otransid at 352
SNAP_CREATE_V2 = 0x50009417  # _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2): 4096 bytes
SUBVOL_RDONLY = 1 << 1
INODE_ITEM, INODE_REF, XATTR_ITEM, DIR_ITEM, EXTENT_DATA = 1, 12, 24, 84, 108
FIRST_FREE_INO, TOP_DIR_INO = 256, 256
NODATACOW = 1 << 0
MAX_U64 = 2**64 - 1
KINDS = {0o040000: "dir", 0o100000: "file", 0o120000: "symlink"}


def search(fd, min_transid, lo, hi):
    """(objectid, type, offset, data) of the items between keys lo and hi in leaves newer than
    min_transid, read 64 KiB at a time: room for the largest item (of a 64 KiB node), and below
    the size from which Python's allocator maps fresh memory for each buffer (a 256 KiB buffer
    measured 0.3 ms a call, 50 times a 64 KiB one)."""
    size = 1 << 16
    found = []
    while True:
        key = struct.pack("=7Q4I4Q", 0, lo[0], hi[0], lo[2], hi[2], min_transid, MAX_U64, lo[1], hi[1], 4096, 0, 0, 0, 0, 0)
        buf = bytearray(key + struct.pack("=Q", size) + bytes(size))
        fcntl.ioctl(fd, TREE_SEARCH_V2, buf, True)
        count = struct.unpack_from("=I", buf, 64)[0]
        if count == 0:
            return found
        at = 112
        for _ in range(count):
            _, objectid, offset, kind, length = struct.unpack_from("=3Q2I", buf, at)
            found.append((objectid, kind, offset, bytes(buf[at + 32 : at + 32 + length])))
            at += 32 + length
        o, k, f = found[-1][:3]
        lo = (o, k, f + 1) if f < MAX_U64 else (o, k + 1, 0) if k < 255 else (o + 1, 0, 0)
        if lo > hi:
            return found


def dir_path(fd, ino, cache):
    """The path of directory `ino` inside the subvolume ('' for its top)."""
    if ino not in cache:
        buf = bytearray(struct.pack("=QQ", 0, ino) + bytes(4080))
        fcntl.ioctl(fd, INO_LOOKUP, buf, True)
        cache[ino] = buf[16:].split(b"\0")[0].decode().rstrip("/")
    return cache[ino]


def names(items):
    """(parent, name) of every INODE_REF item (one item holds every name in the same parent)."""
    out = []
    for _, kind, parent, data in items:
        if kind != INODE_REF:
            continue
        at = 0
        while at + 10 <= len(data):
            name_len = struct.unpack_from("=H", data, at + 8)[0]
            out.append((parent, data[at + 10 : at + 10 + name_len]))
            at += 10 + name_len
    return out


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C = _crc32c_table()


def name_hash(name):
    """btrfs's directory-entry hash: crc32c seeded with ~1, with no final inversion."""
    crc = 0xFFFFFFFE
    for byte in name:
        crc = CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def entry_transid(fd, parent, name):
    """The transid of `name`'s directory entry (DIR_ITEM) in `parent`, or None."""
    key = name_hash(name)
    for _, _, _, data in search(fd, 0, (parent, DIR_ITEM, key), (parent, DIR_ITEM, key)):
        at = 0  # one item holds every name with that hash
        while at + 30 <= len(data):
            transid, data_len, name_len = struct.unpack_from("=QHH", data, at + 17)
            if data[at + 30 : at + 30 + name_len] == name:
                return transid
            at += 30 + name_len + data_len
    return None


def file_mark(fd, ino, since, fields):
    """What a regular file holds now, as far as a later search after transaction `since` can tell it
    apart: `fields` (size, nlink, uid, gid, mode, ctime and mtime in ns: from lstat, or from the
    committed inode item, which hold the same), its file extent items newer than `since` (a write,
    even within the same transaction, makes new ones: a copy-on-write extent goes to a new place,
    and a freed one is not reused before the commit) and its extended attributes. Not meaningful for
    a file overwritten in place (nodatacow), whose extents do not change."""
    digest = hashlib.sha256(struct.pack("=7Q", *fields))
    for _, kind, offset, data in search(fd, since + 1, (ino, EXTENT_DATA, 0), (ino, EXTENT_DATA, MAX_U64)):
        if kind == EXTENT_DATA and struct.unpack_from("=Q", data, 0)[0] > since:
            digest.update(struct.pack("=QI", offset, len(data)) + data)
    for _, kind, offset, data in search(fd, 0, (ino, XATTR_ITEM, 0), (ino, XATTR_ITEM, MAX_U64)):
        if kind == XATTR_ITEM:
            digest.update(struct.pack("=QI", offset, len(data)) + data)
    return digest.hexdigest()[:32]


def item_fields(data):
    """file_mark's fields from an inode item."""
    size = struct.unpack_from("=Q", data, 16)[0]
    nlink, uid, gid, mode = struct.unpack_from("=4I", data, 40)
    ctime_s, ctime_ns = struct.unpack_from("=QI", data, 124)
    mtime_s, mtime_ns = struct.unpack_from("=QI", data, 136)
    return (size, nlink, uid, gid, mode, ctime_s * 10**9 + ctime_ns, mtime_s * 10**9 + mtime_ns)


def stat_fields(st):
    """file_mark's fields from lstat."""
    return (st.st_size, st.st_nlink, st.st_uid, st.st_gid, st.st_mode, st.st_ctime_ns, st.st_mtime_ns)


def answer(subvolume, since, limit, emit, mark_at=None):
    """Emits the lines for one search (see the file comment); with `mark_at`, each regular file
    (not nodatacow) whose item was last changed in that transaction gets its `mark` (file_mark)."""
    fd = os.open(subvolume, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, SYNC)
        buf = bytearray(8)
        fcntl.ioctl(fd, START_SYNC, buf, True)
        fcntl.ioctl(fd, WAIT_SYNC, bytes(buf))
        info = bytearray(504)
        fcntl.ioctl(fd, GET_SUBVOL_INFO, info, True)
        emit({
            "transid": struct.unpack("=Q", buf)[0],
            "uuid": str(uuid.UUID(bytes=bytes(info[296:312]))),
            "createdIn": struct.unpack_from("=Q", info, 352)[0],
        })
        changed, extents, marks = {}, {}, {}
        for ino, kind, offset, data in search(fd, since + 1, (FIRST_FREE_INO, 0, 0), (MAX_U64, 255, MAX_U64)):
            if kind == INODE_ITEM:
                generation, transid, size, nbytes = struct.unpack_from("=4Q", data, 0)
                nlink, _, _, mode = struct.unpack_from("=4I", data, 40)
                flags = struct.unpack_from("=Q", data, 64)[0]
                if transid > since:
                    if mark_at is not None and transid == mark_at and mode & 0o170000 == 0o100000 and not flags & NODATACOW:
                        marks[ino] = file_mark(fd, ino, since, item_fields(data))
                    changed[ino] = {
                        "ino": ino,
                        "kind": KINDS.get(mode & 0o170000, "other"),
                        "created": generation > since,
                        "size": size,
                        "nbytes": nbytes,
                        "nlink": nlink,
                        "nocow": bool(flags & NODATACOW),
                        "transid": transid,
                    }
                    if len(changed) > limit:
                        emit({"overflow": True})
                        return
            elif kind == EXTENT_DATA and struct.unpack_from("=Q", data, 0)[0] > since:
                entry = extents.setdefault(ino, {"inline": False, "ranges": []})
                if data[20] == 0:
                    entry["inline"] = True
                else:
                    entry["ranges"].append([offset, struct.unpack_from("=Q", data, 45)[0]])
        paths = {}
        for ino, inode in changed.items():
            refs = names(search(fd, 0, (ino, INODE_REF, 0), (ino, INODE_REF, MAX_U64)))
            if ino == TOP_DIR_INO:
                inode["paths"], inode["newerEntry"] = [""], False
            else:
                try:
                    inode["paths"] = [os.path.join(dir_path(fd, parent, paths), name.decode()) for parent, name in refs]
                except UnicodeDecodeError:
                    # Names travel as JSON text: a name that is not UTF-8 sends the caller to its fallback.
                    emit({"overflow": True, "reason": "a changed name is not UTF-8"})
                    return
                inode["newerEntry"] = any((entry_transid(fd, parent, name) or MAX_U64) > since for parent, name in refs)
                if inode["kind"] != "dir" and len(refs) < inode["nlink"]:
                    if not refs and not any(search(fd, 0, (ino, INODE_ITEM, 0), (ino, INODE_ITEM, 0))):
                        # Removed after its item was read (a source still written): nothing to carry
                        # under its names; its directory's change says it went.
                        inode["paths"] = []
                    else:
                        # The other names are in extended references (INODE_EXTREF), which this does not read.
                        emit({"overflow": True, "reason": f"inode {ino} has more names than its references list"})
                        return
            if ino in marks:
                inode["mark"] = marks[ino]
            inode["inline"] = extents.get(ino, {}).get("inline", False)
            inode["extents"] = extents.get(ino, {}).get("ranges", [])
            emit({"inode": inode})
    finally:
        os.close(fd)


def snapshot(source, target):
    """A read-only snapshot of subvolume `source` at `target` (absent; its directory must exist). The
    ioctl writes out the source's buffered data and commits the snapshot."""
    name = os.path.basename(target).encode()
    if not name or name in (b".", b"..") or len(name) > 255:
        raise ValueError(f"not a snapshot name: {target}")
    src = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
    try:
        parent = os.open(os.path.dirname(target), os.O_RDONLY | os.O_DIRECTORY)
        try:
            args = struct.pack("=qQQ4Q", src, 0, SUBVOL_RDONLY, 0, 0, 0, 0) + name + bytes(4040 - len(name))
            fcntl.ioctl(parent, SNAP_CREATE_V2, bytearray(args), True)
        finally:
            os.close(parent)
    finally:
        os.close(src)


def fsync_paths(root, relative, limit, since):
    """Makes the paths `relative` of subvolume `root` durable by fsync (each regular file, then each
    directory: a directory's fsync records its names, created or removed; a path gone is skipped, its
    directory records the removal), starting no commit. On btrfs an fsync writes the inode's items to
    the log tree, whose cost follows the inodes, while a commit writes the copied nodes of every tree
    it changed, more the larger the subvolume. The fsyncs run one after another: overlapping ones
    measured twice as slow (bench/durable-by-fsync.py, `parallel+start`).

    Returns {"through": T, "marks": {path: mark}}: T is the pool's newest transaction, which holds
    these writes or follows the one that does, and a later write may share it; each regular file
    (not nodatacow) gets its file_mark after transaction `since` (the caller's base), which a later
    search (mark_at T) compares to tell the file unchanged since. Returns None, having fsynced
    nothing, when a path is neither a regular file nor a directory (a symlink cannot be opened for
    it) or there are more than `limit` paths: the caller commits instead."""
    unique = list(dict.fromkeys(relative))
    if len(unique) > limit:
        return None
    files, directories = [], []
    for name in unique:
        full = root if name == "." else os.path.join(root, name)
        try:
            mode = os.lstat(full).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISREG(mode):
            files.append((name, full))
        elif stat.S_ISDIR(mode):
            directories.append((name, full))
        else:
            return None
    marks = {}
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name, full in files:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
                st = os.fstat(fd)
                flags = bytearray(8)
                fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
                if not struct.unpack("=Q", flags)[0] & FS_NOCOW_FL:
                    marks[name] = file_mark(top, st.st_ino, since, stat_fields(st))
            finally:
                os.close(fd)
        for _, full in directories:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        info = bytearray(1024)
        struct.pack_into("=Q", info, 48, FS_INFO_FLAG_GENERATION)
        fcntl.ioctl(top, FS_INFO, info, True)
        return {"through": struct.unpack_from("=Q", info, 56)[0], "marks": marks}
    finally:
        os.close(top)


def with_xattrs(paths):
    """The paths (absolute, links not followed) that have an extended attribute (ACLs included);
    a path that is gone has none."""
    found = []
    for p in paths:
        try:
            if os.listxattr(p, follow_symlinks=False):
                found.append(p)
        except (FileNotFoundError, NotADirectoryError):
            pass
    return found


def emit_line(value):
    sys.stdout.write(json.dumps(value) + "\n")


def serve():
    """One request per line on stdin, from the process that started this one: a search
    ({"subvolume", "since", "limit"}), a snapshot ({"snapshot": source, "target"}, answered by
    {"snapshotted": true}), durable paths ({"fsync": subvolume, "paths": [relative paths],
    "limit": N, "since": T}, answered by {"fsynced": {"through", "marks"} or null}: see fsync_paths), the
    paths with extended attributes ({"xattrs": [paths]}, answered by {"withXattrs": [paths]}) or
    {"ping": true} (answered by {"pong": true} once this process is up);
    each answer's lines, then {"end": true} (after {"error": message} when it
    failed)."""
    for line in sys.stdin:
        request = {}
        try:
            request = json.loads(line)
            if "ping" in request:
                emit_line({"pong": True})
            elif "xattrs" in request:
                emit_line({"withXattrs": with_xattrs([str(p) for p in request["xattrs"]])})
            elif "fsync" in request:
                paths = [str(p) for p in request["paths"]]
                fsynced = fsync_paths(str(request["fsync"]), paths, int(request["limit"]), int(request["since"]))
                emit_line({"fsynced": fsynced})
            elif "snapshot" in request:
                snapshot(str(request["snapshot"]), str(request["target"]))
                emit_line({"snapshotted": True})
            else:
                mark_at = request.get("markAt")
                answer(
                    request["subvolume"],
                    int(request["since"]),
                    int(request["limit"]),
                    emit_line,
                    None if mark_at is None else int(mark_at),
                )
        except OSError as error:
            # An ioctl's error names no file: a snapshot's is about its target (an existing name, a full pool).
            subject = (
                request.get("subvolume") or request.get("target") or request.get("fsync")
                if isinstance(request, dict)
                else None
            )
            emit_line({"error": f"{error.filename or subject}: {error.strerror}"})
        except (ValueError, KeyError, TypeError) as error:
            emit_line({"error": f"bad request: {error}"})
        emit_line({"end": True})
        sys.stdout.flush()
    # Stdin closed: every request is answered and flushed. An orderly exit of the interpreter (its
    # modules finalized) costs about 7 ms of a CPU; a switch closes this helper right after the
    # final sync, as the hold is released, where that CPU is the service's. Nothing is left to
    # write (answers are flushed, fsyncs done), so the process leaves at once.
    sys.stderr.flush()
    os._exit(0)


def main(argv):
    if argv == ["--serve"]:
        return serve()
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--limit"):
        print("usage: transid-search.py SUBVOLUME SINCE [--limit N] | transid-search.py --serve", file=sys.stderr)
        return 2
    try:
        since = int(argv[1])
        limit = int(argv[3]) if len(argv) == 4 else 100000
    except ValueError:
        print("transid-search.py: SINCE and N must be whole numbers", file=sys.stderr)
        return 2
    try:
        answer(argv[0], since, limit, emit_line)
    except OSError as error:
        print(f"transid-search.py: {error.filename or argv[0]}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
