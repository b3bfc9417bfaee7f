#!/usr/bin/env bash
# tools/systemd-root.sh: makes (once; cached under target/) a Debian 12 minbase root with
# systemd, for tools/systemd-test.sh to boot with systemd-nspawn. Prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)/target/systemd-root"
stamp="$root/.waitressd-root-v1"
if [ -e "$stamp" ]; then echo "$root"; exit 0; fi
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
rm -rf "$root"
mirror=http://deb.debian.org/debian
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$root" "$mirror" >&2
# No console getty or network management in the container; it shares the host's network.
echo waitressd-test > "$root/etc/hostname"
touch "$stamp"
echo "$root"
