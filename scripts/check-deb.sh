#!/usr/bin/env bash
# The release check of scripts/test.sh (root on Debian only): builds the
# .deb, installs it with dpkg -i, runs the installed sitectl (version, a man
# page, a completion), then removes it and checks it is gone.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null; then
  echo "not root on Debian: skipping the .deb install check" >&2
  exit 0
fi
if dpkg -s sitectl >/dev/null 2>&1; then
  echo "a sitectl package is already installed: not touching it; skipping the .deb install check" >&2
  exit 0
fi
out=$(mktemp -d)
trap 'dpkg -r sitectl >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
deb=$(VERSION=0.0.0~ci bash scripts/build-deb.sh "$out" | tail -1)
echo "built $deb"
dpkg -i "$deb"
v=$(/usr/bin/sitectl version)
echo "$v"
case "$v" in "sitectl 0.0.0~ci (commit "*", built "*) ;; *) echo "unexpected: sitectl version printed: $v" >&2; exit 1 ;; esac
man -w sitectl
man -w sitectl-takeover
test -s /usr/share/bash-completion/completions/sitectl
test -s /usr/share/zsh/vendor-completions/_sitectl
test -s /usr/share/fish/vendor_completions.d/sitectl.fish
# a completion through the installed script, as bash would ask for it
bash -c 'source /usr/share/bash-completion/bash_completion && source /usr/share/bash-completion/completions/sitectl && COMP_WORDS=(sitectl takeo) COMP_CWORD=1 COMP_LINE="sitectl takeo" COMP_POINT=13 && __start_sitectl && printf "%s\n" "${COMPREPLY[@]}"' 2>/dev/null | tee "$out/compl"
grep -qx 'takeover' "$out/compl"
# to a file, not into `grep -q`: grep would exit at the first match and,
# under pipefail, sitectl's SIGPIPE would fail the script (exit 141)
/usr/bin/sitectl __complete plan --inventory /usr/share/doc/sitectl/examples/inventory.yaml --site "" >"$out/sites" 2>/dev/null
grep -q '^A' "$out/sites"
dpkg -r sitectl
if [ -e /usr/bin/sitectl ] || man -w sitectl >/dev/null 2>&1; then
  echo "sitectl is still installed after dpkg -r" >&2
  exit 1
fi
echo "the .deb installs, runs, completes, has man pages and removes cleanly"
