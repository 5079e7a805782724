/**
 * What is this file? Every task that reads a firmware image names what it got when it is
 * not an ESP8266 application image, with the next step: a signed `.ota` file, the
 * yaota8266 bootloader, an ESP32-family or MCUboot image, an ELF file, an empty or
 * truncated file. Byte 0 alone says little: ESP32 images start with 0xe9 too.
 */
import { looksLikeYaota8266 } from "./bootloader_image.ts";
import { isCanned } from "./canned.ts";
import { ESP_IMAGE_MAGIC, isEsp8266RamAddress } from "./image.ts";
import { formatHex, readU16, readU32 } from "../_bytes.ts";

export type FileKindId =
  | "esp8266"
  | "empty"
  | "truncated"
  | "canned"
  | "yaota8266"
  | "esp32"
  | "mcuboot"
  | "esp8266-v2"
  | "elf"
  | "text"
  | "unknown";

export interface FileKind {
  id: FileKindId;
  /** What the file is: "an MCUboot image (…)". */
  name: string;
  /** What to do with it instead; empty for an ESP8266 image. */
  next: string;
}

export const MCUBOOT_MAGIC = 0x96f3b83d;
const ESP8266_V2_MAGIC = 0xea;

/** Chip ids of the ESP32 family's extended image header (ESP-IDF `esp_chip_id_t`). */
const ESP32_CHIPS: Record<number, string> = {
  0x00: "ESP32",
  0x02: "ESP32-S2",
  0x05: "ESP32-C3",
  0x09: "ESP32-S3",
  0x0c: "ESP32-C2",
  0x0d: "ESP32-C6",
  0x10: "ESP32-H2",
  0x12: "ESP32-P4",
  0x14: "ESP32-C61",
  0x17: "ESP32-C5",
  0x19: "ESP32-H21",
  0x1c: "ESP32-H4",
};

const BUILD_OTA = "build the ESP8266 OTA image with 'deno task build-ota'";

/**
 * An ESP32-family image: 0xe9, then a 16-byte extended header where an ESP8266 image has
 * its first segment header. The extended header's reserved bytes are zero and its
 * hash-appended flag is 0 or 1; its first segment header follows at byte 24.
 */
function esp32Chip(bytes: Uint8Array): string | undefined {
  if (bytes.length < 32 || bytes[0] !== ESP_IMAGE_MAGIC) return undefined;
  // An ESP8266 image has its first segment's load address here: the ESP32 header does not.
  if (isEsp8266RamAddress(readU32(bytes, 8))) return undefined;
  const reservedZero = bytes.subarray(19, 23).every((b) => b === 0);
  if (!reservedZero || bytes[23]! > 1) return undefined;
  const chipId = readU16(bytes, 12);
  return ESP32_CHIPS[chipId] ?? (chipId < 0x100 ? `ESP32-family (chip id ${chipId})` : undefined);
}

function mcubootVersion(bytes: Uint8Array): string {
  // struct image_header: magic, load_addr, hdr_size u16, protect_tlv_size u16, img_size,
  // flags, version {major u8, minor u8, revision u16, build_num u32}
  if (bytes.length < 32) return "";
  return `, version ${bytes[20]}.${bytes[21]}.${readU16(bytes, 22)}+${readU32(bytes, 24)}, ` +
    `${readU32(bytes, 12)} bytes of code`;
}

function looksLikeText(bytes: Uint8Array): boolean {
  const head = bytes.subarray(0, 512);
  return head.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d);
}

/**
 * Names a file given where a firmware image is expected. Pure.
 * @example
 * ```ts
 * import { identifyFile } from "./file_kind.ts";
 * if (identifyFile(new Uint8Array(0)).id !== "empty") throw new Error();
 * ```
 */
export function identifyFile(bytes: Uint8Array): FileKind {
  const kind = (id: FileKindId, name: string, next: string): FileKind => ({ id, name, next });
  if (bytes.length === 0) {
    return kind(
      "empty",
      "an empty file (0 bytes)",
      `was the build or the copy interrupted? ${capitalize(BUILD_OTA)}`,
    );
  }
  if (isCanned(bytes)) {
    return kind(
      "canned",
      "a signed .ota file (made by 'deno task sign'), not a firmware image",
      "'deno task deploy FILE' sends it as it is and checks the image inside first; here, use " +
        "the image it was signed from (e.g. dist/firmware-ota.bin)",
    );
  }
  if (bytes.length >= 4 && readU32(bytes, 0) === MCUBOOT_MAGIC) {
    return kind(
      "mcuboot",
      `an MCUboot image (magic 0x96f3b83d, as Zephyr and nRF Connect SDK builds use${
        mcubootVersion(bytes)
      })`,
      `it cannot run on an ESP8266 with yaota8266: ${BUILD_OTA}`,
    );
  }
  if (bytes.length >= 4 && readU32(bytes, 0) === 0x464c457f) {
    return kind(
      "elf",
      "an ELF file (a linker output such as firmware.elf), not a flash image",
      `use the firmware-ota.bin made from it: ${BUILD_OTA}`,
    );
  }
  const chip = esp32Chip(bytes);
  if (chip) {
    return kind(
      "esp32",
      `an ${chip} application image (extended header, chip id ${readU16(bytes, 12)}, entry ${
        formatHex(readU32(bytes, 4))
      }), not an ESP8266 image`,
      `yaota8266 runs on the ESP8266 only: ${BUILD_OTA}`,
    );
  }
  if (bytes[0] === ESP_IMAGE_MAGIC && looksLikeYaota8266(bytes)) {
    return kind(
      "yaota8266",
      "the yaota8266 bootloader (boot8266 + ota-server), not a firmware image",
      "this is the bootloader: flash it at 0x0 with 'deno task flash'",
    );
  }
  if (bytes[0] === ESP_IMAGE_MAGIC && bytes.length < 8) {
    return kind(
      "truncated",
      `a truncated file: ${bytes.length} bytes, less than the 8-byte image header`,
      `copy it again, or ${BUILD_OTA}`,
    );
  }
  if (bytes[0] === ESP_IMAGE_MAGIC) return kind("esp8266", "an ESP8266 image", "");
  if (bytes[0] === ESP8266_V2_MAGIC) {
    return kind(
      "esp8266-v2",
      "an ESP8266 image in the 'version 2' format (magic 0xea, for the SDK's boot_v1.x or rBoot)",
      `yaota8266 boots MicroPython's OTA image: ${BUILD_OTA}`,
    );
  }
  if (looksLikeText(bytes)) {
    const start = new TextDecoder().decode(bytes.subarray(0, 24)).split("\n")[0];
    return kind(
      "text",
      `a text file (it starts '${start}'), not a firmware image`,
      `a downloaded page or a key, maybe? ${capitalize(BUILD_OTA)}`,
    );
  }
  return kind(
    "unknown",
    `not a firmware image (byte 0 is ${formatHex(bytes[0]!)}, not the ESP8266 image magic 0xe9)`,
    BUILD_OTA,
  );
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
