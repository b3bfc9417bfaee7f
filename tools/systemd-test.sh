#!/usr/bin/env bash
# tools/systemd-test.sh: the package under a real systemd on a fresh Debian 12. Boots the
# cached minbase root (tools/systemd-root.sh) with systemd-nspawn on a throw-away overlay,
# sharing the host's network, installs the .deb with apt (its Depends resolved from the
# archive), and drives systemctl through nsenter: a bad config fails start with its one line
# in systemctl status and journalctl -p err, start returns once the service answers
# (Type=notify), STATUS= shows, reload under load fails no request and returns once the new
# config serves, a reload with a broken app fails while the old workers serve, socket
# activation serves, a stop after the package upgrade drains (the new master is systemd's own
# child), the journal holds the daemon's log with priorities, and remove and purge leave no
# running unit, enablement link, user or log directory. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "systemd-test: FAIL: $*" >&2; exit 1; }
step() { echo "systemd-test: $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "systemd-test: skipped (needs root)"; exit 0; }

deb=$(tools/deb.sh)
root=$(tools/systemd-root.sh)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
port2=$(free_port)

log=target/systemd-test-nspawn.log
systemd-nspawn -q -D "$root" --machine="waitressd-test-$$" --volatile=overlay --register=no --keep-unit \
	--bind-ro="$(dirname "$deb"):/debs" -b >"$log" 2>&1 </dev/null &
nspawn=$!
loader=""
cleanup() {
	[ -n "$loader" ] && kill "$loader" 2>/dev/null || true
	if kill -0 "$nspawn" 2>/dev/null; then
		kill -TERM "$nspawn" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$nspawn" 2>/dev/null || true
	fi
	wait "$nspawn" 2>/dev/null || true
}
trap cleanup EXIT

# The container's init: the child of systemd-nspawn.
init=""
for _ in $(seq 1 300); do
	init=$(cat "/proc/$nspawn/task/$nspawn/children" 2>/dev/null | awk '{print $1}') || true
	# nspawn forks helpers first: wait for the child that is systemd.
	[ -n "$init" ] && [ "$(cat "/proc/$init/comm" 2>/dev/null)" = systemd ] && break
	init=""
	kill -0 "$nspawn" 2>/dev/null || fail "systemd-nspawn exited: $(tail -20 "$log")"
	sleep 0.1
done
[ -n "$init" ] || fail "no container init"
ct() { nsenter -t "$init" -a -- "$@"; }
# Until PID 1 answers on its bus and has finished booting (at most 120 s).
state=""
for _ in $(seq 1 240); do
	state=$(ct systemctl is-system-running 2>/dev/null || true)
	case "$state" in running|degraded) break ;; esac
	sleep 0.5
done
case "$state" in running|degraded) ;; *) fail "container systemd state: $state ($(tail -20 "$log"))" ;; esac
step "container booted ($state), init pid $init"

ct env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
# logrotate now too: installing a package later would run a daemon-reload, which hides from
# the stop below whether systemd took the upgraded master for its own child.
ct env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "/debs/$(basename "$deb")" logrotate >/dev/null \
	|| fail "apt-get install of the package"
ct getent passwd waitressd >/dev/null || fail "no user waitressd"
ct sed -i "s/127.0.0.1:6543/127.0.0.1:$port/" /etc/waitressd/example.ini

# get PORT PATH: prints the response head (empty on failure).
head_of() {
	if exec 3<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null; then
		printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3
		sed '/^\r$/q' <&3 || true
		exec 3<&- 3>&-
	fi
}
code() { head_of "$1" "$2" | head -1 | cut -d' ' -f2; }

# A broken config: start fails, and the one line naming file:line, key and value is in
# systemctl status and at priority err in the journal.
ct sh -c "sed 's/^workers = 2/workers = banana/' /etc/waitressd/example.ini > /etc/waitressd/bad.ini"
if ct systemctl start waitressd@bad 2>/dev/null; then fail "systemctl start with a bad config succeeded"; fi
badstatus=$(ct systemctl status waitressd@bad --no-pager 2>&1 || true)
grep -q "bad.ini:[0-9]*: \[server:main\] workers = 'banana'" <<<"$badstatus" \
	|| fail "systemctl status lacks the config error: $badstatus"
ct journalctl -u waitressd@bad -p err --no-pager -o cat | grep -q "^waitressd: /etc/waitressd/bad.ini:[0-9]*: .*banana" \
	|| fail "journalctl -p err lacks the config error: $(ct journalctl -u waitressd@bad --no-pager -o cat)"
[ "$(ct systemctl show -p ExecMainStatus --value waitressd@bad)" = 2 ] || fail "bad config: exit status not 2"
ct rm /etc/waitressd/bad.ini
step "bad config: start fails, the line in systemctl status and journalctl -p err, exit 2"

ct systemctl enable --now waitressd@example >/dev/null 2>&1 || fail "systemctl enable --now: $(ct systemctl status waitressd@example --no-pager)"
# Type=notify: start returned, so it answers now (no retry).
[ "$(code "$port" /)" = 200 ] || fail "not answering right after systemctl start"
status=$(ct systemctl show -p StatusText --value waitressd@example)
[[ "$status" == "example: serving with 2 worker(s)" ]] || fail "StatusText: $status"
ct systemctl status waitressd@example --no-pager | grep -q 'Status: "example: serving with 2 worker(s)"' || fail "no Status: in systemctl status"
step "start: serving, $status"

# Reload under a bounded load (at most 30 s): every request answered 200.
codes=$(mktemp)
stopflag=$(mktemp -u)
(
	end=$((SECONDS + 30))
	while [ $SECONDS -lt $end ] && [ ! -e "$stopflag" ]; do code "$port" / >> "$codes"; done
) &
loader=$!
sleep 1
ct sh -c 'echo "ident = gen2" >> /etc/waitressd/example.ini'
ct systemctl reload waitressd@example || fail "systemctl reload"
# Returned only once the new configuration serves: the very next response has it.
head_of "$port" / | grep -q '^Server: gen2' || fail "reload returned before the new config served"
ct sed -i 's/waitressd_example:factory/waitressd_example:no_such_factory/' /etc/waitressd/example.ini
if ct systemctl reload waitressd@example 2>/dev/null; then fail "reload with a broken app succeeded"; fi
head_of "$port" / | grep -q '^Server: gen2' || fail "old workers stopped serving after the failed reload"
[ "$(ct systemctl is-active waitressd@example)" = active ] || fail "service not active after the failed reload"
sleep 1
touch "$stopflag"
wait "$loader"; loader=""
n=$(wc -l < "$codes"); ok=$(grep -c '^200$' "$codes" || true)
[ "$n" -gt 0 ] && [ "$ok" = "$n" ] || fail "$ok of $n requests got 200 during reloads"
rm -f "$codes" "$stopflag"
ct sed -i 's/waitressd_example:no_such_factory/waitressd_example:factory/' /etc/waitressd/example.ini
step "reload: $n requests during two reloads, all 200; broken app: reload failed, old workers serve"

# Socket activation: systemd binds, the first connection starts waitressd@sock.
ct sh -c "sed 's|/example\.|/sock.|' /etc/waitressd/example.ini > /etc/waitressd/sock.ini"
ct mkdir -p /etc/systemd/system/waitressd@sock.socket.d
ct sh -c "printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:$port2\n' > /etc/systemd/system/waitressd@sock.socket.d/port.conf"
ct systemctl daemon-reload
ct systemctl start waitressd@sock.socket || fail "start waitressd@sock.socket"
[ "$(code "$port2" /)" = 200 ] || fail "socket activation: no 200 on $port2: $(ct systemctl status waitressd@sock.service --no-pager)"
# The first worker may answer before the second is ready (READY=1): active soon after.
for _ in $(seq 1 100); do
	[ "$(ct systemctl is-active waitressd@sock.service)" = active ] && break
	sleep 0.1
done
[ "$(ct systemctl is-active waitressd@sock.service)" = active ] || fail "waitressd@sock not active"
ct journalctl -u waitressd@sock --no-pager | grep -q "Serving on" || true
step "socket activation: served on 127.0.0.1:$port2"

# The shipped unix socket (/run/waitressd-NAME.sock): a proxy running as www-data (nginx,
# apache) connects and is served.
ct sh -c "grep -v '^access_log' /etc/waitressd/example.ini > /etc/waitressd/usock.ini"
ct systemctl start waitressd@usock.socket || fail "start waitressd@usock.socket"
usock=$(ct setpriv --reuid=www-data --regid=www-data --clear-groups python3 -c '
import socket
s = socket.socket(socket.AF_UNIX)
s.connect("/run/waitressd-usock.sock")
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
print(s.recv(12).decode())' 2>&1 || true)
[ "$usock" = "HTTP/1.0 200" ] || fail "www-data on /run/waitressd-usock.sock: $usock ($(ct ls -l /run/waitressd-usock.sock))"
ct systemctl stop waitressd@usock.socket waitressd@usock.service
step "socket activation on the shipped unix socket: www-data (a proxy) served"

# An upgrade's restart under socket activation: systemd keeps the listening socket, so
# connections made while the new master starts wait in its backlog; none fails.
codes=$(mktemp)
stopflag=$(mktemp -u)
(
	end=$((SECONDS + 30))
	while [ $SECONDS -lt $end ] && [ ! -e "$stopflag" ]; do code "$port2" / >> "$codes"; done
) &
loader=$!
sleep 1
ct systemctl restart waitressd@sock.service || fail "restart waitressd@sock"
sleep 1
touch "$stopflag"
wait "$loader"; loader=""
n=$(wc -l < "$codes"); ok=$(grep -c '^200$' "$codes" || true)
[ "$n" -gt 0 ] && [ "$ok" = "$n" ] || fail "$ok of $n requests got 200 across a socket-activated restart"
rm -f "$codes" "$stopflag"
step "restart under socket activation: $n requests, all 200"

# A package upgrade under a bounded load: postinst sends USR2 to every running instance; the
# new master takes over (MAINPID=), no request fails.
oldmain=$(ct systemctl show -p MainPID --value waitressd@example)
codes=$(mktemp)
stopflag=$(mktemp -u)
(
	end=$((SECONDS + 40))
	while [ $SECONDS -lt $end ] && [ ! -e "$stopflag" ]; do code "$port" / >> "$codes"; done
) &
loader=$!
sleep 1
ct env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "/debs/$(basename "$deb")" >/dev/null \
	|| fail "apt-get install --reinstall"
newmain=$oldmain
for _ in $(seq 1 300); do
	newmain=$(ct systemctl show -p MainPID --value waitressd@example)
	[ "$newmain" != "$oldmain" ] && [ "$newmain" != 0 ] && ! ct test -d "/proc/$oldmain" && break
	sleep 0.1
done
[ "$newmain" != "$oldmain" ] || fail "MainPID still $oldmain after the upgrade"
ct test -d "/proc/$oldmain" && fail "old master $oldmain still running after the upgrade"
sleep 1
touch "$stopflag"
wait "$loader"; loader=""
[ "$(ct systemctl is-active waitressd@example)" = active ] || fail "not active after the upgrade"
n=$(wc -l < "$codes"); ok=$(grep -c '^200$' "$codes" || true)
[ "$n" -gt 0 ] && [ "$ok" = "$n" ] || fail "$ok of $n requests got 200 during the upgrade"
rm -f "$codes" "$stopflag"
ct systemctl reload waitressd@example || fail "reload after the upgrade (ExecReload on the new MAINPID)"
step "upgrade (USR2 from postinst): MainPID $oldmain -> $newmain, $n requests, all 200; reload works after"

# An upgrade whose new master cannot load the app: the old master keeps serving, and the unit
# stays active (a STOPPING=1 from the failing new master made systemd SIGKILL it 45 s later).
app=/usr/lib/python3/dist-packages/waitressd_example.py
ct cp "$app" /tmp/waitressd_example.py.good
ct sh -c "echo 'raise ImportError(\"half-installed upgrade\")' > $app"
ct systemctl kill --signal=USR2 --kill-whom=main waitressd@example
failed=0
for _ in $(seq 1 300); do
	ct journalctl -u waitressd@example --no-pager -o cat | grep -q "upgrade failed" && { failed=1; break; }
	sleep 0.1
done
ct cp /tmp/waitressd_example.py.good "$app"
[ $failed = 1 ] || fail "no 'upgrade failed' in the journal"
state="$(ct systemctl show -p ActiveState --value waitressd@example) $(ct systemctl show -p SubState --value waitressd@example) $(ct systemctl show -p MainPID --value waitressd@example)"
[ "$state" = "active running $newmain" ] || fail "after a failed upgrade: $state (want active running $newmain)"
[ "$(code "$port" /)" = 200 ] || fail "old master not serving after the failed upgrade"
step "failed upgrade (broken app): the old master serves, the unit stays active running"

# logrotate under systemd: rename, then `systemctl kill --signal=USR1` (the shipped config).
[ "$(code "$port" /before-rotate)" = 200 ] || fail "request before rotation"
ct logrotate -f /etc/logrotate.d/waitressd || fail "logrotate"
rotated=0
for _ in $(seq 1 100); do
	code "$port" /after-rotate >/dev/null
	if ct grep -q after-rotate /var/log/waitressd/example.access.log 2>/dev/null; then rotated=1; break; fi
	sleep 0.1
done
[ $rotated = 1 ] || fail "the access log was not reopened after logrotate"
ct grep -q before-rotate /var/log/waitressd/example.access.log.1 || fail "rotated access log lacks the earlier line"
step "logrotate: renamed, USR1 through systemctl kill, new lines in the new file"

# Stop drains: a request in flight when `systemctl stop` starts still gets its 200 (after the
# upgrade: systemd waits only for a main process that is its own child).
ct journalctl -u waitressd@example --no-pager -o cat | grep "not our child" \
	&& fail "systemd took the upgraded master for an alien (it SIGKILLs such a unit at stop)"
slow=$(mktemp)
( code "$port" '/slow?2' > "$slow" ) &
slowpid=$!
sleep 0.5
ct systemctl stop waitressd@example || fail "systemctl stop"
wait "$slowpid"
[ "$(cat "$slow")" = 200 ] || fail "in-flight request during stop got: $(cat "$slow")"
rm -f "$slow"
[ "$(ct systemctl show -p Result --value waitressd@example)" = success ] || fail "stop result"
[ "$(ct systemctl show -p ExecMainStatus --value waitressd@example)" = 0 ] || fail "exit status after stop"
ct systemctl stop waitressd@sock.socket waitressd@sock.service

journal=$(ct journalctl -u waitressd@example --no-pager -o cat)
grep -q "worker(s) ready" <<<"$journal" || fail "journal lacks the ready line"
grep -q "reload complete" <<<"$journal" || fail "journal lacks the reload"
grep -q "exiting with code 0" <<<"$journal" || fail "journal lacks the clean exit"
ct journalctl -u waitressd@example -p err --no-pager -o cat | grep -q "reload aborted" \
	|| fail "journalctl -p err lacks the aborted reload (priority prefixes)"
ct systemd-analyze verify --man=no /lib/systemd/system/waitressd@.service /lib/systemd/system/waitressd@.socket 2>&1 \
	| grep -v '^$' | grep -iv 'no such file' > /tmp/systemd-test-verify.$$ || true
[ -s /tmp/systemd-test-verify.$$ ] && { cat /tmp/systemd-test-verify.$$ >&2; rm -f /tmp/systemd-test-verify.$$; fail "systemd-analyze verify"; }
rm -f /tmp/systemd-test-verify.$$
step "stop: in-flight request answered, exit 0; journal has the log with priorities"

# Removal stops every running unit; purge removes what the package made, and the enablement
# links of every instance (`systemctl enable waitressd@NAME`, the socket too), which no
# deb-systemd-helper state records: they were left dangling in *.wants/ before.
ct systemctl enable waitressd@sock.socket >/dev/null 2>&1 || fail "systemctl enable waitressd@sock.socket"
ct systemctl start waitressd@example || fail "start before the removal"
for l in multi-user.target.wants/waitressd@example.service sockets.target.wants/waitressd@sock.socket; do
	ct test -L "/etc/systemd/system/$l" || fail "no enablement link $l before the purge"
done
ct env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq waitressd >/dev/null 2>&1 || fail "apt-get remove"
[ "$(ct systemctl is-active waitressd@example)" = inactive ] || fail "waitressd@example still active after apt-get remove"
ct sh -c "grep -qx waitressd-m /proc/[0-9]*/comm" 2>/dev/null && fail "a waitressd master still runs after apt-get remove"
ct env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq waitressd >/dev/null 2>&1 || fail "apt-get purge"
left=$(ct find /etc/systemd/system -name 'waitressd@*' -type l)
[ -z "$left" ] || fail "enablement links left after purge: $left"
ct getent passwd waitressd >/dev/null && fail "user waitressd left after purge"
ct test -e /var/log/waitressd && fail "/var/log/waitressd left after purge"
step "remove stops the running unit; purge leaves no enablement link, user or log directory"
step "ok"
