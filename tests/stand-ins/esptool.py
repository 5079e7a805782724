#!/usr/bin/env bash
# A stand-in for esptool.py as MicroPython's esp8266 Makefile calls it, for the fake trees
# (tests/fixtures/fake_trees.ts): `elf2image ELF` writes ELF-0x00000.bin. The fake link
# writes the whole image as the "ELF", so that is a copy.
# FAKE_MAKE_NOOP=1: as fake_make.ts, write nothing (make found everything up to date).
[[ -n "${FAKE_MAKE_NOOP:-}" ]] && exit 0
if [[ "${1:-}" == elf2image && -n "${2:-}" ]]; then
  echo "esptool.py v3.3.3 (stand-in)"
  echo "Creating esp8266 image..."
  exec cp "$2" "$2-0x00000.bin"
fi
echo "stand-in esptool.py: only 'elf2image ELF' is supported" >&2
exit 2
