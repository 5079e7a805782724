/** Sizes and durations as people read them, for messages and progress lines. Pure. */

/**
 * Bytes in B, KiB or MiB.
 * @example
 * ```ts
 * import { formatBytes } from "./_units.ts";
 * if (formatBytes(163840) !== "160.0 KiB") throw new Error();
 * ```
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/**
 * Seconds as `12.5 s` below a minute, `2m05s` above, `--` when unknown (infinite).
 * @example
 * ```ts
 * import { formatSeconds } from "./_units.ts";
 * if (formatSeconds(125) !== "2m05s") throw new Error();
 * ```
 */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "--";
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
}

/**
 * A figure to hundredths, for reports and JSON.
 * @example
 * ```ts
 * import { round } from "./_units.ts";
 * if (round(2.345678) !== 2.35) throw new Error();
 * ```
 */
export function round(x: number): number {
  return Math.round(x * 100) / 100;
}
