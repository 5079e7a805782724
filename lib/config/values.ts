/**
 * The values a user gives, parsed and checked in one place whatever they come from: a
 * flag, `ota.config.json` or `dist/manifest.json`. Each parser takes the raw value and
 * where it came from, so one rule gives one message: a flag's is a `UsageError` (exit 2)
 * naming the flag, a file's a `ConfigError` (exit 1) naming the file and the key, an
 * environment variable's a `ConfigError` naming the variable. Pure.
 */
import { ConfigError, type OtaError, UsageError } from "../errors.ts";
import {
  DEFAULT_APP_OFFSET,
  IROM_END,
  IROM_FILE_OFFSET,
  MIN_IROM_LENGTH,
} from "../format/image.ts";
import { formatHex, parseSize } from "../_bytes.ts";

/** The private key every task uses when neither `--key` nor the config's `key` names one. */
export const DEFAULT_KEY_PATH = "keys/priv.key";
/** The public half's file name, beside the private key (`keygen` writes both). */
export const PUBLIC_KEY_FILE = "pub.key";

/**
 * The device's port when nothing names another: yaota8266's OTA server listens on UDP
 * 8266, and MicroPython's WebREPL on TCP 8266 (docs/device.md, "Wire protocol", "WebREPL").
 */
export const DEFAULT_DEVICE_PORT = 8266;

/** Flash is erased and written in 4 KiB sectors; the device flushes its buffer per sector. */
export const APP_OFFSET_ALIGN = 0x1000;
/**
 * The lowest app offset: yaota8266 (boot8266's 4 KiB sector, then the OTA server with its
 * network stack and RSA code) sits from 0x0 below it (docs/device.md, "Flash layout"). A
 * real yaota8266.bin fills 0x3b9a6 bytes; no OTA server fits below 64 KiB.
 */
export const MIN_APP_OFFSET = 0x10000;
/** The highest: the OTA build's irom (at app offset + 0x9000) must keep room below 0xd4000. */
export const MAX_APP_OFFSET = IROM_END - IROM_FILE_OFFSET - MIN_IROM_LENGTH;

/** `--timeout` of deploy: long enough for any link, short enough to notice a typo (1e9). */
export const MAX_TIMEOUT_S = 3600;

/**
 * Where a value came from: a flag (`{ flag: "app-offset" }`), a key in a file, or an
 * environment variable (`{ env: "YAOTA_APP_OFFSET" }`).
 */
export type Source = { flag: string } | { file: string; key: string } | { env: string };

/**
 * How a source is named in a message: `--app-offset`, `ota.config.json: appOffset`,
 * `YAOTA_APP_OFFSET (environment)`.
 */
export function describeSource(source: Source): string {
  if ("flag" in source) return `--${source.flag}`;
  if ("env" in source) return `${source.env} (environment)`;
  return `${source.file}: ${source.key}`;
}

function shown(raw: unknown, source: Source): string {
  return "file" in source ? JSON.stringify(raw) ?? String(raw) : `'${String(raw)}'`;
}

/** The one shape of a refused value: what was expected, what came, and why not. */
export function invalidValue(
  source: Source,
  expected: string,
  raw: unknown,
  reason?: string,
): OtaError {
  const tail = `got ${shown(raw, source)}${reason ? ` (${reason})` : ""}`;
  return "flag" in source
    ? new UsageError(`--${source.flag} expects ${expected}, ${tail}`)
    : new ConfigError(`${describeSource(source)}: expected ${expected}, ${tail}`);
}

/** A whole number from a flag's text, a JSON number or a JSON string ("0x3c000", "240K"). */
function wholeNumber(raw: unknown): number {
  if (typeof raw === "number") return Number.isInteger(raw) ? raw : NaN;
  if (typeof raw === "string") return parseSize(raw);
  return NaN;
}

const APP_OFFSET_EXPECTED = `a 4 KiB-aligned flash offset from ${formatHex(MIN_APP_OFFSET)} to ${
  formatHex(MAX_APP_OFFSET)
}, such as ${formatHex(DEFAULT_APP_OFFSET)}`;

/**
 * The device's `MAIN_APP_OFFSET`: 4 KiB aligned, above the bootloader, leaving room for
 * the irom.
 * @param raw the flag's text, or the value found in a file (a string or a number)
 * @param source where it came from, to name it
 * @returns the offset
 * @throws {UsageError} For a flag that is not such an offset.
 * @throws {ConfigError} For a file value that is not.
 * @example
 * ```ts
 * import { parseAppOffset } from "./values.ts";
 * if (parseAppOffset("0x3c000", { flag: "app-offset" }) !== 0x3c000) throw new Error();
 * ```
 */
export function parseAppOffset(raw: unknown, source: Source): number {
  const n = wholeNumber(raw);
  if (!Number.isSafeInteger(n)) throw invalidValue(source, APP_OFFSET_EXPECTED, raw);
  if (n % APP_OFFSET_ALIGN !== 0) {
    const below = n - (n % APP_OFFSET_ALIGN);
    throw invalidValue(
      source,
      APP_OFFSET_EXPECTED,
      raw,
      `${formatHex(n)} is not a multiple of ${formatHex(APP_OFFSET_ALIGN)}: the nearest are ${
        formatHex(below)
      } and ${formatHex(below + APP_OFFSET_ALIGN)}`,
    );
  }
  if (n < MIN_APP_OFFSET) {
    throw invalidValue(
      source,
      APP_OFFSET_EXPECTED,
      raw,
      `below ${formatHex(MIN_APP_OFFSET)}, where yaota8266 itself lies`,
    );
  }
  if (n > MAX_APP_OFFSET) {
    throw invalidValue(
      source,
      APP_OFFSET_EXPECTED,
      raw,
      `above ${formatHex(MAX_APP_OFFSET)}, the irom would not fit below ${formatHex(IROM_END)}`,
    );
  }
  return n;
}

/**
 * The app offset a task uses: the flag's, else the config's (both parsed by
 * `parseAppOffset` on the way in), else 0x3c000. Whether an image fits above it in the
 * flash is the inspection's "size" check.
 */
export function resolveAppOffset(
  flag: number | undefined,
  config: { appOffset?: number },
): number {
  return flag ?? config.appOffset ?? DEFAULT_APP_OFFSET;
}

/** The key path a task uses: `--key`, else the config's `key`, else `keys/priv.key`. Pure. */
export function resolveKeyPath(flag: string | undefined, config: { key?: string }): string {
  return flag ?? config.key ?? DEFAULT_KEY_PATH;
}

/** The device's port: `--device-port` (parsed by `parsePort`), else the config's, else 8266. Pure. */
export function resolvePort(flag: number | undefined, config: { port?: number }): number {
  return flag ?? config.port ?? DEFAULT_DEVICE_PORT;
}

/** The flash chips ESP8266 boards carry: 512 KiB to 16 MiB, powers of two. */
const FLASH_SIZES = [0x80000, 0x100000, 0x200000, 0x400000, 0x800000, 0x1000000];

/**
 * The device's flash size: 512K, 1M, 2M, 4M, 8M or 16M (or the same in bytes).
 * @throws {UsageError | ConfigError} If it is none of those.
 */
export function parseFlashSize(raw: unknown, source: Source): number {
  const n = wholeNumber(raw);
  if (!FLASH_SIZES.includes(n)) {
    throw invalidValue(source, "a flash size of 512K, 1M, 2M, 4M, 8M or 16M", raw);
  }
  return n;
}

/**
 * A UDP or TCP port. `allowZero` for a port to listen on (0: the OS picks a free one).
 * @throws {UsageError | ConfigError} If it is not a whole number in range.
 */
export function parsePort(raw: unknown, source: Source, options: { allowZero?: boolean } = {}) {
  const min = options.allowZero ? 0 : 1;
  const expected = `a port number from ${min} to 65535${
    options.allowZero ? " (0: any free port)" : ""
  }`;
  const n = typeof raw === "number"
    ? raw
    : typeof raw === "string" && /^\s*\d+\s*$/.test(raw)
    ? Number(raw)
    : NaN;
  if (!Number.isInteger(n) || n < min || n > 65535) throw invalidValue(source, expected, raw);
  return n;
}

/** esptool's serial rates: its ROM default 115200 up to what USB-serial chips reach. */
export const MIN_BAUD = 9600;
export const MAX_BAUD = 4000000;

/**
 * A serial baud rate for esptool, 9600 to 4000000.
 * @throws {UsageError | ConfigError} If it is not a whole number in that range.
 */
export function parseBaud(raw: unknown, source: Source): number {
  const n = typeof raw === "number"
    ? raw
    : typeof raw === "string" && /^\s*\d+\s*$/.test(raw)
    ? Number(raw)
    : NaN;
  if (!Number.isInteger(n) || n < MIN_BAUD || n > MAX_BAUD) {
    throw invalidValue(source, "a baud rate such as 115200 or 460800", raw);
  }
  return n;
}

/**
 * A time in seconds, more than 0 (or 0 itself with `allowZero`: "off") and at most `max`;
 * returns milliseconds.
 * @throws {UsageError | ConfigError} If it is not a number in that range.
 */
export function parseSeconds(
  raw: unknown,
  source: Source,
  max: number,
  options: { allowZero?: boolean } = {},
): number {
  const expected = options.allowZero
    ? `a time in seconds from 0 (off) to ${max}`
    : `a time in seconds, more than 0 and at most ${max}`;
  const n = typeof raw === "number"
    ? raw
    : typeof raw === "string" && raw.trim() !== ""
    ? Number(raw)
    : NaN;
  const tooLow = options.allowZero ? n < 0 : n <= 0;
  if (!Number.isFinite(n) || tooLow || n > max) throw invalidValue(source, expected, raw);
  return Math.round(n * 1000);
}

/**
 * The `--version` label of a build (`ota.VERSION` on the board): 1 to 32 letters, digits
 * and `. _ + -`, starting with a letter or digit, e.g. "1.4.0" or "2024-06-rc1".
 * @throws {UsageError | ConfigError} If it is anything else.
 */
export function parseVersionLabel(raw: unknown, source: Source): string {
  if (typeof raw !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$/.test(raw)) {
    throw invalidValue(
      source,
      "a label of 1 to 32 letters, digits and . _ + - (starting with a letter or digit), such as 1.4.0",
      raw,
    );
  }
  return raw;
}

/** A count from `min` to `max` (`--canary`, `--retries`...). @throws {UsageError | ConfigError} */
export function parseCount(raw: unknown, source: Source, min: number, max: number): number {
  const n = typeof raw === "number"
    ? raw
    : typeof raw === "string" && /^\s*\d+\s*$/.test(raw)
    ? Number(raw)
    : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw invalidValue(source, `a whole number from ${min} to ${max}`, raw);
  }
  return n;
}
