#!/usr/bin/env bash
# tools/deb-test.sh: the Debian package on this machine (root): builds it (tools/deb.sh),
# checks its contents, installs it with apt (its Depends resolved), starts an instance with
# the init script as user waitressd without preload_app (uids read from /proc), reloads with
# HUP, rotates the logs with logrotate under a bounded load and counts every access and error
# line, stops, checks the LSB exit codes, removes the package while an instance runs (stopped
# with it), and purges (nothing left behind).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }
step() { echo "deb-test: $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "deb-test: skipped (needs root)"; exit 0; }
command -v logrotate >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq logrotate >/dev/null; }

deb=$(tools/deb.sh)
step "built $deb"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for p in /usr/bin/waitressd /usr/share/man/man8/waitressd.8.gz /usr/share/man/man5/waitressd.ini.5.gz \
	/lib/systemd/system/waitressd@.service /lib/systemd/system/waitressd@.socket \
	/etc/init.d/waitressd /etc/default/waitressd /etc/logrotate.d/waitressd \
	/etc/waitressd/example.ini /usr/share/doc/waitressd/copyright /usr/share/doc/waitressd/changelog.gz; do
	grep -qx "$p" <<<"$contents" || fail "package lacks $p"
done
conffiles=$(dpkg-deb -I "$deb" conffiles)
for c in /etc/init.d/waitressd /etc/default/waitressd /etc/logrotate.d/waitressd /etc/waitressd/example.ini; do
	grep -qx "$c" <<<"$conffiles" || fail "$c is not a conffile"
done
depends=$(dpkg-deb -f "$deb" Depends)
grep -q 'libpython3.11' <<<"$depends" || fail "Depends lacks libpython3.11: $depends"

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
step "installed: $(dpkg-query -W waitressd)"
getent passwd waitressd >/dev/null || fail "no user waitressd"
[ -d /var/log/waitressd ] || fail "no /var/log/waitressd"
wuid=$(id -u waitressd)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name=citest$$
ini=/etc/waitressd/$name.ini
cleanup() {
	/etc/init.d/waitressd stop "$name" >/dev/null 2>&1 || true
	rm -f "$ini" /tmp/deb-test-$$.*
}
trap cleanup EXIT
cat > "$ini" <<INI
[app:main]
use = call:waitressd_example:factory

[server:main]
use = egg:waitress#main
listen = 127.0.0.1:$port
workers = 2
user = waitressd
error_log = /var/log/waitressd/$name.error.log
access_log = /var/log/waitressd/$name.access.log
INI

# One HTTP/1.0 GET over bash's /dev/tcp; prints the status code (000 on failure).
get() {
	local code=000
	if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
		printf 'GET %s HTTP/1.0\r\n\r\n' "$1" >&3
		code=$(head -c 12 <&3 | cut -c10-12) || true
		exec 3<&- 3>&-
	fi
	echo "${code:-000}"
}

/etc/init.d/waitressd start "$name" || fail "init script start"
[ "$(get /)" = 200 ] || fail "not serving right after start"
master=$(cat "/run/waitressd/$name.pid")
[ "$(awk '/^Uid:/{print $2}' "/proc/$master/status")" = 0 ] || fail "master is not root"
workers=$(cat "/proc/$master/task/$master/children")
[ "$(wc -w <<<"$workers")" = 2 ] || fail "want 2 workers, have: $workers"
for w in $workers; do
	uids=$(awk '/^Uid:/{print $2,$3,$4,$5}' "/proc/$w/status")
	[ "$uids" = "$wuid $wuid $wuid $wuid" ] || fail "worker $w uids: $uids"
done
/etc/init.d/waitressd status "$name" >/dev/null || fail "status of a running instance"

/etc/init.d/waitressd reload "$name" >/dev/null || fail "reload"
# The old workers drain and exit (graceful_timeout); the new ones are other processes.
for _ in $(seq 1 300); do
	new=$(cat "/proc/$master/task/$master/children")
	old=0
	for w in $workers; do grep -qw "$w" <<<"$new" && old=1; done
	[ $old = 0 ] && break
	sleep 0.1
done
[ $old = 0 ] || fail "old workers still there 30 s after the reload: $new"
[ "$(wc -w <<<"$new")" = 2 ] || fail "want 2 new workers, have: $new"
[ "$(get /)" = 200 ] || fail "not serving after reload"

# Bounded load (15 s) of /stderr requests while logrotate renames the logs and USR1s.
: > /tmp/deb-test-$$.codes
(
	end=$((SECONDS + 15))
	while [ $SECONDS -lt $end ]; do get /stderr >> /tmp/deb-test-$$.codes; done
) &
loader=$!
sleep 4
logrotate -f -s "/tmp/deb-test-$$.state" /etc/logrotate.d/waitressd || fail "logrotate"
sleep 2
logrotate -f -s "/tmp/deb-test-$$.state" /etc/logrotate.d/waitressd || fail "logrotate (2nd)"
wait "$loader"
sent=$(wc -l < /tmp/deb-test-$$.codes)
ok=$(grep -c '^200$' /tmp/deb-test-$$.codes || true)
[ "$sent" -gt 0 ] && [ "$ok" = "$sent" ] || fail "$ok of $sent requests got 200 during rotation"
sleep 1
logs=/var/log/waitressd
ls "$logs/$name.access.log.1" "$logs/$name.access.log.2.gz" >/dev/null || fail "not rotated: $(ls $logs)"
# Every request: one access line and one stderr line, across current and rotated files.
acc=$(zcat -f "$logs/$name".access.log* | grep -c '"GET /stderr HTTP/1.0" 200' || true)
err=$(zcat -f "$logs/$name".error.log* | grep -c 'waitressd_example: a line on stderr' || true)
[ "$acc" = "$ok" ] || fail "access lines $acc != requests $ok"
[ "$err" = "$ok" ] || fail "stderr lines $err != requests $ok"
[ -s "$logs/$name.access.log" ] || fail "nothing in the reopened access log"
step "rotation under load: $ok requests, $acc access lines, $err error-log lines"

# A package upgrade under a bounded load: postinst USR2s the running instance (new binary in
# place, listeners handed over); every request is answered.
: > /tmp/deb-test-$$.codes
(
	end=$((SECONDS + 30))
	while [ $SECONDS -lt $end ] && [ ! -e /tmp/deb-test-$$.stop ]; do get / >> /tmp/deb-test-$$.codes; done
) &
loader=$!
sleep 1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "$deb" >/dev/null || fail "reinstall"
newmaster=$(cat "/run/waitressd/$name.pid")
[ "$newmaster" != "$master" ] || fail "the upgrade did not replace the master ($master)"
for _ in $(seq 1 300); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
kill -0 "$master" 2>/dev/null && fail "old master $master still running after the upgrade"
sleep 1
touch /tmp/deb-test-$$.stop
wait "$loader"
sent=$(wc -l < /tmp/deb-test-$$.codes)
ok=$(grep -c '^200$' /tmp/deb-test-$$.codes || true)
[ "$sent" -gt 0 ] && [ "$ok" = "$sent" ] || fail "$ok of $sent requests got 200 during the upgrade"
master=$newmaster
for w in $(cat "/proc/$master/task/$master/children"); do
	uids=$(awk '/^Uid:/{print $2,$3,$4,$5}' "/proc/$w/status")
	[ "$uids" = "$wuid $wuid $wuid $wuid" ] || fail "worker $w uids after upgrade: $uids"
done
step "upgrade under load: master $master, $ok requests, all 200"

/etc/init.d/waitressd stop "$name" || fail "stop"
kill -0 "$master" 2>/dev/null && fail "master still running after stop"
grep -q "exiting with code 0" "$logs/$name.error.log" || fail "no clean exit in the error log"
set +e
/etc/init.d/waitressd status "$name" >/dev/null; [ $? = 3 ] || fail "status of a stopped instance is not 3"
/etc/init.d/waitressd reload "$name" >/dev/null; [ $? = 7 ] || fail "reload of a stopped instance is not 7"
/etc/init.d/waitressd stop "$name" >/dev/null; [ $? = 0 ] || fail "stop of a stopped instance is not 0"
# A pidfile left by a master that died, its PID given since to another program: that program
# is never signalled, status says the pidfile is stale, start starts and takes the pidfile over.
sleep 300 &
other=$!
echo "$other" >"/run/waitressd/$name.pid"
/etc/init.d/waitressd status "$name" >/dev/null; [ $? = 1 ] || fail "status over a stale pidfile is not 1"
/etc/init.d/waitressd stop "$name" >/dev/null; [ $? = 0 ] || fail "stop over a stale pidfile is not 0"
/etc/init.d/waitressd reload "$name" >/dev/null; [ $? = 7 ] || fail "reload over a stale pidfile is not 7"
/etc/init.d/waitressd start "$name" >/dev/null || fail "start over a stale pidfile"
[ "$(get /)" = 200 ] || fail "not serving after a start over a stale pidfile"
[ "$(cat "/run/waitressd/$name.pid")" != "$other" ] || fail "the stale pidfile was kept"
/etc/init.d/waitressd stop "$name" >/dev/null || fail "stop after a start over a stale pidfile"
kill -0 "$other" 2>/dev/null || fail "the program a stale pidfile named was signalled"
kill "$other"
wait "$other" 2>/dev/null
step "a stale pidfile naming another program: never signalled, replaced at start"
set -e
# The package's removal stops every running instance, this one too (started by hand, not in
# INSTANCES): gracefully, and none is left serving from the removed binary.
/etc/init.d/waitressd start "$name" >/dev/null || fail "start before the removal"
master=$(cat "/run/waitressd/$name.pid")
dpkg -r waitressd >/dev/null
kill -0 "$master" 2>/dev/null && fail "master $master still running after dpkg -r"
tail -1 "$logs/$name.error.log" | grep -q "master $master: exiting with code 0" \
	|| fail "no clean exit at dpkg -r: $(tail -3 "$logs/$name.error.log")"
step "dpkg -r stopped the running instance started by hand (exit 0)"
rm -f "$ini" /tmp/deb-test-$$.*
trap - EXIT

dpkg --purge waitressd >/dev/null
for p in /usr/bin/waitressd /etc/waitressd /etc/init.d/waitressd /etc/default/waitressd \
	/etc/logrotate.d/waitressd /var/log/waitressd /lib/systemd/system/waitressd@.service; do
	[ -e "$p" ] && fail "$p left after purge"
done
ls /etc/rc?.d/*waitressd >/dev/null 2>&1 && fail "rc links left after purge"
getent passwd waitressd >/dev/null && fail "user waitressd left after purge"
getent group waitressd >/dev/null && fail "group waitressd left after purge"
step "ok"
