/** Waiting that a Ctrl-C (or any abort) cuts short. */

/**
 * Resolves after `ms`, or at once when `signal` aborts (never rejects: the caller looks at
 * the signal).
 * @example
 * ```ts
 * import { sleep } from "./_sleep.ts";
 * const stop = new AbortController();
 * stop.abort();
 * await sleep(60_000, stop.signal); // returns at once
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}
