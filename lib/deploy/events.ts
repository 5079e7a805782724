/**
 * The event stream of `--events` (deploy, deploy --fleet, status): one JSON object per
 * line on stdout, for a CI job, a GUI or a dashboard. Every event has `v` (this schema's
 * version), `seq` (1, 2, 3... within a run), `time` (ISO 8601) and `type`; the other
 * fields depend on the type (see `OtaEvent` and the README's schema). A consumer must
 * ignore fields and types it does not know: new ones may come within a version; a
 * change that breaks readers bumps `v`.
 */
import type { SendProgress } from "../transfer/send_firmware.ts";
import { OtaError } from "../errors.ts";
import { exitCodeOf } from "../exit_codes.ts";

/** The schema's version: the `v` of every event. */
export const EVENTS_VERSION = 1;

/** The parts of a run that `phase.started` / `phase.ended` bracket. */
export type EventPhase =
  /** The image, key and passwords, once per run. */
  | "preflight"
  /** WebREPL login, build check, `ota.start()` (deploy --trigger). */
  | "trigger"
  /** The UDP transfer and the boot check. */
  | "push"
  /** Waiting for the app and reading the build it runs (deploy --trigger). */
  | "verify"
  /** Asking a board over WebREPL and UDP (status). */
  | "probe";

/** What became of a board in a deploy. */
export type DeviceResult = "updated" | "skipped" | "failed" | "not-attempted";

/** A build as events name it. */
export interface EventBuild {
  id: string;
  version?: string;
  builtAt?: string;
}

export type OtaEvent =
  | {
    type: "run.started";
    command: "deploy" | "status";
    /** The boards of this run, in order. */
    devices: string[];
    /** deploy: what is sent. */
    image?: { file: string; size?: number; build?: EventBuild };
    /** deploy --fleet: the rollout policy. */
    policy?: { concurrency: number; canary: number; maxFailures: number | null; retries: number };
  }
  | { type: "phase.started"; phase: EventPhase; device?: string }
  | { type: "phase.ended"; phase: EventPhase; device?: string; ok: boolean; error?: string }
  | {
    type: "progress";
    device: string;
    /** Bytes the board confirmed, of `total`. */
    bytes: number;
    total: number;
    /** Bytes per second since the transfer started. */
    rate: number;
    /** Seconds left at that rate; null before there is a rate. */
    eta: number | null;
    retransmits: number;
    block: number;
  }
  | {
    type: "retry";
    device: string;
    /** The attempt about to start (2 for the first retry). */
    attempt: number;
    /** Attempts allowed in all (1 + --retries). */
    attempts: number;
    delayMs: number;
    /** Why the last attempt failed, and its error class. */
    reason: string;
    kind?: string;
  }
  | {
    type: "device.result";
    device: string;
    result: DeviceResult;
    /** For skipped / failed / not-attempted: why. */
    reason?: string;
    kind?: string;
    attempts?: number;
    buildBefore?: string;
    buildAfter?: string;
  }
  | {
    type: "rollout.decision";
    decision: "canary-passed" | "canary-failed" | "max-failures" | "interrupted";
    detail: string;
    /** Boards that will not be started. */
    notAttempted: string[];
  }
  | { type: "device.status"; device: string; status: Record<string, unknown> }
  | {
    /** status --watch: a board changed since the round before (`status_check.ts`). */
    type: "status.change";
    device: string;
    change: "offline" | "back" | "build" | "state" | "comparison";
    from: { state: string; build: string | null; comparison: string };
    to: { state: string; build: string | null; comparison: string };
    text: string;
  }
  | {
    type: "run.ended";
    ok: boolean;
    exitCode: number;
    /** deploy --fleet: how many boards ended each way. */
    counts?: Record<DeviceResult, number>;
    /** The same object `--json` prints. */
    report?: unknown;
    /** When the run stopped on an error before or outside the boards: its message and class. */
    reason?: string;
    kind?: string;
  };

/** An event as written: the common fields first. */
export type StampedEvent = OtaEvent & { v: number; seq: number; time: string };

/** Where events go. */
export interface EventSink {
  emit(event: OtaEvent): void;
}

/** A sink that drops everything (no `--events`). */
export const NO_EVENTS: EventSink = { emit() {} };

/** Each event stamped (`v`, `seq` from 1, `time`) and handed to `deliver` (a GUI, the dashboard). */
export function stampedSink(
  deliver: (event: StampedEvent) => void,
  now: () => Date = () => new Date(),
): EventSink {
  let seq = 0;
  return {
    emit(event) {
      deliver({ v: EVENTS_VERSION, seq: ++seq, time: now().toISOString(), ...event });
    },
  };
}

/** One JSON line per event, through `write` (stdout in the tasks). */
export function jsonLinesSink(
  write: (line: string) => void,
  now: () => Date = () => new Date(),
): EventSink {
  return stampedSink((event) => write(JSON.stringify(event)), now);
}

/** The default spacing of `progress` events. */
export const PROGRESS_INTERVAL_MS = 500;

/**
 * Turns a transfer's progress callbacks into `progress` events: the first, then at most
 * one per `intervalMs` (by the transfer's own clock), and the last (all confirmed). Pure
 * apart from the sink.
 */
export function progressEvents(
  sink: EventSink,
  device: string,
  intervalMs = PROGRESS_INTERVAL_MS,
): (p: SendProgress) => void {
  let last = -Infinity;
  let done = false;
  return (p) => {
    const complete = p.confirmed >= p.size;
    if (done || (!complete && p.elapsedMs - last < intervalMs)) return;
    last = p.elapsedMs;
    done = complete;
    const rate = p.elapsedMs > 0 ? p.confirmed / (p.elapsedMs / 1000) : 0;
    sink.emit({
      type: "progress",
      device,
      bytes: p.confirmed,
      total: p.size,
      rate: Math.round(rate),
      eta: rate > 0 ? Number(((p.size - p.confirmed) / rate).toFixed(1)) : null,
      retransmits: p.retransmits,
      block: p.block,
    });
  };
}

/** The exit code a task gives for an error (cli.ts's rule): 2 bad arguments, 130 Ctrl-C, else 1. */

export { exitCodeOf };

/** An error as events carry it: its message and class. */
export function errorOf(error: unknown): { reason: string; kind: string } {
  return error instanceof OtaError
    ? { reason: error.message, kind: error.name }
    : { reason: String(error), kind: "InternalError" };
}

/**
 * Runs `run` with `sink`, and ends the run's events when it throws before a `run.ended`
 * (a file that cannot be sent, a board that cannot be named): `run.ended` with the
 * error's exit code, message and class. The error is thrown on.
 */
export async function endingRun<T>(
  sink: EventSink,
  run: (events: EventSink) => Promise<T>,
): Promise<T> {
  let ended = false;
  const events: EventSink = {
    emit(event) {
      if (event.type === "run.ended") ended = true;
      sink.emit(event);
    },
  };
  try {
    return await run(events);
  } catch (e) {
    if (!ended) {
      events.emit({ type: "run.ended", ok: false, exitCode: exitCodeOf(e), ...errorOf(e) });
    }
    throw e;
  }
}
