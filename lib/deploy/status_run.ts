/**
 * `deno task status` as a run: the boards asked once (`probeFleet`), or round after
 * round with `--watch` (`status_watch.ts`), told as events from `run.started` to
 * `run.ended`, and judged by `--check` (`status_check.ts`). The targets, the abort signal,
 * the progress and the rendering are the caller's.
 */
import type { EventSink } from "./events.ts";
import { NO_EVENTS } from "./events.ts";
import { probeFleet, type StatusOptions, type StatusTarget } from "./status_probe.ts";
import type { StatusReport } from "./status.ts";
import { type CheckProblem, checkStatus, type StatusChange } from "./status_check.ts";
import { watchStatus } from "./status_watch.ts";
import { EXIT } from "../exit_codes.ts";

export interface StatusRunOptions {
  /** The boards' names, for `run.started` (before their passwords and keys are read). */
  names: string[];
  /** The boards with their passwords and signers (may throw: the run ends with it). */
  targets: () => Promise<StatusTarget[]>;
  /** How each round asks (timeouts, concurrency, the builds to compare with). */
  probe: Omit<StatusOptions, "events" | "onBoard">;
  /** `--check`: a board not as it should be makes the exit code 12. */
  check: boolean;
  /** `--watch`: rounds this far apart, until `rounds` or the signal. */
  watch?: {
    intervalMs: number;
    rounds?: number;
    signal?: AbortSignal;
    sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  };
  events?: EventSink;
  /** The first round's progress (later rounds of `--watch` show only changes). */
  progress?: () => RoundProgress;
  /** The first round's report. */
  onReport: (report: StatusReport) => void;
  /** `--watch`: each change after the first round. */
  onChange?: (change: StatusChange) => void;
}

/** Each board's row as it comes, then the end of the round. */
export interface RoundProgress {
  onBoard: NonNullable<StatusOptions["onBoard"]>;
  finish(): void;
}

export interface StatusRun {
  /** The last round's report. */
  report: StatusReport;
  /** `--check`'s problems (none without it). */
  problems: CheckProblem[];
  exitCode: number;
}

/** Asks the boards (once, or every round), says what changed, and ends the events. */
export async function runStatus(options: StatusRunOptions): Promise<StatusRun> {
  const events = options.events ?? NO_EVENTS;
  events.emit({ type: "run.started", command: "status", devices: options.names });
  const targets = await options.targets();
  let quiet = false;
  const ask = async () => {
    const progress = quiet ? undefined : options.progress?.();
    try {
      return await probeFleet(targets, {
        ...options.probe,
        events: quiet ? NO_EVENTS : events,
        ...(progress ? { onBoard: progress.onBoard } : {}),
      });
    } finally {
      progress?.finish();
    }
  };
  let report: StatusReport;
  if (options.watch === undefined) {
    report = await ask();
    options.onReport(report);
  } else {
    report = await watchStatus(ask, {
      ...options.watch,
      onRound: (r, changes, round) => {
        if (round === 1) options.onReport(r);
        quiet = true;
        for (const c of changes) {
          options.onChange?.(c);
          events.emit({ type: "status.change", ...c });
        }
      },
    });
  }
  const problems = options.check ? checkStatus(report) : [];
  const exitCode = problems.length ? EXIT.statusCheck : EXIT.ok;
  events.emit({ type: "run.ended", ok: exitCode === EXIT.ok, exitCode, report });
  return { report, problems, exitCode };
}
