#!/usr/bin/env bash
# Installs what the integration tests need on Debian, as root. Idempotent:
# it runs `apt-get update` (once) and `apt-get install` only when a package
# is missing. Silent when there is nothing to do; otherwise it says what it
# did. On failure it prints apt's log.
#
#   openssh-server  tests start their own sshd per simulated host
#                   (internal/testenv/sshd); no system sshd is left running
#   haproxy, activemq, tmux, iproute2, procps, coreutils, curl
#                   the HAProxy/ActiveMQ/TUI/network tests; procps and
#                   coreutils (pgrep, pkill, timeout) are also what the SSH
#                   runner relies on on every host
#   chromium        the HTML run report is rendered headless and screenshotted
#                   (cmd/report, internal/lab: TestHTMLReport*)
#   prometheus      promtool tests docs/alerts.yaml (cmd/exporter: TestAlertRules);
#                   the lab drill scrapes sitectl exporter with a real Prometheus
#                   (internal/lab: TestDrillExporter). Its services (and the
#                   recommended node exporter's) are kept from starting, and
#                   disabled under systemd: the tests start their own, on loopback
#   bash-completion, man-db, dpkg
#                   the .deb check (scripts/check-deb.sh): installs the
#                   package, asks bash for a completion, finds the man pages
#
# Recommends are installed on purpose: libactivemq-java recommends
# libxstream-java and libjettison-java, which ActiveMQ needs for JSON
# advisories; they are linked into /usr/share/activemq/lib/extra/.
set -euo pipefail

packages=(openssh-server haproxy activemq libxstream-java libjettison-java tmux iproute2 nftables procps coreutils curl chromium prometheus bash-completion man-db dpkg)

if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: must run as root" >&2
  exit 1
fi

log=$(mktemp /tmp/install-test-deps.XXXXXX.log)
trap 'rm -f "$log"' EXIT
fail() {
  echo "install-test-deps: $*" >&2
  cat "$log" >&2
  exit 1
}

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  ssh_was_missing=false
  installed openssh-server || ssh_was_missing=true

  # Keep the packages' daemons from starting during the install (the
  # tests start their own); honoured by invoke-rc.d and deb-systemd-invoke.
  own_policy=false
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=true
  fi
  cleanup_policy() { if $own_policy; then rm -f /usr/sbin/policy-rc.d; fi; }
  trap 'cleanup_policy; rm -f "$log"' EXIT

  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >>"$log" 2>&1 || fail "apt-get update failed"
  apt-get install -y -q "${missing[@]}" >>"$log" 2>&1 || fail "apt-get install ${missing[*]} failed"
  for p in "${missing[@]}"; do
    installed "$p" || fail "$p is still not installed"
  done
  echo "install-test-deps: installed ${missing[*]}"

  # prometheus and prometheus-node-exporter would listen on every
  # interface at boot: the tests start their own Prometheus on loopback
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    for unit in prometheus.service prometheus-node-exporter.service; do
      if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit"; then
        systemctl disable --now "$unit" >>"$log" 2>&1 || true
      fi
    done
  fi

  # If installing openssh-server started or enabled the system sshd
  # anyway, stop and disable it: the tests need no system sshd, and one
  # they did not start must not be left listening.
  if $ssh_was_missing; then
    stopped=false
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
      for unit in ssh.service ssh.socket; do
        if systemctl is-active --quiet "$unit" || systemctl is-enabled --quiet "$unit" 2>/dev/null; then
          systemctl disable --now "$unit" >>"$log" 2>&1 || true
          stopped=true
        fi
      done
    else
      if [ -f /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null; then
        if [ -x /etc/init.d/ssh ]; then /etc/init.d/ssh stop >>"$log" 2>&1 || true; fi
        if [ -f /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null; then
          kill "$(cat /run/sshd.pid)" 2>/dev/null || true
        fi
        stopped=true
      fi
      if command -v update-rc.d >/dev/null; then update-rc.d ssh disable >>"$log" 2>&1 || true; fi
    fi
    if $stopped; then echo "install-test-deps: stopped and disabled the system sshd the package started"; fi
  fi
fi

# sshd (run as root) needs its privilege-separation directory; /run is a
# tmpfs, so this is needed after every boot, not only after the install.
if [ ! -d /run/sshd ]; then
  mkdir -p -m 755 /run/sshd
fi

# ActiveMQ loads extra jars from lib/extra: xstream and jettison (JSON).
extra=/usr/share/activemq/lib/extra
if [ -d /usr/share/activemq ] && [ -e /usr/share/java/xstream.jar ] && [ -e /usr/share/java/jettison.jar ]; then
  linked=()
  for jar in xstream jettison; do
    if [ "$(readlink "$extra/$jar.jar" 2>/dev/null)" != "/usr/share/java/$jar.jar" ]; then
      mkdir -p "$extra"
      ln -sfn "/usr/share/java/$jar.jar" "$extra/$jar.jar"
      linked+=("$jar.jar")
    fi
  done
  if [ ${#linked[@]} -gt 0 ]; then echo "install-test-deps: linked ${linked[*]} into $extra"; fi
fi
exit 0
