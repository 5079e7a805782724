/**
 * What a `yaota8266.bin` can do, read from its bytes (docs/device.md, "Flash layout",
 * "Keys", "Entering OTA mode"): boot8266 (an ESP8266 image at 0x0, one flash sector)
 * followed by the ota-server (another ESP8266 image at the next sector, its irom at
 * 0x9000). Pure analysis, no I/O.
 *
 * - Software trigger: a boot8266 that enters OTA mode on the RTC magic compares two
 *   32-bit words with 0x746f6179 and 0x61746f61 (`yaot`, `aota` little-endian); the
 *   compiler keeps both in boot8266's literal pool, next to each other they read
 *   `yaotaota`. Its log line mentions the magic word in RTC memory. Upstream yaota8266
 *   has neither: only the BOOT button enters OTA mode.
 * - Button check: boot8266 logs "Initial GPIO state" and "GPIO changed".
 * - App offset: `check_main_app` reads the length word at MAIN_APP_OFFSET + 0x8ffc and
 *   the image at MAIN_APP_OFFSET, so both constants sit in boot8266's literal pool
 *   (0x3c000 and 0x44ffc in a default build), as flash offsets or mapped addresses.
 * - Key: the ota-server holds the public modulus verbatim.
 * - Per-packet log: the OTA server's UDP handler (`ota_udp_incoming` in
 *   `ota-server/ota.c`) prints five lines per packet, ~150 characters: at 115200 baud about
 *   13 ms of a packet's ~15 ms on the device, the real ceiling of every transfer
 *   (docs/device.md, "Costs on real hardware"). A bootloader built with
 *   `build-bootloader --quiet-log` leaves them out and keeps the error lines. Their format
 *   strings are compiled into the binary, so the answer is a byte search.
 */
import { IROM_MAP_BASE, readSegmentTable, TOTAL_FIELD_OFFSET } from "./image.ts";
import { formatHex, indexOfBytes, readU32 } from "../_bytes.ts";
import { printableRuns } from "./_printable_runs.ts";

export const RTC_MAGIC_WORDS = [0x746f6179, 0x61746f61] as const;
const RTC_MAGIC_TEXT = new TextEncoder().encode("yaotaota");
const SECTOR = 0x1000;
/** boot8266 is one sector; allow a second for an extended one. */
const MAX_BOOT8266_END = 2 * SECTOR;
/** How far apart two literals of one function's pool may be. */
const POOL_SPAN = 64;

/** The message `flash` and `verify` give for a bootloader without the software trigger. */
export const NO_TRIGGER_CONSEQUENCE =
  "OTA mode only with the BOOT button within 3 s of reset; `trigger` and `deploy --trigger` " +
  "will not work on this board";

/** The format strings of the lines `ota_udp_incoming` prints for every packet. */
export const PER_PACKET_LOG_FORMATS = [
  "UDP incoming from: %x:%d, data=%p\n",
  "Pkt id: %x\n",
  "offset: %d len: %d\n",
  "Proc1 time: %d\n",
  "Full time: %d\n",
] as const;

/**
 * Lines the OTA server prints only when something is wrong (or at the end), in a quiet
 * build too: they tell an OTA server without the per-packet log from something else.
 */
export const OTA_SERVER_MARKERS = [
  "Unexpected offset\n",
  "Invalid SHA1\n",
  "OTA finished, rexmits: %d\n",
] as const;

export interface PacketLog {
  /**
   * `on`: every per-packet line is there; `off`: none is, but the OTA server's error lines
   * are (a quiet build); `partial`: some are; `unknown`: neither (not an OTA server this
   * tool knows).
   */
  state: "on" | "off" | "partial" | "unknown";
  /** The per-packet formats found. */
  found: string[];
}

const has = (binary: Uint8Array, text: string) =>
  indexOfBytes(binary, new TextEncoder().encode(text)) >= 0;

/** Which per-packet log lines `binary` holds. Pure. */
export function packetLogOf(binary: Uint8Array): PacketLog {
  const found = PER_PACKET_LOG_FORMATS.filter((f) => has(binary, f));
  if (found.length === PER_PACKET_LOG_FORMATS.length) return { state: "on", found };
  if (found.length > 0) return { state: "partial", found };
  const server = OTA_SERVER_MARKERS.some((m) => has(binary, m));
  return { state: server ? "off" : "unknown", found };
}

const shown = (format: string) => `'${format.replace(/\n$/, "")}'`;

/** A clause for a report line ("logs every packet on its serial port …"); "" if unknown. Pure. */
export function describePacketLog(log: PacketLog): string {
  switch (log.state) {
    case "on":
      return "logs every packet on its serial port (~150 characters, about 13 ms per packet at " +
        "115200 baud: the ceiling of every transfer; 'build-bootloader --quiet-log' builds one " +
        "without)";
    case "off":
      return "quiet: no per-packet serial log (built with --quiet-log), error lines kept";
    case "partial":
      return `logs some lines per packet on its serial port (${log.found.map(shown).join(", ")})`;
    case "unknown":
      return "";
  }
}

export interface KnownModulus {
  /** How to name it: "your key keys/priv.key", "keys/old.key". */
  label: string;
  modulus: Uint8Array;
}

export interface BootloaderFacts {
  /** boot8266 at 0x0 and the ota-server image after it (or their log strings) were found. */
  recognised: boolean;
  /** End of boot8266's segments, when its image header was read. */
  boot8266End?: number;
  /** Offset of the ota-server's image, when found. */
  otaServerAt?: number;
  /** boot8266 enters OTA mode when RTC memory holds "yaotaota". */
  softwareTrigger: boolean;
  /** What shows the trigger: the constants and where, the log string. Empty if absent. */
  triggerEvidence: string[];
  /** boot8266 enters OTA mode when a button (GPIO) changes after reset. */
  buttonCheck: boolean;
  /** The MAIN_APP_OFFSET it was built for, when its constants were found. */
  appOffset?: number;
  /** The first known key whose modulus it holds, and where. */
  key?: { label: string; at: number };
  /** The keys looked for (labels), whether found or not. */
  keysLookedFor: string[];
  /** Whether its OTA server logs every packet on the serial port (`--quiet-log` builds don't). */
  packetLog: PacketLog;
}

function isPrintable(b: number): boolean {
  return b >= 0x20 && b < 0x7f;
}

/** The printable NUL-terminated strings of `bytes` (4 characters or more), with offsets. */
function strings(bytes: Uint8Array): { at: number; text: string }[] {
  const out: { at: number; text: string }[] = [];
  for (const [at, end] of printableRuns(bytes, isPrintable)) {
    if (end - at < 4) continue;
    // Log lines are short; a long printable run (data, not a message) is cut to keep it cheap.
    out.push({ at, text: String.fromCharCode(...bytes.subarray(at, Math.min(end, at + 256))) });
  }
  return out;
}

/** Offsets of the aligned 32-bit words equal to `value` in [from, to). */
function wordsAt(bytes: Uint8Array, value: number, from: number, to: number): number[] {
  const out: number[] = [];
  for (let at = Math.max(0, from) & ~3; at + 4 <= Math.min(to, bytes.length); at += 4) {
    if (readU32(bytes, at) === value) out.push(at);
  }
  return out;
}

function findTrigger(bytes: Uint8Array, texts: { at: number; text: string }[]): string[] {
  const evidence: string[] = [];
  const adjacent = indexOfBytes(bytes, RTC_MAGIC_TEXT);
  if (adjacent >= 0) {
    evidence.push(
      `the RTC magic constants 0x746f6179, 0x61746f61 ('yaotaota') at ${formatHex(adjacent)}`,
    );
  } else {
    const [first, second] = RTC_MAGIC_WORDS.map((w) => wordsAt(bytes, w, 0, bytes.length));
    const pair = first!.find((a) => second!.some((b) => Math.abs(a - b) <= POOL_SPAN));
    if (pair !== undefined) {
      evidence.push(`the RTC magic constants 0x746f6179 and 0x61746f61 near ${formatHex(pair)}`);
    }
  }
  const log = texts.find((s) => /magic/i.test(s.text) && /RTC/.test(s.text));
  if (log) evidence.push(`the log line '${log.text.trim()}' at ${formatHex(log.at)}`);
  return evidence;
}

/** MAIN_APP_OFFSET from the pair (offset, offset + 0x8ffc) in one literal pool. */
function findAppOffset(bytes: Uint8Array, from: number, to: number): number | undefined {
  for (let at = from & ~3; at + 4 <= Math.min(to, bytes.length); at += 4) {
    const word = readU32(bytes, at);
    for (const mapped of [0, IROM_MAP_BASE]) {
      const offset = word - mapped;
      if (offset < SECTOR || offset >= 0x400000 || offset % SECTOR !== 0) continue;
      const near = wordsAt(bytes, word + TOTAL_FIELD_OFFSET, at - POOL_SPAN, at + POOL_SPAN);
      if (near.length) return offset;
    }
  }
  return undefined;
}

/** boot8266's image at 0x0 and the ota-server's at the next sector, if both are there. */
export function yaotaLayout(
  bytes: Uint8Array,
): { boot8266End: number; otaServerAt?: number } | undefined {
  const boot = readSegmentTable(bytes, 0);
  if (!boot || boot.end > MAX_BOOT8266_END) return undefined;
  const next = Math.ceil(boot.end / SECTOR) * SECTOR;
  return { boot8266End: boot.end, otaServerAt: readSegmentTable(bytes, next) ? next : undefined };
}

/**
 * Is this the yaota8266 bootloader? Its two images (boot8266 at 0x0, the ota-server at
 * the next sector), or boot8266's and the ota-server's log strings before 0x9000. Pure.
 */
export function looksLikeYaota8266(bytes: Uint8Array): boolean {
  const layout = yaotaLayout(bytes);
  if (layout?.otaServerAt !== undefined) return true;
  const texts = strings(bytes.subarray(0, 0x9000)).map((s) => s.text);
  return texts.some((t) => t.includes("boot8266")) &&
    texts.some((t) => /OTA server|Running OTA/.test(t));
}

/**
 * What a yaota8266.bin can do: software trigger (RTC magic), button check, the app
 * offset and key it was built for. Pure; never throws.
 * @param bytes the bootloader binary, as flashed at 0x0
 * @param keys moduli to look for, the user's first
 * @example
 * ```ts
 * import { analyseBootloader } from "./bootloader_image.ts";
 * const facts = analyseBootloader(new TextEncoder().encode("..yaotaota.."));
 * if (!facts.softwareTrigger) throw new Error();
 * ```
 */
export function analyseBootloader(
  bytes: Uint8Array,
  keys: readonly KnownModulus[] = [],
): BootloaderFacts {
  const layout = yaotaLayout(bytes);
  const texts = strings(bytes);
  const triggerEvidence = findTrigger(bytes, texts);
  // boot8266's own literal pool first; a binary we cannot take apart is searched whole.
  const appOffset = layout
    ? findAppOffset(bytes, 0, layout.boot8266End) ?? findAppOffset(bytes, 0, bytes.length)
    : findAppOffset(bytes, 0, bytes.length);
  let key: BootloaderFacts["key"];
  for (const k of keys) {
    const at = k.modulus.length ? indexOfBytes(bytes, k.modulus) : -1;
    if (at >= 0) {
      key = { label: k.label, at };
      break;
    }
  }
  return {
    recognised: looksLikeYaota8266(bytes),
    boot8266End: layout?.boot8266End,
    otaServerAt: layout?.otaServerAt,
    softwareTrigger: triggerEvidence.length > 0,
    triggerEvidence,
    buttonCheck: texts.some((s) => /GPIO changed|Initial GPIO state/.test(s.text)),
    appOffset,
    key,
    keysLookedFor: keys.map((k) => k.label),
    packetLog: packetLogOf(bytes),
  };
}

/** One line on the software trigger, for reports. */
export function describeTrigger(facts: BootloaderFacts): string {
  return facts.softwareTrigger
    ? `software trigger: yes, boot8266 enters OTA mode on the RTC magic 'yaotaota' ` +
      `(${facts.triggerEvidence.join("; ")})`
    : `software trigger: NO (no RTC magic check in boot8266): ${NO_TRIGGER_CONSEQUENCE}`;
}

/** The facts other than the key, short: "software trigger (RTC magic): yes; …". */
export function describeBootloader(facts: BootloaderFacts): string {
  return [
    `software trigger (RTC magic): ${facts.softwareTrigger ? "yes" : "NO"}`,
    `BOOT button check: ${facts.buttonCheck ? "yes" : "not found"}`,
    facts.appOffset === undefined
      ? "app offset: not found"
      : `built for app offset ${formatHex(facts.appOffset)}`,
  ].join("; ");
}
