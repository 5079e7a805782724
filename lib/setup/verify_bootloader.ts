/**
 * Is the file given as the bootloader really yaota8266.bin? `verify` and `flash` name a
 * MicroPython image given as the bootloader (and the two files swapped), and any other
 * kind of file (lib/file_kind.ts), before they look for a key in it. Pure.
 */
import { identifyFile } from "../format/file_kind.ts";
import { IROM_FILE_OFFSET, MAX_TOTAL, TOTAL_FIELD_OFFSET } from "../format/image.ts";
import { readU32 } from "../_bytes.ts";

export interface NamedFile {
  path: string;
  bytes: Uint8Array;
}

/** An ESP8266 application image with the OTA layout (a length word at 0x8ffc). */
export function isAppImage(bytes: Uint8Array): boolean {
  if (identifyFile(bytes).id !== "esp8266" || bytes.length < IROM_FILE_OFFSET) return false;
  const total = readU32(bytes, TOTAL_FIELD_OFFSET);
  return total > IROM_FILE_OFFSET && total <= MAX_TOTAL && total <= bytes.length;
}

export function swappedMessage(bootloader: string, firmware: string): string {
  return `the bootloader and the firmware are swapped: ${bootloader} is a MicroPython ` +
    `firmware image and ${firmware} is the yaota8266 bootloader. Give yaota8266.bin as ` +
    `--bootloader (it goes at 0x0) and the firmware as --firmware`;
}

/**
 * Why `bootloader` cannot be yaota8266.bin, or undefined if it may be: a MicroPython
 * image (the two files swapped, when `firmware` is the bootloader), an empty file, a
 * signed .ota file, an ESP32 or MCUboot image…
 */
export function wrongBootloaderFile(
  bootloader: NamedFile,
  firmware?: NamedFile,
): string | undefined {
  if (isAppImage(bootloader.bytes)) {
    if (firmware && identifyFile(firmware.bytes).id === "yaota8266") {
      return swappedMessage(bootloader.path, firmware.path);
    }
    return `${bootloader.path} is a MicroPython firmware image, not the yaota8266 bootloader: ` +
      `give it as --firmware, and yaota8266.bin as --bootloader ('deno task build-bootloader' makes one)`;
  }
  const kind = identifyFile(bootloader.bytes);
  if (["esp8266", "yaota8266", "unknown"].includes(kind.id)) return undefined;
  return `${bootloader.path} is ${kind.name}, not the yaota8266 bootloader: build it with ` +
    `'deno task build-bootloader'`;
}
