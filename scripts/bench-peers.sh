#!/usr/bin/env bash
# Times `sitectl status` against its peers over N real sshd "hosts" on
# loopback, each tool asked the same thing: 5 status checks per host.
#
#   sudo scripts/bench-peers.sh            # N = 10 40
#   sudo scripts/bench-peers.sh 10 40 100  # more sizes
#   RUNS=5 LOOP_MAX=40 sudo scripts/bench-peers.sh 10
#   SHELL_MAX=40 LOOP_MAX=40 sudo scripts/bench-peers.sh 100   # skip the slowest peers above 40 hosts
#   SHELL_MAX=0 LOOP_MAX=0 sudo scripts/bench-peers.sh 10 40   # without ansible -m shell and the ssh loop
#   SWEEP="2 8 32 256" sudo scripts/bench-peers.sh 40   # sitectl cold only, per max_handshakes
#   BENCH_SITECTL=/path/to/sitectl SWEEP=default ...      # another build (no max_handshakes key)
#   PEERS="raw cm" sudo scripts/bench-peers.sh 40   # sitectl and only these peers (pssh raw shell loop cm; "" none)
#   HOLD=1 sudo scripts/bench-peers.sh 200          # start the hosts, print the inventory, wait for Ctrl-C
#
# Each host is its own sshd (own host key, strict host-key checking against
# a known_hosts file) logging in a dedicated user, sitectl-bench, whose login
# shell is /bin/sh and who has no shell start-up files: nothing but the
# commands themselves runs on the hosts. A service's status is a small
# script (pid file, /proc) as an init script's status is. Site A's services
# run, site B's do not.
#
# Every figure is the median of RUNS runs (default 3) of a new process (cold:
# it dials every host), except "warm" ones:
#   sitectl cold      sitectl status --no-probes
#   sitectl warm      one refresh of sitectl status --watch (connections open;
#                     median of WARM refreshes, default 10)
#   parallel-ssh      parallel-ssh -p N, the 5 checks in one command per host
#   ansible raw       ansible all -m raw -f N, same command (no ControlPersist)
#   ansible shell     ansible all -m shell -f N, same command (no ControlPersist)
#   ssh loop          one `ssh host 'status'` per service, one after the other
#                     (the shell scripts' way; run once, and only up to LOOP_MAX hosts)
#   ControlMaster     warm OpenSSH masters, then xargs -P N ssh -S ... (same command)
# Ratios are each tool's time over sitectl cold's. "host CPU" is the CPU
# time (user+system) the hosts' sshd and everything they ran used, read
# from /proc. sitectl's RSS is its maximum resident set (/usr/bin/time).
#
# Needs root: it creates the user, installs pssh and ansible from Debian
# (apt-get install -y pssh ansible) and starts the sshd's. Traffic stays on
# 127.0.0.1. Everything it starts is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-peers: needs root (it creates a user and starts sshd's)" >&2; exit 2; }

SIZES=${*:-10 40}
RUNS=${RUNS:-3}
LOOP_MAX=${LOOP_MAX:-40}
BU=sitectl-bench
BHOME=/var/lib/$BU
W=${BENCH_DIR:-/tmp/sitectl-bench-peers}
BASE=${BASE_PORT:-23200} # below the ephemeral range, where clients may hold ports
CHECKS=5

command -v parallel-ssh >/dev/null && command -v ansible >/dev/null ||
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q pssh ansible >/dev/null
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || bash scripts/install-test-deps.sh

rm -rf "$W"
mkdir -p "$W" /run/sshd
# --- the user: /bin/sh, no start-up files
id "$BU" >/dev/null 2>&1 || useradd --system --home-dir "$BHOME" --create-home --shell /bin/sh "$BU"
usermod -p '*' "$BU" # no password, but not locked: sshd without PAM refuses locked accounts
rm -f "$BHOME"/.profile "$BHOME"/.bashrc "$BHOME"/.bash_logout
mkdir -p "$BHOME/state"
cat >"$BHOME/svc" <<'EOF'
#!/bin/sh
# status NAME: 0 running (its pid file names a live process), 3 stopped
p=/var/lib/sitectl-bench/state/$1.pid
[ -f "$p" ] && read -r pid <"$p" && [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" && exit 0
exit 3
EOF
chmod 755 "$BHOME/svc"
chown -R "$BU" "$BHOME"
ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$W/id_ed25519"
cp "$W/id_ed25519.pub" "$W/authorized_keys"
chmod 644 "$W/authorized_keys"
# one live process stands for every running service
setsid sleep 100000 >/dev/null 2>&1 </dev/null &
SVC_PID=$!

PIDS=()
cleanup() {
	for f in "$W"/h*/sshd.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
	kill "$SVC_PID" 2>/dev/null || true
	[ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null || true
	[ -n "${HOLD_PID:-}" ] && kill "$HOLD_PID" 2>/dev/null || true
	for s in "$W"/cm/*; do [ -S "$s" ] && ssh -S "$s" -O exit x 2>/dev/null || true; done
}
trap cleanup EXIT

MAXN=0
for n in $SIZES; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done

# --- the hosts: one sshd each
: >"$W/known_hosts"
for ((i = 0; i < MAXN; i++)); do
	port=$((BASE + i))
	d="$W/h$i"
	mkdir -p "$d"
	ssh-keygen -q -t ed25519 -N '' -C "h$i" -f "$d/hostkey"
	cat >"$d/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $d/hostkey
PidFile $d/sshd.pid
AuthorizedKeysFile $W/authorized_keys
AllowUsers $BU
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
PrintLastLog no
MaxSessions 20
LogLevel ERROR
EOF
	/usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log"
	echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$d/hostkey.pub")" >>"$W/known_hosts"
	# site A (even hosts) runs its services
	if ((i % 2 == 0)); then
		for ((j = 0; j < CHECKS; j++)); do echo "$SVC_PID" >"$BHOME/state/p$port-s$j.pid"; done
	fi
done
for ((i = 0; i < MAXN; i++)); do
	for _ in $(seq 200); do [ -s "$W/h$i/sshd.pid" ] && break; sleep 0.05; done
	[ -s "$W/h$i/sshd.pid" ] || { echo "bench-peers: sshd h$i did not start:" >&2; cat "$W/h$i/sshd.log" >&2; exit 1; }
	PIDS+=("$(cat "$W/h$i/sshd.pid")")
done

# the same question for every peer: the 5 checks of the host, in one command
PEER_CMD='p=${SSH_CONNECTION##* }; for j in 0 1 2 3 4; do /var/lib/sitectl-bench/svc p$p-s$j; echo "s$j $?"; done'
SSHO=(-i "$W/id_ed25519" -o UserKnownHostsFile="$W/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes -o GlobalKnownHostsFile=/dev/null)

if [ -n "${BENCH_SITECTL:-}" ]; then cp "$BENCH_SITECTL" "$W/sitectl"; else go build -o "$W/sitectl" ./cmd/sitectl; fi
go build -o "$W/batchscript" ./internal/bench/batchscript

# host_cpu prints the CPU seconds (user+system, live and reaped) of every
# sshd's process tree so far.
host_cpu() {
	python3 - "${PIDS[@]}" <<'EOF'
import os, sys
roots = set(int(p) for p in sys.argv[1:])
tck = os.sysconf('SC_CLK_TCK')
procs = {}
for d in os.listdir('/proc'):
    if not d.isdigit():
        continue
    try:
        s = open(f'/proc/{d}/stat').read()
    except OSError:
        continue
    f = s[s.rindex(')') + 2:].split()
    procs[int(d)] = (int(f[1]), sum(int(x) for x in f[11:15]))
tot = 0
for pid, (ppid, t) in procs.items():
    p, seen = pid, 0
    while p in procs and seen < 64:
        if p in roots:
            tot += t
            break
        p, seen = procs[p][0], seen + 1
print(f'{tot / tck:.2f}')
EOF
}

# timed CMD...: prints "seconds maxrss_kB exit"
timed() {
	local rc=0
	/usr/bin/time -f '%e %M' -o "$W/time" "$@" >"$W/out" 2>"$W/err" || rc=$?
	echo "$(tail -1 "$W/time") $rc"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

write_inventory() { # n max_handshakes
	local n=$1 mh=${2:-}
	{
		echo "deployment: bench"
		echo "defaults:"
		echo "  command_timeout: 10s"
		[ "$mh" = default ] && mh=
		echo "  ssh: {user: $BU, key: $W/id_ed25519, known_hosts: $W/known_hosts${mh:+, max_handshakes: $mh}}"
		echo "sites:"
		for si in 0 1; do
			echo "  - name: $([ $si = 0 ] && echo A || echo B)"
			echo "    role: $([ $si = 0 ] && echo primary || echo secondary)"
			echo "    hosts:"
			for ((i = si; i < n; i += 2)); do echo "      - {name: h$i, address: 127.0.0.1, ssh: {port: $((BASE + i))}}"; done
			echo "    services:"
			for ((i = si; i < n; i += 2)); do
				for ((j = 0; j < CHECKS; j++)); do
					echo "      - {name: h$i-s$j, kind: custom, host: h$i, start: 'true', stop: 'true', status: '$BHOME/svc p$((BASE + i))-s$j'}"
				done
			done
		done
	} >"$W/inv.yaml"
}

# sitectl_cold N: one cold status; prints "seconds rss_kB hosts_not_answering"
sitectl_cold() {
	local r bad
	r=$(SITECTL_INVENTORY="$W/inv.yaml" timed "$W/sitectl" status --no-probes)
	bad=$(grep -cE 'UNREACHABLE|NO ANSWER|ACCESS PROBLEM' "$W/out" || true)
	set -- $r
	if [ "$3" != 0 ]; then echo "sitectl status exited $3 (expected 0):" >&2; head -40 "$W/out" "$W/err" >&2; fi
	echo "$1 $2 $bad"
}

# sitectl_warm K: one watch process, K+1 refreshes; prints the median
# refresh (s), the host CPU per refresh (s) and the watch's max RSS (kB)
sitectl_warm() {
	local k=$1 c0 c1 f0 f1 frames
	SITECTL_INVENTORY="$W/inv.yaml" "$W/sitectl" -o json status --no-probes --watch --interval 1ms >"$W/watch.json" 2>"$W/watch.err" &
	WATCH_PID=$!
	# The hosts' CPU per refresh is read between two points while the watch
	# runs (its shells live between refreshes; once it exits they may end
	# orphaned, reaped outside the sshd's process tree, their CPU lost to
	# the count): from the end of the cold first frame to the end of frame
	# k+1, divided by the frames between. A refresh runs at both points
	# (1ms interval): their parts about cancel out.
	f0=0
	for _ in $(seq 1200); do
		frames=$(grep -c '"message_type": "status"' "$W/watch.json" || true)
		if [ "$f0" = 0 ] && [ "$frames" -ge 1 ]; then c0=$(host_cpu); f0=$(grep -c '"message_type": "status"' "$W/watch.json" || true); fi
		[ "$frames" -gt $((k + 1)) ] && break
		sleep 0.1
	done
	c1=$(host_cpu)
	f1=$(grep -c '"message_type": "status"' "$W/watch.json" || true)
	local rss
	rss=$(awk '/VmHWM/ {print $2}' /proc/$WATCH_PID/status)
	kill -INT "$WATCH_PID"; wait "$WATCH_PID" 2>/dev/null || true
	WATCH_PID=
	python3 - "$W/watch.json" "$k" "$c0" "$c1" "$rss" "$f0" "$f1" <<'EOF'
import json, sys
from datetime import datetime
path, k, c0, c1, rss, f0, f1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
txt, dec, docs, i = open(path).read(), json.JSONDecoder(), [], 0
while True:
    while i < len(txt) and txt[i].isspace():
        i += 1
    if i >= len(txt):
        break
    try:
        d, i = dec.raw_decode(txt, i)
    except ValueError:
        break
    docs.append(d)
def ts(d):
    s = d['snapshot']['sites'][0]['observed']
    # RFC 3339 with nanoseconds: keep microseconds
    base, frac = s.split('.') if '.' in s else (s[:19], '0Z')
    digits = ''.join(c for c in frac if c.isdigit())
    tz = frac[len(digits):]
    return datetime.fromisoformat(base + '.' + (digits + '000000')[:6] + tz.replace('Z', '+00:00'))
# the last frame may be the one Ctrl-C cut short
bad = sum(1 for d in docs[:-1] for s in d['snapshot']['sites'] for h in s['hosts'] if not h['reachable'])
t = [ts(d) for d in docs]
# frame 0 dials (cold); refreshes 1..k are warm: start-to-start, minus the 1ms interval
gaps = sorted((t[j + 1] - t[j]).total_seconds() - 0.001 for j in range(1, min(k + 1, len(t) - 1)))
med = gaps[len(gaps) // 2] if gaps else float('nan')
per = (c1 - c0) / max(1, f1 - f0)
print(f'{med:.3f} {per:.3f} {rss} {bad}')
EOF
}

# peers -------------------------------------------------------------------
pssh_run() { timed parallel-ssh -p "$1" -t 60 -h "$W/hosts" -l "$BU" -x "${SSHO[*]}" "$PEER_CMD"; }
ansible_run() { # n module
	ANSIBLE_SSH_ARGS='-o ControlMaster=no -o ControlPersist=no' ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_LOCAL_TEMP="$W/ansible-tmp" \
		ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1 \
		timed ansible all -i "$W/ansible.ini" -m "$2" -a "$PEER_CMD" -f "$1"
}
loop_run() { # n: one ssh per service, one after the other
	local n=$1
	timed bash -c '
		W=$1; n=$2; base=$3; shift 3
		for ((i = 0; i < n; i++)); do for j in 0 1 2 3 4; do
			ssh -p $((base + i)) "$@" sitectl-bench@127.0.0.1 "/var/lib/sitectl-bench/svc p$((base + i))-s$j" || [ $? != 255 ] || exit 255
		done; done' _ "$W" "$n" "$BASE" "${SSHO[@]}"
}
cm_start() { # n: one master per host
	mkdir -p "$W/cm"
	for ((i = 0; i < $1; i++)); do
		ssh -p $((BASE + i)) "${SSHO[@]}" -o ControlMaster=yes -o ControlPersist=yes -o ControlPath="$W/cm/$((BASE + i))" -fN "$BU@127.0.0.1"
	done
}
cm_run() { # n [command]
	local cmd=${2:-$PEER_CMD}
	seq "$BASE" $((BASE + $1 - 1)) >"$W/ports"
	timed xargs -P "$1" -I{} ssh -S "$W/cm/{}" -p {} "${SSHO[@]}" "$BU@127.0.0.1" "$cmd" <"$W/ports"
}
cm_stop() { for s in "$W"/cm/*; do ssh -S "$s" -O exit x 2>/dev/null || true; done; rm -rf "$W/cm"; }

# --- run -----------------------------------------------------------------
PEERS=${PEERS-pssh raw shell loop cm}
peer() { case " $PEERS " in *" $1 "*) return 0 ;; esac; return 1; }
if [ -n "${HOLD:-}" ]; then
	write_inventory "$MAXN" "${MAX_HANDSHAKES:-}"
	echo "bench-peers: $MAXN hosts up; inventory $W/inv.yaml, sitectl $W/sitectl; Ctrl-C (or kill $$) stops them"
	while :; do
		sleep 3600 &
		HOLD_PID=$!
		wait "$HOLD_PID"
	done
fi
# SWEEP="2 8 32": only sitectl cold, for each defaults.ssh.max_handshakes
if [ -n "${SWEEP:-}" ]; then
	for n in $SIZES; do
		for mh in $SWEEP; do
			write_inventory "$n" "$mh"
			t=() m=() bad=0
			for ((r = 0; r < RUNS; r++)); do set -- $(sitectl_cold "$n"); t+=("$1") m+=("$2"); bad=$((bad + $3)); done
			echo "N=$n max_handshakes=$mh: sitectl cold ${t[*]} s (median $(printf '%s\n' "${t[@]}" | median)); max RSS $(printf '%s\n' "${m[@]}" | sort -n | tail -1) kB; hosts not answering (all runs): $bad; load $(cut -d' ' -f1 /proc/loadavg)"
		done
	done
	exit 0
fi
echo "# bench-peers $(date -u +%FT%TZ) on $(hostname): $(nproc) CPU, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "# sshd $(/usr/sbin/sshd -V 2>&1 | head -1 || true); parallel-ssh $(dpkg-query -W -f '${Version}' pssh); ansible $(dpkg-query -W -f '${Version}' ansible); RUNS=$RUNS"
ROWS=()
for n in $SIZES; do
	: >"$W/hosts"
	: >"$W/ansible.ini"
	echo "[all:vars]" >>"$W/ansible.ini"
	echo "ansible_user=$BU" >>"$W/ansible.ini"
	echo "ansible_ssh_private_key_file=$W/id_ed25519" >>"$W/ansible.ini"
	echo "ansible_ssh_common_args='-o UserKnownHostsFile=$W/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes'" >>"$W/ansible.ini"
	echo "[all]" >>"$W/ansible.ini"
	for ((i = 0; i < n; i++)); do
		echo "127.0.0.1:$((BASE + i))" >>"$W/hosts"
		echo "h$i ansible_host=127.0.0.1 ansible_port=$((BASE + i))" >>"$W/ansible.ini"
	done
	write_inventory "$n" "${MAX_HANDSHAKES:-}"
	echo "## N=$n  load before: $(cut -d' ' -f1-3 /proc/loadavg)"

	cold=() rss=() bad=0 cpu=()
	for ((r = 0; r < RUNS; r++)); do
		c0=$(host_cpu)
		set -- $(sitectl_cold "$n")
		cold+=("$1") rss+=("$2") bad=$((bad + $3))
		sleep 0.3
		cpu+=("$(echo "$(host_cpu) - $c0" | bc)")
	done
	s_cold=$(printf '%s\n' "${cold[@]}" | median)
	s_rss=$(printf '%s\n' "${rss[@]}" | median)
	s_cpu=$(printf '%s\n' "${cpu[@]}" | median)
	echo "sitectl cold: ${cold[*]} s; rss ${rss[*]} kB; host CPU ${cpu[*]} s; hosts not answering (all runs): $bad"

	set -- $(sitectl_warm "${WARM:-10}")
	s_warm=$1 s_warm_cpu=$2 s_warm_rss=$3
	echo "sitectl warm refresh (median of ${WARM:-10}): $1 s; host CPU per refresh $2 s; watch max RSS $3 kB; hosts not answering: $4"

	t=()
	p_pssh=-
	if peer pssh; then
		for ((r = 0; r < RUNS; r++)); do set -- $(pssh_run "$n"); t+=("$1"); [ "$3" = 0 ] || echo "parallel-ssh exited $3" >&2; done
		p_pssh=$(printf '%s\n' "${t[@]}" | median); echo "parallel-ssh: ${t[*]} s"
	fi

	t=()
	p_raw=-
	if peer raw; then
		for ((r = 0; r < RUNS; r++)); do set -- $(ansible_run "$n" raw); t+=("$1"); [ "$3" = 0 ] || { echo "ansible raw exited $3" >&2; tail -5 "$W/out" >&2; }; done
		p_raw=$(printf '%s\n' "${t[@]}" | median); echo "ansible raw: ${t[*]} s"
	fi

	t=()
	p_shell=-
	if peer shell && [ "$n" -le "${SHELL_MAX:-1000}" ]; then
		for ((r = 0; r < RUNS; r++)); do set -- $(ansible_run "$n" shell); t+=("$1"); [ "$3" = 0 ] || { echo "ansible shell exited $3" >&2; tail -5 "$W/out" >&2; }; done
		p_shell=$(printf '%s\n' "${t[@]}" | median); echo "ansible shell: ${t[*]} s"
	fi

	p_loop=-
	if peer loop && [ "$n" -le "$LOOP_MAX" ]; then
		set -- $(loop_run "$n")
		p_loop=$1
		echo "ssh loop (1 run): $1 s"
	fi

	p_cm=- p_cm_cpu=-
	if peer cm; then
		cm_start "$n"
		cm_run "$n" >/dev/null # warm-up
		t=() c=()
		for ((r = 0; r < RUNS; r++)); do
			c0=$(host_cpu)
			set -- $(cm_run "$n"); t+=("$1")
			c+=("$(echo "$(host_cpu) - $c0" | bc)")
		done
		p_cm=$(printf '%s\n' "${t[@]}" | median)
		p_cm_cpu=$(printf '%s\n' "${c[@]}" | median)
		echo "ControlMaster warm: ${t[*]} s; host CPU ${c[*]} s"

		# the status batch itself, old and new shape, over the same warm masters
		cmds=()
		for ((j = 0; j < CHECKS; j++)); do cmds+=("$BHOME/svc p\${SSH_CONNECTION##* }-s$j"); done
		old=$("$W/batchscript" -old "${cmds[@]}")
		evl=$("$W/batchscript" -eval "${cmds[@]}")
		new=$("$W/batchscript" "${cmds[@]}")
		b_old=() b_evl=() b_new=() t_old=() t_evl=() t_new=()
		for ((r = 0; r < RUNS; r++)); do
			c0=$(host_cpu); set -- $(cm_run "$n" "$old"); t_old+=("$1"); b_old+=("$(echo "$(host_cpu) - $c0" | bc)")
			c0=$(host_cpu); set -- $(cm_run "$n" "$evl"); t_evl+=("$1"); b_evl+=("$(echo "$(host_cpu) - $c0" | bc)")
			c0=$(host_cpu); set -- $(cm_run "$n" "$new"); t_new+=("$1"); b_new+=("$(echo "$(host_cpu) - $c0" | bc)")
		done
		echo "status batch over ControlMaster, host CPU per refresh: before (parallel subshells) ${b_old[*]} s in ${t_old[*]} s; one shell, eval'ed ${b_evl[*]} s in ${t_evl[*]} s; now (inline) ${b_new[*]} s in ${t_new[*]} s"
		cm_stop
	fi
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

	cell() { if [ "$1" = - ]; then echo -; else echo "$1 ($(echo "scale=2; $1 / $s_cold" | bc)x)"; fi; }
	ROWS+=("| $n | $s_cold | $s_warm | $(cell "$p_pssh") | $(cell "$p_raw") | $(cell "$p_shell") | $(cell "$p_loop") | $(cell "$p_cm") | $((s_rss / 1024)) / $((s_warm_rss / 1024)) | $s_cpu / $s_warm_cpu / $p_cm_cpu | $(cut -d' ' -f1 /proc/loadavg) |")
done

echo
echo "| N | sitectl cold (s) | sitectl warm refresh (s) | parallel-ssh -p N | ansible -m raw -f N | ansible -m shell -f N | ssh loop | warm ControlMaster, xargs -P N | sitectl RSS cold / watch (MB) | host CPU (s): sitectl cold / warm refresh / ControlMaster | load (1 min) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo "(seconds, median of $RUNS runs; (Nx) = that tool's time / sitectl cold)"
