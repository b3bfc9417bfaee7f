#!/usr/bin/env bash
# tools/deb.sh: builds target/debian/waitressd_<version>_amd64.deb on Debian's own Python 3.11
# (/usr/bin/python3.11 and libpython3.11 from python3.11-dev), so workers that drop to user
# `waitressd` can start Python lazily. dpkg-deb rather than cargo-deb: no extra tool to build,
# and the maintainer scripts and conffiles are plain files under packaging/debian/.
# Depends are computed by dpkg-shlibdeps from the binary, plus python3-pastedeploy (INI mode
# loads [app:main] through PasteDeploy when no virtualenv provides it).
# Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
need=()
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
[ -e /usr/include/python3.11/Python.h ] || need+=(python3.11-dev)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
# Its own target dir: another PYO3_PYTHON would otherwise rebuild pyo3 in target/ each time.
export CARGO_TARGET_DIR="$repo/target/deb-build"
env -u VIRTUAL_ENV PYO3_PYTHON=/usr/bin/python3.11 \
	cargo build --locked --profile deb --bin waitressd >&2
bin="$CARGO_TARGET_DIR/deb/waitressd"

out="$repo/target/debian"
root="$out/root"
rm -rf "$root"
mkdir -p "$root/DEBIAN"
p=packaging/debian
install -D -m 0755 "$bin" "$root/usr/bin/waitressd"
install -D -m 0644 man/waitressd.8 "$root/usr/share/man/man8/waitressd.8"
install -D -m 0644 man/waitressd.ini.5 "$root/usr/share/man/man5/waitressd.ini.5"
gzip -9n "$root/usr/share/man/man8/waitressd.8" "$root/usr/share/man/man5/waitressd.ini.5"
install -D -m 0644 "$p/waitressd@.service" "$root/lib/systemd/system/waitressd@.service"
install -D -m 0644 "$p/waitressd@.socket" "$root/lib/systemd/system/waitressd@.socket"
install -D -m 0755 "$p/waitressd.init" "$root/etc/init.d/waitressd"
install -D -m 0644 "$p/default" "$root/etc/default/waitressd"
install -D -m 0644 "$p/logrotate" "$root/etc/logrotate.d/waitressd"
install -D -m 0644 "$p/example.ini" "$root/etc/waitressd/example.ini"
install -D -m 0644 "$p/waitressd_example.py" "$root/usr/lib/python3/dist-packages/waitressd_example.py"
install -D -m 0644 "$p/copyright" "$root/usr/share/doc/waitressd/copyright"
install -D -m 0644 "$p/changelog" "$root/usr/share/doc/waitressd/changelog"
gzip -9n "$root/usr/share/doc/waitressd/changelog"
install -D -m 0644 conf/waitressd.ini "$root/usr/share/doc/waitressd/examples/waitressd.ini"
install -D -m 0644 README.md "$root/usr/share/doc/waitressd/README.md"
for s in postinst prerm postrm; do install -m 0755 "$p/$s" "$root/DEBIAN/$s"; done
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"

# dpkg-shlibdeps wants a debian/control beside it.
work="$out/shlibs"
rm -rf "$work" && mkdir -p "$work/debian"
printf 'Source: waitressd\n\nPackage: waitressd\nArchitecture: amd64\n' > "$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O "$root/usr/bin/waitressd" | sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: waitressd
Version: $version
Architecture: amd64
Maintainer: waitressd maintainers <waitressd@localhost>
Installed-Size: $size
Depends: $shlibs, python3-pastedeploy, passwd
Section: httpd
Priority: optional
Homepage: https://github.com/waitressd/waitressd
Description: pre-forking multi-core WSGI server, a drop-in replacement for waitress
 waitressd serves Python WSGI applications from the PasteDeploy INI files of Pyramid,
 Flask and Django apps, with worker processes on every core, privilege drop, graceful
 drain and reload, access and error logs, and systemd notify and socket activation.
CONTROL
deb="$out/waitressd_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
