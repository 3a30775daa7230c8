#!/usr/bin/env bash
# System packages some tests need (a real PostgreSQL server, a real headless browser).
# Installed with apt-get when missing and we are root; otherwise the tests that need them
# are skipped with a visible reason.
set -uo pipefail
need=()
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[system] installing ${need[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/tmp/assembly_line_apt.log 2>&1 \
      || echo "[system] could not install ${need[*]} (see /tmp/assembly_line_apt.log); their tests will be skipped"
  else
    echo "[system] missing ${need[*]}; their tests will be skipped"
  fi
fi
exit 0
