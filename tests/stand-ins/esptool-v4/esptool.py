#!/bin/bash
# Test stand-in for Espressif's esptool v4 (`esptool.py`, or `esptool` as Debian names it):
# never touches a serial port. It parses its arguments as v4's argparse does and, like
# it, knows only the snake_case spelling: `write-flash` or `--flash-size` is an error
# (exit 2), as on a real v4. It prints v4's lines, takes ESPTOOL_PORT / ESPTOOL_BAUD
# when no --port / --baud is given, and:
#   ESPTOOL_RECORD  file to append its arguments to, one line per call, separated by the
#                   ASCII unit separator (0x1f) so a test can split them exactly;
#   ESPTOOL_EXIT    exit code of a failed connection (default 0: it connects).
set -u
if [[ -n "${ESPTOOL_RECORD:-}" ]]; then
  (IFS=$'\x1f'; printf '%s\n' "$*") >>"$ESPTOOL_RECORD"
fi
version=4.7.0
commands="load_ram dump_mem read_mem write_mem write_flash run image_info make_image elf2image read_mac chip_id flash_id read_flash_status write_flash_status read_flash verify_flash erase_flash erase_region merge_bin get_security_info version"
usage() {
  echo "usage: esptool [-h] [--chip CHIP] [--port PORT] [--baud BAUD] ... {${commands// /,}} ..." >&2
  echo "esptool: error: $1" >&2
  exit 2
}

port="${ESPTOOL_PORT:-}"
baud="${ESPTOOL_BAUD:-115200}"
args=("$@")
i=0
# Global options, then the command.
while ((i < ${#args[@]})); do
  a="${args[i]}"
  case "$a" in
  --port | -p) port="${args[i + 1]:-}"; i=$((i + 2)) ;;
  --port=*) port="${a#*=}"; i=$((i + 1)) ;;
  --baud | -b) baud="${args[i + 1]:-}"; i=$((i + 2)) ;;
  --baud=*) baud="${a#*=}"; i=$((i + 1)) ;;
  --chip | -c | --before | --after | -a | --connect-attempts) i=$((i + 2)) ;;
  --no-stub | --trace | -t) i=$((i + 1)) ;;
  -*) usage "unrecognized arguments: $a" ;;
  *) break ;;
  esac
done
command="${args[i]:-}"
i=$((i + 1))
[[ -z "$command" ]] && usage "the following arguments are required: operation"
if [[ " $commands " != *" $command "* ]]; then
  list=""
  for c in $commands; do list+="${list:+, }'$c'"; done
  usage "argument operation: invalid choice: '$command' (choose from $list)"
fi
# The command's own options (write_flash's as in v4; the others take none here).
flash_size=keep
files=()
while ((i < ${#args[@]})); do
  a="${args[i]}"
  case "$a" in
  --flash_mode | -fm | --flash_freq | -ff) i=$((i + 2)) ;;
  --flash_mode=* | --flash_freq=*) i=$((i + 1)) ;;
  --flash_size | -fs) flash_size="${args[i + 1]:-}"; i=$((i + 2)) ;;
  --flash_size=*) flash_size="${a#*=}"; i=$((i + 1)) ;;
  --erase-all | -e | --no-progress | -p | --verify | --compress | -z | --no-compress | -u | --force) i=$((i + 1)) ;;
  -*) usage "unrecognized arguments: $a" ;;
  *) files+=("$a"); i=$((i + 1)) ;;
  esac
done

echo "esptool.py v$version"
if [[ "$command" == "version" ]]; then
  echo "$version"
  exit 0
fi
if [[ -z "$port" ]]; then
  echo "Found 1 serial ports"
  port=/dev/ttyUSB0
fi
echo "Serial port $port"
echo "Connecting...."
code="${ESPTOOL_EXIT:-0}"
if [[ "$code" != "0" ]]; then
  echo "A fatal error occurred: Failed to connect to ESP8266: No serial data received." >&2
  exit "$code"
fi
echo "Chip is ESP8266EX"
echo "Uploading stub..."
if ((baud > 115200)); then echo "Changing baud rate to $baud"; fi
if [[ "$command" == "erase_flash" ]]; then
  echo "Erasing flash (this may take a while)..."
  echo "Chip erase completed successfully in 2.1s"
elif [[ "$command" == "write_flash" ]]; then
  echo "Configuring flash size..."
  [[ "$flash_size" == "detect" ]] && echo "Auto-detected Flash size: 4MB"
  for ((f = 1; f < ${#files[@]}; f += 2)); do
    printf 'Writing at %s... (100 %%)\r' "${files[f - 1]}"
    echo
    echo "Hash of data verified."
  done
fi
echo
echo "Leaving..."
echo "Hard resetting via RTS pin..."
