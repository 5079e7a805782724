/**
 * Where is an irom linked? The address is not stored in the image (docs/device.md,
 * "OTA firmware image"); it shows in the pointers the code holds. Most of MicroPython's
 * irom pointers are string literals, so the true base is the one under which the most
 * distinct pointer values land on the first byte of a NUL-terminated printable string.
 * A base off by even one 4 KiB page lands them in the middle of strings or in code.
 *
 * Measured on real builds: a v1.11 OTA build linked at 0x40245000 scores 787 there and
 * 88 at the runner-up (0x40246000); a v1.12 standard build scores 504 at 0x40209000 and
 * 87 at 0x4020a000. Counting
 * distinct values matters: a popular function address (one literal per call site)
 * that happens to hit a string under a wrong base would otherwise count hundreds of
 * times. A window count ("pointers inside [base, base + irom length)") cannot tell
 * neighbouring bases apart, because many pointers point past the irom's end.
 */
import { readU32 } from "../_bytes.ts";
import { printableRuns } from "./_printable_runs.ts";

/** The irom mapping window of the ESP8266: pointers into flash-mapped code lie here. */
export const IROM_WINDOW_LOW = 0x40200000;
export const IROM_WINDOW_HIGH = 0x40300000;
export const LINK_STEP = 0x1000;
/** Fewest string hits that can name a base: fewer is too little evidence. */
export const MIN_STRING_HITS = 24;
/** The best base must score at least this many times the runner-up. */
export const MIN_MARGIN = 2;
/** Shortest string counted; single characters between NULs are common in code too. */
const MIN_STRING_LENGTH = 2;

export interface BaseScore {
  base: number;
  /** Distinct pointer values that land on a string's first byte under this base. */
  hits: number;
}

export interface LinkBaseResult {
  /** Aligned 32-bit words in the irom that lie in the irom window. */
  pointerWords: number;
  /** Distinct values among them. */
  distinctPointers: number;
  /** NUL-terminated printable strings found in the irom. */
  strings: number;
  best: BaseScore;
  runnerUp: BaseScore;
  /** The best base, if the evidence is strong enough to name it; else undefined. */
  base?: number;
  /** Why no base is named, when `base` is undefined. */
  doubt?: string;
}

function isPrintable(b: number): boolean {
  return (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d;
}

/**
 * Marks the offsets where a string starts: the byte before is NUL (or it is the first
 * byte), then printable bytes, then a NUL.
 */
export function stringStarts(bytes: Uint8Array): Uint8Array {
  const starts = new Uint8Array(bytes.length);
  for (const [at, end] of printableRuns(bytes, isPrintable)) {
    const afterNul = at === 0 || bytes[at - 1] === 0;
    if (afterNul && bytes[end] === 0 && end - at >= MIN_STRING_LENGTH) starts[at] = 1;
  }
  return starts;
}

/**
 * Scores every 4 KiB-aligned base in the irom window and names the best one if it wins
 * clearly (at least `MIN_STRING_HITS`, and `MIN_MARGIN` times the runner-up). Pure.
 * @param irom the irom part of an image (from file offset 0x9000 up to `total`)
 * @example
 * ```ts
 * import { findLinkBase } from "./link_address.ts";
 * const result = findLinkBase(new Uint8Array(4096));
 * if (result.base !== undefined) throw new Error("no strings, no base");
 * ```
 */
export function findLinkBase(irom: Uint8Array): LinkBaseResult {
  const values = new Set<number>();
  let pointerWords = 0;
  for (let at = 0; at + 4 <= irom.length; at += 4) {
    const word = readU32(irom, at);
    if (word >= IROM_WINDOW_LOW && word < IROM_WINDOW_HIGH) {
      pointerWords++;
      values.add(word);
    }
  }
  const starts = stringStarts(irom);
  const scores: BaseScore[] = [];
  for (let base = IROM_WINDOW_LOW; base < IROM_WINDOW_HIGH; base += LINK_STEP) {
    let hits = 0;
    for (const value of values) {
      const offset = value - base;
      if (offset >= 0 && offset < irom.length && starts[offset] === 1) hits++;
    }
    scores.push({ base, hits });
  }
  // Stable sort: on a tie the lower base comes first, so the result never depends on order.
  scores.sort((a, b) => b.hits - a.hits);
  const best = scores[0]!;
  const runnerUp = scores[1]!;
  const result: LinkBaseResult = {
    pointerWords,
    distinctPointers: values.size,
    strings: starts.reduce((n, s) => n + s, 0),
    best,
    runnerUp,
  };
  if (best.hits < MIN_STRING_HITS) {
    result.doubt = `only ${best.hits} pointer(s) land on a string under any base ` +
      `(${MIN_STRING_HITS} needed): too little to tell where the irom is linked`;
  } else if (best.hits < MIN_MARGIN * runnerUp.hits) {
    result.doubt = `no clear winner: ${best.hits} string pointers fit 0x${
      best.base.toString(16)
    }, ${runnerUp.hits} fit 0x${runnerUp.base.toString(16)}`;
  } else {
    result.base = best.base;
  }
  return result;
}
