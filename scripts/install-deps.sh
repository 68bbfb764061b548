#!/usr/bin/env bash
# Installs what understudy needs on a fresh Debian/Ubuntu host (as root): the Debian packages of the
# programs it runs, and the npm packages of package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
packages=(
  btrfs-progs util-linux mount iproute2 nftables iputils-arping kmod procps psmisc curl ca-certificates
  busybox-static debootstrap xz-utils tar patch rsync attr diffutils e2fsprogs
  python3  # the transid search of the disk sync (src/disk-copy/btrfs/transid-search.py: ioctls Node has no binding for)
  clamav
  keepalived tcpdump
  dpkg-dev apt-utils gnupg gpgv
  debian-archive-keyring  # trust anchor of apt feeds of the Debian archives (feed add --debian-archive-keyring)
  dovecot-imapd vsftpd
  lxc uidmap
  postgresql-15 openssl  # the fleet control plane (tests run their own clusters, never the service)
  chromium  # the console's browser test (driven by playwright-core; no browser download)
)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  # Services from these packages (dovecot, vsftpd, keepalived, clamav-freshclam) must not start: tests
  # start their own instances with their own configuration.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.understudy
  if [ ! -e /usr/sbin/policy-rc.d ]; then cp /usr/sbin/policy-rc.d.understudy /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added_policy=1; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ "${added_policy:-0}" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  rm -f /usr/sbin/policy-rc.d.understudy
fi
modprobe btrfs 2>/dev/null || true
# understudy plugs LXC LCs into its own bridges: LXC's default bridge (lxcbr0, 10.0.3.0/24, dnsmasq) stays off.
if [ -f /etc/default/lxc-net ]; then sed -i 's/^USE_LXC_BRIDGE="true"/USE_LXC_BRIDGE="false"/' /etc/default/lxc-net; fi
# Unprivileged LXC LCs take their uid/gid ranges from root's subordinate ids (65536 per LC).
if ! grep -qE '^(root|0):' /etc/subuid 2>/dev/null || ! grep -qE '^(root|0):' /etc/subgid 2>/dev/null; then
  usermod --add-subuids 1000000-68108863 --add-subgids 1000000-68108863 root
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
