/** Finding text in a binary: the runs of printable bytes. Pure. */

/**
 * Each maximal run of bytes for which `printable` holds, as `[start, end)` offsets, in
 * order.
 * @example
 * ```ts
 * import { printableRuns } from "./_printable_runs.ts";
 * const bytes = new TextEncoder().encode("\0ab\0\0cd");
 * const runs = [...printableRuns(bytes, (b) => b >= 0x20 && b < 0x7f)];
 * if (JSON.stringify(runs) !== "[[1,3],[5,7]]") throw new Error();
 * ```
 */
export function* printableRuns(
  bytes: Uint8Array,
  printable: (byte: number) => boolean,
): Generator<[number, number]> {
  let at = 0;
  while (at < bytes.length) {
    if (!printable(bytes[at]!)) {
      at++;
      continue;
    }
    let end = at;
    while (end < bytes.length && printable(bytes[end]!)) end++;
    yield [at, end];
    at = end;
  }
}
