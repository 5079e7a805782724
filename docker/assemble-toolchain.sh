#!/bin/sh
# Lays out an esp-open-sdk style toolchain from Debian's cross compiler and the sources in
# SRC (sdk/, esp-open-sdk/, lwip/, esptool/, as docker/prepare-context.sh fetches them):
#   OUT/xtensa-lx106-elf/bin                  the tools, and a gcc that answers
#                                             -print-sysroot (MicroPython finds the SDK so)
#   OUT/xtensa-lx106-elf/xtensa-lx106-elf/sysroot/usr/{include,lib}   the SDK, lwip
# usage: assemble-toolchain.sh SRC OUT
set -eu
SRC=$1
OUT=$2
BIN=$OUT/xtensa-lx106-elf/bin
SYSROOT=$OUT/xtensa-lx106-elf/xtensa-lx106-elf/sysroot
mkdir -p "$BIN" "$SYSROOT/usr/include" "$SYSROOT/usr/lib"

# Debian's tools under their usual names; gcc through a wrapper (below).
for tool in /usr/bin/xtensa-lx106-elf-*; do
  name=$(basename "$tool")
  case $name in
    *-gcc | *-gcc-[0-9]* | *-cc) ;;
    *) ln -sf "$tool" "$BIN/$name" ;;
  esac
done
# newlib's headers before picolibc's: picolibc's assert.h clashes with MicroPython's __assert.
cat > "$BIN/xtensa-lx106-elf-gcc" <<WRAPPER
#!/bin/sh
for arg in "\$@"; do
  if [ "\$arg" = -print-sysroot ]; then echo "$SYSROOT"; exit 0; fi
done
exec /usr/bin/xtensa-lx106-elf-gcc -isystem /usr/include/newlib -idirafter "$SYSROOT/usr/include" "\$@"
WRAPPER
chmod 755 "$BIN/xtensa-lx106-elf-gcc"
ln -sf xtensa-lx106-elf-gcc "$BIN/xtensa-lx106-elf-cc"
printf '#!/bin/sh\nexec python3 %s/esptool/esptool.py "$@"\n' "$OUT" > "$BIN/esptool.py"
chmod 755 "$BIN/esptool.py"
cp -R "$SRC/esptool" "$OUT/esptool"

# The SDK as esp-open-sdk patches it: C99 types, its version, libcrypto inside libwpa,
# user_rf_cal_sector_set() in libmain, and the linker scripts without ../ld/ paths.
SDK=$SRC/sdk
patch -s -N -d "$SDK" -p1 < "$SRC/esp-open-sdk/c_types-c99_sdk_2.patch"
printf '#undef ESP_SDK_VERSION\n#define ESP_SDK_VERSION 020100\n' >> "$SDK/include/esp_sdk_ver.h"
work=$(mktemp -d)
(cd "$work" && "$BIN/xtensa-lx106-elf-ar" x "$SDK/lib/libcrypto.a")
"$BIN/xtensa-lx106-elf-ar" rs "$SDK/lib/libwpa.a" "$work"/*.o
"$BIN/xtensa-lx106-elf-gcc" -O2 -I"$SDK/include" -c "$SRC/esp-open-sdk/user_rf_cal_sector_set.c" \
  -o "$work/user_rf_cal_sector_set.o"
"$BIN/xtensa-lx106-elf-ar" r "$SDK/lib/libmain.a" "$work/user_rf_cal_sector_set.o"
rm -rf "$work"
cp -R "$SDK/include/." "$SYSROOT/usr/include/"
for lib in "$SDK"/lib/*.a; do
  [ "$(basename "$lib")" = libc.a ] || cp "$lib" "$SYSROOT/usr/lib/"
done
tr -d '\r' < "$SDK/ld/eagle.app.v6.ld" | sed 's@\.\./ld/@@' > "$SYSROOT/usr/lib/eagle.app.v6.ld"
tr -d '\r' < "$SDK/ld/eagle.rom.addr.v6.ld" > "$SYSROOT/usr/lib/eagle.rom.addr.v6.ld"

# lwip, as esp-open-sdk builds it (liblwip_open.a) with its headers.
make -s -C "$SRC/lwip" -f Makefile.open install \
  CC="$BIN/xtensa-lx106-elf-gcc" AR="$BIN/xtensa-lx106-elf-ar" PREFIX="$OUT/xtensa-lx106-elf"
for dir in arch lwip netif; do cp -R "$SRC/lwip/include/$dir" "$SYSROOT/usr/include/"; done
cp "$SRC/lwip/include/lwipopts.h" "$SYSROOT/usr/include/"

echo "toolchain in $BIN: $("$BIN/xtensa-lx106-elf-gcc" -dumpversion)"
