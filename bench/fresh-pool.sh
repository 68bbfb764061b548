# Sourced by the bench scripts: a fresh btrfs pool of size $2 on a sparse loop image under /tmp,
# mounted noatime (as the host's pools are) at $mnt, named after $1; removed on exit, even on failure.
# Sets img, mnt and dev; the caller's EXIT trap is replaced.
fresh_pool() {
  img=/tmp/$1.img
  mnt=/tmp/$1.mnt
  dev=
  trap 'umount "$mnt" 2>/dev/null || true; if [ -n "$dev" ]; then losetup -d "$dev" 2>/dev/null || true; fi; rm -rf "$img" "$mnt"' EXIT
  truncate -s "$2" "$img"
  dev=$(losetup -f --show "$img")
  mkfs.btrfs -q "$dev" 2>/dev/null
  mkdir -p "$mnt"
  mount -o noatime "$dev" "$mnt"
}
