/**
 * `status --watch N`: asks the boards again every N seconds and reports only what changed
 * (`status_check.ts`). The asking and the waiting are handed in, so a test runs rounds
 * without a clock.
 */
import { sleep as abortableSleep } from "../_sleep.ts";
import type { StatusReport } from "./status.ts";
import { type StatusChange, statusChanges } from "./status_check.ts";

export interface WatchOptions {
  /** Seconds between the start of one round and the next, in ms. */
  intervalMs: number;
  /** Stop after this many rounds (default: until `signal` aborts). */
  rounds?: number;
  /** Ctrl-C: no new round starts. */
  signal?: AbortSignal;
  /** Each round's report and its changes from the round before (none for the first). */
  onRound: (report: StatusReport, changes: StatusChange[], round: number) => void;
  /** Waits `ms` or until `signal` aborts (default: a timer). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Milliseconds, for spacing rounds (default `Date.now`). */
  now?: () => number;
}

/** Runs rounds until `rounds` or the signal; returns the last report. */
export async function watchStatus(
  ask: () => Promise<StatusReport>,
  options: WatchOptions,
): Promise<StatusReport> {
  const wait = options.sleep ?? abortableSleep;
  const now = options.now ?? Date.now;
  let started = now();
  let last = await ask();
  options.onRound(last, [], 1);
  for (let round = 2; options.rounds === undefined || round <= options.rounds; round++) {
    await wait(Math.max(0, started + options.intervalMs - now()), options.signal);
    if (options.signal?.aborted) break;
    started = now();
    const next = await ask();
    options.onRound(next, statusChanges(last, next), round);
    last = next;
  }
  return last;
}
