/**
 * Is this image safe to push to a yaota8266 device at this app offset? Every check
 * boot8266 makes, plus the ones it cannot: the irom link address, estimated from the
 * pointer-like words (docs/device.md, "OTA firmware image"), and the size.
 */
import {
  bootCheck,
  DEFAULT_APP_OFFSET,
  ESP_IMAGE_MAGIC,
  findVersion,
  IROM_FILE_OFFSET,
  IROM_MAP_BASE,
  MAX_TOTAL,
  otaIromBase,
  parseImage,
  STANDARD_IROM_BASE,
} from "./image.ts";
import { formatHex, readU32, toHex } from "./_bytes.ts";

export interface InspectOptions {
  appOffset?: number;
  /** Flash size of the device (default 1 MiB). */
  flashSize?: number;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface LinkEstimate {
  /** Words in the irom that look like irom pointers ([0x40200000, 0x40300000)). */
  pointerWords: number;
  /** The 4 KiB-aligned base whose range [base, base + irom length) holds the most of them. */
  bestBase: number;
  /** Share of pointer words inside each candidate range. */
  shareAtExpected: number;
  shareAtStandard: number;
  shareAtBest: number;
}

export interface InspectReport {
  size: number;
  appOffset: number;
  flashSize: number;
  /** True only if every check passed: safe to push to that offset. */
  safe: boolean;
  checks: Check[];
  segments: { address: string; size: number }[];
  entry?: string;
  total?: number;
  iromLength?: number;
  md5?: string;
  expectedIromBase: string;
  link?: LinkEstimate & { bestBaseHex: string };
  version?: string;
}

const POINTER_LOW = IROM_MAP_BASE;
const POINTER_HIGH = IROM_MAP_BASE + 0x100000;

/** Finds the irom link address that fits the image's pointer-like words best. */
export function estimateLinkBase(irom: Uint8Array, expectedBase: number): LinkEstimate {
  const pointers: number[] = [];
  for (let at = 0; at + 4 <= irom.length; at += 4) {
    const w = readU32(irom, at);
    if (w >= POINTER_LOW && w < POINTER_HIGH) pointers.push(w);
  }
  const len = irom.length;
  const hits = (base: number) =>
    pointers.reduce((n, p) => n + (p >= base && p < base + len ? 1 : 0), 0);
  // Histogram by 4 KiB page so the sliding window costs O(pages), not O(pointers × bases).
  const pages = new Uint32Array(0x100);
  for (const p of pointers) pages[(p - POINTER_LOW) >>> 12]!++;
  let best = STANDARD_IROM_BASE;
  let bestHits = -1;
  const span = Math.ceil(len / 0x1000);
  for (let page = 0; page < 0x100; page++) {
    let n = 0;
    for (let i = page; i < Math.min(0x100, page + span); i++) n += pages[i]!;
    if (n > bestHits) {
      bestHits = n;
      best = POINTER_LOW + page * 0x1000;
    }
  }
  const share = (n: number) => pointers.length ? n / pointers.length : 0;
  return {
    pointerWords: pointers.length,
    bestBase: best,
    shareAtExpected: share(hits(expectedBase)),
    shareAtStandard: share(hits(STANDARD_IROM_BASE)),
    shareAtBest: share(hits(best)),
  };
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

/** Inspects an image; pure. */
export function inspectImage(image: Uint8Array, options: InspectOptions = {}): InspectReport {
  const appOffset = options.appOffset ?? DEFAULT_APP_OFFSET;
  const flashSize = options.flashSize ?? 0x100000;
  const expectedBase = otaIromBase(appOffset);
  const parsed = parseImage(image);
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

  add(
    "header",
    parsed.magic === ESP_IMAGE_MAGIC && parsed.segmentCount > 0 && parsed.segmentCount <= 16,
    parsed.magic === ESP_IMAGE_MAGIC
      ? `ESP8266 image, ${parsed.segmentCount} RAM segment(s), entry ${formatHex(parsed.entry)}`
      : `byte 0 is ${
        formatHex(parsed.magic)
      }, not the ESP8266 image magic 0xe9: this is not a firmware image`,
  );
  const segmentsOk = parsed.segments.length === parsed.segmentCount &&
    parsed.ramLength !== undefined;
  add(
    "segments",
    segmentsOk && parsed.checksumStored === parsed.checksumComputed,
    !segmentsOk
      ? "the segment table runs past the end of the image (truncated or not an image)"
      : parsed.checksumStored === parsed.checksumComputed
      ? `checksum ${formatHex(parsed.checksumComputed ?? 0)} ok`
      : `segment checksum is ${formatHex(parsed.checksumStored ?? 0)}, expected ${
        formatHex(parsed.checksumComputed ?? 0)
      }`,
  );
  add(
    "ram size",
    parsed.ramLength !== undefined && parsed.ramLength < IROM_FILE_OFFSET - 4,
    parsed.ramLength === undefined
      ? "RAM part unreadable"
      : `RAM part ${parsed.ramLength} bytes (limit ${IROM_FILE_OFFSET - 4})`,
  );
  const total = parsed.total;
  const totalOk = total !== undefined && total >= IROM_FILE_OFFSET && total <= MAX_TOTAL &&
    total + 16 <= image.length;
  add(
    "length word",
    totalOk,
    total === undefined
      ? `the image is ${image.length} bytes, shorter than 0x9000: truncated, or a plain ESP image without the OTA layout`
      : totalOk
      ? `total ${total} at 0x8ffc (irom ${total - IROM_FILE_OFFSET} bytes)`
      : total > MAX_TOTAL
      ? `total ${total} at 0x8ffc is over boot8266's limit ${MAX_TOTAL}`
      : `total ${total} at 0x8ffc does not fit the ${image.length}-byte file (truncated?)`,
  );
  const md5Ok = totalOk && bootCheck(image);
  add(
    "md5",
    md5Ok,
    md5Ok
      ? `MD5 trailer ${toHex(parsed.md5Stored!)} matches (boot8266 will accept it)`
      : !totalOk
      ? "cannot check the MD5 trailer without a valid length word"
      : `MD5 trailer ${toHex(parsed.md5Stored!)} does not match ${
        toHex(parsed.md5Computed!)
      }: boot8266 would refuse to boot it`,
  );
  if (totalOk && image.length !== total + 16) {
    add("trailing bytes", false, `${image.length - total - 16} bytes after the MD5 trailer`);
  }
  let link: InspectReport["link"];
  if (parsed.irom && parsed.irom.length > 0) {
    const estimate = estimateLinkBase(parsed.irom, expectedBase);
    link = { ...estimate, bestBaseHex: formatHex(estimate.bestBase) };
    const enough = estimate.pointerWords >= 16;
    const linkedHere = enough && Math.abs(estimate.bestBase - expectedBase) <= 0x1000 &&
      estimate.shareAtExpected >= 0.5;
    const standard = enough && Math.abs(estimate.bestBase - STANDARD_IROM_BASE) <= 0x1000;
    add(
      "link address",
      linkedHere,
      !enough
        ? `too few irom pointers (${estimate.pointerWords}) to tell where the irom is linked`
        : linkedHere
        ? `irom linked at ${formatHex(expectedBase)} (${
          pct(estimate.shareAtExpected)
        } of ${estimate.pointerWords} pointers in range), as app offset ${
          formatHex(appOffset)
        } needs`
        : standard
        ? `irom linked at ${formatHex(STANDARD_IROM_BASE)} (${
          pct(estimate.shareAtStandard)
        } of pointers fit there, ${pct(estimate.shareAtExpected)} at ${
          formatHex(expectedBase)
        }): a standard (non-OTA) build. It would pass boot8266's MD5 check and then crash in a boot loop. Build it with 'deno task build-ota'`
        : `irom looks linked at ${formatHex(estimate.bestBase)}, not ${
          formatHex(expectedBase)
        }: built for app offset ${
          formatHex(estimate.bestBase - IROM_MAP_BASE - IROM_FILE_OFFSET)
        }? Rebuild for ${formatHex(appOffset)} or pass the right --app-offset`,
    );
  }
  const room = flashSize - appOffset;
  add(
    "size",
    image.length <= room,
    `${image.length} bytes; ${room} bytes of flash above the app offset ${formatHex(appOffset)}`,
  );
  return {
    size: image.length,
    appOffset,
    flashSize,
    safe: checks.every((c) => c.ok),
    checks,
    segments: parsed.segments.map((s) => ({ address: formatHex(s.address), size: s.data.length })),
    entry: parsed.magic === ESP_IMAGE_MAGIC ? formatHex(parsed.entry) : undefined,
    total,
    iromLength: parsed.irom?.length,
    md5: parsed.md5Stored ? toHex(parsed.md5Stored) : undefined,
    expectedIromBase: formatHex(expectedBase),
    link,
    version: findVersion(image),
  };
}

/** The failed checks as one sentence, for error messages. */
export function summarizeProblems(report: InspectReport): string {
  return report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join("; ");
}
