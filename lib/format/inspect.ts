/**
 * Is this image safe to push to a yaota8266 device at this app offset? First what the
 * file is (lib/file_kind.ts: a bootloader, an ESP32 or MCUboot image, a signed .ota
 * file… are named as such), then every check boot8266 makes, plus the ones it cannot:
 * the irom link address, found from the image's own pointers (lib/link_address.ts,
 * docs/device.md "OTA firmware image"), and the size.
 */
import { analyseBootloader, type BootloaderFacts, type KnownModulus } from "./bootloader_image.ts";
import { type FileKind, identifyFile } from "./file_kind.ts";
import {
  bootCheck,
  DEFAULT_APP_OFFSET,
  findVersion,
  IROM_FILE_OFFSET,
  MAX_TOTAL,
  otaIromBase,
  parseImage,
  STANDARD_IROM_BASE,
} from "./image.ts";
import { findLinkBase, type LinkBaseResult } from "./link_address.ts";
import { findImageBuild } from "./ota_module.ts";
import { formatHex, toHex } from "../_bytes.ts";

export interface InspectOptions {
  appOffset?: number;
  /** Flash size of the device (default 1 MiB). */
  flashSize?: number;
  /** Keys to look for when the file turns out to be a yaota8266 bootloader. */
  keys?: readonly KnownModulus[];
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** The link-address evidence, as `--json` shows it. */
export interface LinkReport {
  /** Aligned irom words in [0x40200000, 0x40300000), and how many distinct values. */
  pointerWords: number;
  distinctPointers: number;
  /** NUL-terminated strings in the irom. */
  strings: number;
  /** The best-scoring base and its count of distinct pointers that land on a string. */
  bestBaseHex: string;
  bestHits: number;
  runnerUpBaseHex: string;
  runnerUpHits: number;
  /** The base, when the evidence names one clearly. */
  linkedAt?: string;
  /** The app offset an OTA build linked there was built for. */
  builtForAppOffset?: string;
  /** Why no base is named. */
  doubt?: string;
}

export interface InspectReport {
  size: number;
  appOffset: number;
  flashSize: number;
  /** True only if every check passed: safe to push to that offset. */
  safe: boolean;
  /**
   * What the file is; `id` "esp8266" for an image the checks below apply to. (Not `kind`:
   * in `--json` output `kind` names the error class.)
   */
  fileKind: FileKind;
  checks: Check[];
  segments: { address: string; size: number }[];
  entry?: string;
  total?: number;
  iromLength?: number;
  md5?: string;
  expectedIromBase: string;
  link?: LinkReport;
  /** What a yaota8266 bootloader given by mistake can do. */
  bootloader?: BootloaderFacts;
  version?: string;
  /** The build id (and label) the image's frozen `ota` module carries (ota_module.ts). */
  build?: { id: string; version?: string };
}

/** The app offset an OTA build linked at `base` was made for; 0 is a standard build. */
export function appOffsetForBase(base: number): number {
  return base - otaIromBase(0);
}

function linkReport(found: LinkBaseResult): LinkReport {
  const builtFor = found.base === undefined ? undefined : appOffsetForBase(found.base);
  return {
    pointerWords: found.pointerWords,
    distinctPointers: found.distinctPointers,
    strings: found.strings,
    bestBaseHex: formatHex(found.best.base),
    bestHits: found.best.hits,
    runnerUpBaseHex: formatHex(found.runnerUp.base),
    runnerUpHits: found.runnerUp.hits,
    linkedAt: found.base === undefined ? undefined : formatHex(found.base),
    builtForAppOffset: builtFor !== undefined && builtFor > 0 ? formatHex(builtFor) : undefined,
    doubt: found.doubt,
  };
}

/** The link-address check: the exact base, no tolerance (one page off crashes too). */
function linkCheck(found: LinkBaseResult, appOffset: number): Check {
  const expected = otaIromBase(appOffset);
  const evidence = `${found.best.hits} distinct irom pointers land on strings there, ` +
    `${found.runnerUp.hits} under the next best base ${formatHex(found.runnerUp.base)}`;
  const check = (ok: boolean, detail: string) => ({ name: "link address", ok, detail });
  if (found.base === undefined) {
    return check(
      false,
      `cannot tell where the irom is linked: ${found.doubt}. Is it a MicroPython build? ` +
        `Push it only if you know it was built for app offset ${formatHex(appOffset)} ` +
        `(irom at ${formatHex(expected)})`,
    );
  }
  if (found.base === expected) {
    return check(
      true,
      `irom linked at ${formatHex(expected)} (${evidence}), as app offset ${
        formatHex(appOffset)
      } needs`,
    );
  }
  if (found.base === STANDARD_IROM_BASE) {
    return check(
      false,
      `a standard (non-OTA) build, linked at ${
        formatHex(STANDARD_IROM_BASE)
      }: it would boot-loop (it passes boot8266's MD5 check, then crashes; ${evidence}). ` +
        `Build the OTA image with 'deno task build-ota'`,
    );
  }
  const builtFor = appOffsetForBase(found.base);
  if (builtFor < 0) {
    return check(
      false,
      `irom linked at ${formatHex(found.base)} (${evidence}), below ${
        formatHex(STANDARD_IROM_BASE)
      }: not built for any app offset. Build the OTA image with 'deno task build-ota'`,
    );
  }
  return check(
    false,
    `irom linked at ${formatHex(found.base)}, not ${formatHex(expected)}: built for app offset ${
      formatHex(builtFor)
    } (${evidence}). It would crash at app offset ${formatHex(appOffset)}. ` +
      `If your bootloader was built with MAIN_APP_OFFSET ${formatHex(builtFor)}, pass ` +
      `--app-offset ${formatHex(builtFor)}; else rebuild for ${
        formatHex(appOffset)
      } with 'deno task build-ota'`,
  );
}

/**
 * Inspects an image; pure.
 * @param image the file's bytes
 * @returns the checks, and `safe` only if every one passed
 * @example
 * ```ts
 * import { inspectImage } from "./inspect.ts";
 * import { makeSampleFirmware } from "../sim/sample_firmware.ts";
 * if (!inspectImage(makeSampleFirmware()).safe) throw new Error();
 * if (inspectImage(new Uint8Array(0)).fileKind.id !== "empty") throw new Error();
 * ```
 */
export function inspectImage(image: Uint8Array, options: InspectOptions = {}): InspectReport {
  const appOffset = options.appOffset ?? DEFAULT_APP_OFFSET;
  const flashSize = options.flashSize ?? 0x100000;
  const expectedBase = otaIromBase(appOffset);
  const kind = identifyFile(image);
  const base = {
    size: image.length,
    appOffset,
    flashSize,
    fileKind: kind,
    segments: [],
    expectedIromBase: formatHex(expectedBase),
  };
  if (kind.id !== "esp8266") {
    // Not an ESP8266 image: the checks below would only describe it wrongly.
    return {
      ...base,
      safe: false,
      checks: [{ name: "file", ok: false, detail: `${kind.name}: ${kind.next}` }],
      bootloader: kind.id === "yaota8266" ? analyseBootloader(image, options.keys) : undefined,
    };
  }
  const parsed = parseImage(image);
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

  add(
    "header",
    parsed.segmentCount > 0 && parsed.segmentCount <= 16,
    `ESP8266 image, ${parsed.segmentCount} RAM segment(s), entry ${formatHex(parsed.entry)}`,
  );
  const segmentsOk = parsed.segments.length === parsed.segmentCount &&
    parsed.ramLength !== undefined;
  add(
    "segments",
    segmentsOk && parsed.checksumStored === parsed.checksumComputed,
    !segmentsOk
      ? `the segment table runs past the end of the ${image.length}-byte file: truncated, or not an image`
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
      : total < IROM_FILE_OFFSET
      ? `total ${total} at 0x8ffc is below 0x9000: not an OTA image (no length word there)`
      : `total ${total} at 0x8ffc does not fit the ${image.length}-byte file: it is truncated ` +
        `(${total + 16 - image.length} bytes missing); copy or build it again`,
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
  let link: LinkReport | undefined;
  if (parsed.irom && parsed.irom.length > 0) {
    const found = findLinkBase(parsed.irom);
    link = linkReport(found);
    checks.push(linkCheck(found, appOffset));
  }
  const build = findImageBuild(image);
  const room = flashSize - appOffset;
  add(
    "size",
    image.length <= room,
    `${image.length} bytes; ${room} bytes of flash above the app offset ${formatHex(appOffset)}`,
  );
  return {
    ...base,
    safe: checks.every((c) => c.ok),
    checks,
    segments: parsed.segments.map((s) => ({ address: formatHex(s.address), size: s.data.length })),
    entry: formatHex(parsed.entry),
    total,
    iromLength: parsed.irom?.length,
    md5: parsed.md5Stored ? toHex(parsed.md5Stored) : undefined,
    link,
    version: findVersion(image),
    ...(build ? { build } : {}),
  };
}

/** The failed checks, one line each ("md5: …"). Pure. */
export function problemLines(report: InspectReport): string[] {
  return report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
}

/** The failed checks as one sentence, for error messages. */
export function summarizeProblems(report: InspectReport): string {
  return problemLines(report).join("; ");
}
