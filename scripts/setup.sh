#!/bin/sh
# Installs the Debian packages tide needs to build, test and fuzz, and only
# those that are missing, so a second run is a no-op.
set -eu

packages="build-essential pkg-config lua5.4 liblua5.4-dev libb2-dev
  libsqlite3-dev sqlite3 libuv1-dev lua-cjson lua-busted clang
  libclang-rt-dev valgrind lua-luv
  libcurl4-openssl-dev zlib1g-dev libgumbo-dev poppler-utils libpq-dev
  postgresql-15"

missing=""
for p in $packages; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    "install ok installed") ;;
    *) missing="$missing $p" ;;
  esac
done

[ -z "$missing" ] && exit 0

echo "setup: installing$missing" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
