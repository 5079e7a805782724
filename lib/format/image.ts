/**
 * The MicroPython OTA firmware image (docs/device.md, "OTA firmware image"): the ESP8266
 * RAM-segment image, 0xFF padding to 0x8ffc, the u32 `total` there, the irom0 text at
 * 0x9000, and an MD5 trailer over bytes [4, total). Writer and parser.
 */
import { createHash } from "node:crypto";
import { concat, readU32, writeU32 } from "../_bytes.ts";

export const ESP_IMAGE_MAGIC = 0xe9;
export const CHECKSUM_SEED = 0xef;
/** The RAM part must be smaller than this; irom starts here (docs/device.md). */
export const IROM_FILE_OFFSET = 0x9000;
export const TOTAL_FIELD_OFFSET = 0x8ffc;
/** boot8266 treats a `total` above this as an invalid app. */
export const MAX_TOTAL = 800000;
export const MD5_LENGTH = 16;
export const IROM_MAP_BASE = 0x40200000;
export const DEFAULT_APP_OFFSET = 0x3c000;
/** Where upstream's `esp8266_ota.ld` ends the irom (0x3c000 + 0x9000 + len 0x8f000). */
export const IROM_END = 0xd4000;
/** The least irom room an app offset must leave below `IROM_END`. */
export const MIN_IROM_LENGTH = 0x10000;

export interface Segment {
  address: number;
  data: Uint8Array;
}

export interface ImageParts {
  segments: Segment[];
  entry: number;
  irom: Uint8Array;
  flashMode?: number;
  flashSizeFreq?: number;
}

/** The irom link address of an OTA build for `appOffset` (0x40245000 for 0x3c000). */
export function otaIromBase(appOffset: number): number {
  return IROM_MAP_BASE + appOffset + IROM_FILE_OFFSET;
}

/** The irom link address of a standard (non-OTA) build. */
export const STANDARD_IROM_BASE = 0x40209000;

export function segmentChecksum(segments: readonly Segment[]): number {
  let sum = CHECKSUM_SEED;
  for (const s of segments) for (const b of s.data) sum ^= b;
  return sum;
}

/** The RAM-segment image as esptool's `elf2image` writes it (`firmware.elf-0x00000.bin`). */
export function encodeRamImage(parts: Omit<ImageParts, "irom">): Uint8Array {
  const header = new Uint8Array(8);
  header[0] = ESP_IMAGE_MAGIC;
  header[1] = parts.segments.length;
  header[2] = parts.flashMode ?? 0;
  header[3] = parts.flashSizeFreq ?? 0;
  writeU32(header, 4, parts.entry);
  const chunks: Uint8Array[] = [header];
  for (const s of parts.segments) {
    const head = new Uint8Array(8);
    writeU32(head, 0, s.address);
    writeU32(head, 4, s.data.length);
    chunks.push(head, s.data);
  }
  const body = concat(chunks);
  const padded = new Uint8Array((Math.floor(body.length / 16) + 1) * 16);
  padded.set(body);
  padded[padded.length - 1] = segmentChecksum(parts.segments);
  return padded;
}

/** MD5 as boot8266 checks it: bytes [4, total) of the image. */
export function imageDigest(image: Uint8Array, total: number): Uint8Array {
  return new Uint8Array(createHash("md5").update(image.subarray(4, total)).digest());
}

/** Assembles `firmware-ota.bin` as `makeimg.py` does. */
export function buildOtaImage(parts: ImageParts): Uint8Array {
  const ram = encodeRamImage(parts);
  if (ram.length >= TOTAL_FIELD_OFFSET) {
    throw new RangeError(`RAM segments take ${ram.length} bytes; they must stay under 0x8ffc`);
  }
  const total = IROM_FILE_OFFSET + parts.irom.length;
  const image = new Uint8Array(total + MD5_LENGTH).fill(0xff, 0, IROM_FILE_OFFSET);
  image.set(ram);
  writeU32(image, TOTAL_FIELD_OFFSET, total);
  image.set(parts.irom, IROM_FILE_OFFSET);
  image.set(imageDigest(image, total), total);
  return image;
}

export interface ParsedImage {
  magic: number;
  segmentCount: number;
  flashMode: number;
  flashSizeFreq: number;
  entry: number;
  segments: Segment[];
  /** Length of the RAM part including padding and checksum byte; undefined if truncated. */
  ramLength?: number;
  checksumStored?: number;
  checksumComputed?: number;
  /** `total` read at 0x8ffc, if the image is that long. */
  total?: number;
  irom?: Uint8Array;
  md5Stored?: Uint8Array;
  md5Computed?: Uint8Array;
}

/** Parses as much of the structure as is there; never throws on malformed input. */
export function parseImage(image: Uint8Array): ParsedImage {
  const out: ParsedImage = {
    magic: image[0] ?? -1,
    segmentCount: image[1] ?? 0,
    flashMode: image[2] ?? 0,
    flashSizeFreq: image[3] ?? 0,
    entry: image.length >= 8 ? readU32(image, 4) : 0,
    segments: [],
  };
  let at = 8;
  let complete = image.length >= 8;
  for (let i = 0; i < out.segmentCount && complete; i++) {
    if (at + 8 > image.length) {
      complete = false;
      break;
    }
    const address = readU32(image, at);
    const size = readU32(image, at + 4);
    if (at + 8 + size > image.length || size > IROM_FILE_OFFSET) {
      complete = false;
      break;
    }
    out.segments.push({ address, data: image.subarray(at + 8, at + 8 + size) });
    at += 8 + size;
  }
  if (complete) {
    const ramLength = (Math.floor(at / 16) + 1) * 16;
    if (ramLength <= image.length) {
      out.ramLength = ramLength;
      out.checksumStored = image[ramLength - 1];
      out.checksumComputed = segmentChecksum(out.segments);
    }
  }
  if (image.length >= IROM_FILE_OFFSET) {
    const total = readU32(image, TOTAL_FIELD_OFFSET);
    out.total = total;
    if (total >= IROM_FILE_OFFSET && total + MD5_LENGTH <= image.length) {
      out.irom = image.subarray(IROM_FILE_OFFSET, total);
      out.md5Stored = image.subarray(total, total + MD5_LENGTH);
      out.md5Computed = imageDigest(image, total);
    }
  }
  return out;
}

/** Where RAM segments of an ESP8266 image load: DPORT, DRAM and IRAM (0x3ff00000..0x40110000). */
export function isEsp8266RamAddress(address: number): boolean {
  return address >= 0x3ff00000 && address < 0x40110000;
}

export interface SegmentTable {
  entry: number;
  segments: { address: number; size: number; dataAt: number }[];
  /** Offset just past the last segment's data. */
  end: number;
}

/**
 * The segment table of an ESP8266 image starting at `at`, if one is there whose every
 * segment loads into ESP8266 RAM and fits the file; undefined otherwise. Pure.
 */
export function readSegmentTable(bytes: Uint8Array, at = 0): SegmentTable | undefined {
  if (at + 8 > bytes.length || bytes[at] !== ESP_IMAGE_MAGIC) return undefined;
  const count = bytes[at + 1]!;
  if (count === 0 || count > 16) return undefined;
  const segments: SegmentTable["segments"] = [];
  let next = at + 8;
  for (let i = 0; i < count; i++) {
    if (next + 8 > bytes.length) return undefined;
    const address = readU32(bytes, next);
    const size = readU32(bytes, next + 4);
    if (!isEsp8266RamAddress(address) || next + 8 + size > bytes.length) return undefined;
    segments.push({ address, size, dataAt: next + 8 });
    next += 8 + size;
  }
  return { entry: readU32(bytes, at + 4), segments, end: next };
}

/** boot8266's `check_main_app` applied to an image (or to flash at the app offset). */
export function bootCheck(app: Uint8Array): boolean {
  if (app.length < IROM_FILE_OFFSET) return false;
  const total = readU32(app, TOTAL_FIELD_OFFSET);
  if (total > MAX_TOTAL || total < 4 || total + MD5_LENGTH > app.length) return false;
  const digest = imageDigest(app, total);
  const stored = app.subarray(total, total + MD5_LENGTH);
  return digest.every((b, i) => b === stored[i]);
}

/** The MicroPython version string in an image, e.g. "v1.19.1 on 2022-06-18", if any. */
export function findVersion(image: Uint8Array): string | undefined {
  const text = new TextDecoder("latin1").decode(image);
  const m = /MicroPython (v\d+\.\d+(?:\.\d+)?[\x21-\x7e]* on \d{4}-\d\d-\d\d)/.exec(text) ??
    /(v\d+\.\d+\.\d+(?:-[\w.+-]+)? on \d{4}-\d\d-\d\d)/.exec(text);
  return m?.[1];
}
