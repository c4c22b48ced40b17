#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, postgres) are present.
# They come from Debian's postgresql package; as root (CI, containers) the
# script installs it, otherwise it says what to run.
set -euo pipefail

have_server() {
  [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ] && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return 0
  command -v initdb >/dev/null 2>&1
}

if have_server; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's postgresql (server binaries for the local cluster)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  # The package may start a cluster of its own; ours runs on another port.
  have_server && exit 0
fi
echo "PostgreSQL server binaries not found. Install them with: sudo apt-get install postgresql" >&2
exit 1
