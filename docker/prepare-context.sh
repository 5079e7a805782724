#!/bin/sh
# Fills a docker build context for docker/Dockerfile: the Dockerfile, the assembly script
# and, under sources/, the pinned sources the toolchain is made from.
# usage: docker/prepare-context.sh DIR
# YAOTA_SOURCES: where to clone from, a printf pattern of owner and name
# (default https://github.com/%s/%s; e.g. '/srv/mirror/%s+%s/repo' for local copies).
set -eu
DIR=${1:?usage: docker/prepare-context.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
PATTERN=${YAOTA_SOURCES:-https://github.com/%s/%s}
mkdir -p "$DIR/sources"
fetch() { # OWNER NAME COMMIT FOLDER
  dest="$DIR/sources/$4"
  [ -d "$dest" ] && return 0
  # shellcheck disable=SC2059
  git clone --quiet --no-checkout "$(printf "$PATTERN" "$1" "$2")" "$dest"
  git -C "$dest" -c advice.detachedHead=false checkout --quiet "$3"
  rm -rf "$dest/.git"
}
# The NONOS SDK commit esp-open-sdk pins (2.1.0-18), its patches, its lwip, esptool 3.3.3.
fetch espressif ESP8266_NONOS_SDK 61248df5f6 sdk
fetch pfalcon esp-open-sdk c70543e57fb18e5be0315aa217bca27d0e26d23d esp-open-sdk
fetch pfalcon esp-open-lwip 8c39d2179a273553466043f388772abb6251a4ca lwip
fetch espressif esptool v3.3.3 esptool
cp "$HERE/Dockerfile" "$HERE/assemble-toolchain.sh" "$DIR/"
echo "context ready: docker build -t yaota/esp8266-build $DIR"
