/**
 * A rollout as the page shows it: the events of the run (`port.ts`) folded into one row
 * per board (phase, bytes, rate, ETA, retries, result) and the decisions taken. The page
 * renders it as it comes; the server keeps the last one, in memory and in `dist/`, so the
 * final report survives a page reload and a restart. Pure.
 */
import type { DeviceResult, EventPhase, RolloutEvent, RolloutRequest } from "./port.ts";

/**
 * Where a board is in the rollout: waiting, in one of the run's phases, or ended: "done"
 * (updated), "skipped", "failed" (`failedIn` names the phase) or "not attempted".
 */
export type BoardPhase =
  | "waiting"
  | EventPhase
  | "done"
  | "skipped"
  | "failed"
  | "not attempted";

/** The phase a board ends in, by its result: only an updated board is "done". */
export const END_PHASE: Record<DeviceResult, BoardPhase> = {
  updated: "done",
  skipped: "skipped",
  failed: "failed",
  "not-attempted": "not attempted",
};

const ENDED: readonly BoardPhase[] = Object.values(END_PHASE);

export interface BoardProgress {
  name: string;
  phase: BoardPhase;
  /** Bytes confirmed, of `total` (0 before the push). */
  bytes: number;
  total: number;
  /** Whole per cent of `total` confirmed. */
  percent: number;
  /** Bytes per second. */
  rate: number;
  /** Seconds left; null when not known. */
  eta: number | null;
  retransmits: number;
  /** Retries started so far (attempts − 1). */
  retries: number;
  result?: DeviceResult;
  /** The phase a failed board was in when it failed. */
  failedIn?: BoardPhase;
  reason?: string;
  kind?: string;
  attempts?: number;
  buildBefore?: string;
  buildAfter?: string;
}

export interface RolloutView {
  /** Set by the server: a number per dashboard process and its start. */
  id: string;
  state: "running" | "done";
  startedAt: string;
  endedAt?: string;
  request: RolloutRequest;
  /** The build sent, as the confirmation named it. */
  build: string;
  policy?: { concurrency: number; canary: number; maxFailures: number | null; retries: number };
  boards: BoardProgress[];
  decisions: { decision: string; detail: string; notAttempted: string[] }[];
  ok?: boolean;
  exitCode?: number;
  counts?: Record<DeviceResult, number>;
  /** Why the run stopped before or outside the boards. */
  reason?: string;
  /** The last events, newest last (`EVENT_TAIL` at most). */
  events: RolloutEvent[];
}

/** Events kept in the view for the page's log. */
export const EVENT_TAIL = 40;

function board(name: string): BoardProgress {
  return {
    name,
    phase: "waiting",
    bytes: 0,
    total: 0,
    percent: 0,
    rate: 0,
    eta: null,
    retransmits: 0,
    retries: 0,
  };
}

/** A view before the first event: one waiting row per board the plan names. */
export function startView(
  id: string,
  request: RolloutRequest,
  build: string,
  boards: readonly string[],
  startedAt: string,
): RolloutView {
  return {
    id,
    state: "running",
    startedAt,
    request,
    build,
    boards: boards.map(board),
    decisions: [],
    events: [],
  };
}

function updateBoard(
  view: RolloutView,
  name: string,
  change: (b: BoardProgress) => BoardProgress,
): BoardProgress[] {
  const known = view.boards.some((b) => b.name === name);
  const boards = known ? view.boards : [...view.boards, board(name)];
  return boards.map((b) => b.name === name ? change(b) : b);
}

/**
 * The view after `event`. Unknown event types change nothing but the log (the stream's
 * rule: a reader ignores what it does not know).
 */
export function applyEvent(view: RolloutView, event: RolloutEvent): RolloutView {
  const events = [...view.events, event].slice(-EVENT_TAIL);
  const next: RolloutView = { ...view, events };
  switch (event.type) {
    case "run.started": {
      const names = new Set(view.boards.map((b) => b.name));
      return {
        ...next,
        boards: [...view.boards, ...event.devices.filter((d) => !names.has(d)).map(board)],
        ...(event.policy ? { policy: event.policy } : {}),
      };
    }
    case "phase.started":
      if (event.device === undefined) return next;
      return {
        ...next,
        boards: updateBoard(view, event.device, (b) => ({ ...b, phase: event.phase })),
      };
    case "progress":
      return {
        ...next,
        boards: updateBoard(view, event.device, (b) => ({
          ...b,
          phase: "push",
          bytes: event.bytes,
          total: event.total,
          percent: event.total > 0 ? Math.floor((100 * event.bytes) / event.total) : 0,
          rate: event.rate,
          eta: event.eta,
          retransmits: event.retransmits,
        })),
      };
    case "retry":
      return {
        ...next,
        boards: updateBoard(view, event.device, (b) => ({
          ...b,
          phase: "waiting",
          retries: event.attempt - 1,
          reason: `retry ${event.attempt - 1} of ${event.attempts - 1} in ${
            (event.delayMs / 1000).toFixed(0)
          } s: ${event.reason}`,
          bytes: 0,
          percent: 0,
          rate: 0,
          eta: null,
        })),
      };
    case "device.result":
      return {
        ...next,
        boards: updateBoard(view, event.device, (b) => {
          const { reason: _, kind: __, failedIn: ___, ...rest } = b;
          const failedIn = event.result === "failed" && !ENDED.includes(b.phase) &&
              b.phase !== "waiting"
            ? { failedIn: b.phase }
            : {};
          return {
            ...rest,
            ...failedIn,
            phase: END_PHASE[event.result],
            result: event.result,
            eta: event.result === "updated" ? 0 : null,
            ...(event.reason === undefined ? {} : { reason: event.reason }),
            ...(event.kind === undefined ? {} : { kind: event.kind }),
            ...(event.attempts === undefined ? {} : { attempts: event.attempts }),
            ...(event.buildBefore === undefined ? {} : { buildBefore: event.buildBefore }),
            ...(event.buildAfter === undefined ? {} : { buildAfter: event.buildAfter }),
          };
        }),
      };
    case "rollout.decision":
      return {
        ...next,
        decisions: [...view.decisions, {
          decision: event.decision,
          detail: event.detail,
          notAttempted: event.notAttempted,
        }],
      };
    case "run.ended":
      return {
        ...next,
        state: "done",
        endedAt: event.time,
        ok: event.ok,
        exitCode: event.exitCode,
        ...(event.counts ? { counts: event.counts } : {}),
        ...(event.reason === undefined ? {} : { reason: event.reason }),
      };
    default:
      return next;
  }
}

/**
 * A view read back after the dashboard stopped mid-run: the run is over, and boards that
 * had no result are said to have been cut off.
 */
export function interruptedView(view: RolloutView, now: string): RolloutView {
  if (view.state === "done") return view;
  return {
    ...view,
    state: "done",
    endedAt: now,
    ok: false,
    reason: "the dashboard stopped while this rollout ran: boards without a result were cut off " +
      "(running a rollout again is safe)",
    boards: view.boards.map((b) =>
      b.result === undefined
        ? {
          ...b,
          phase: "not attempted",
          result: "not-attempted",
          reason: "cut off: the dashboard stopped",
        }
        : b
    ),
  };
}

/** How the report names each result (as `deploy --fleet`'s summary does). */
export const RESULT_LABEL: Record<DeviceResult, string> = {
  updated: "updated",
  skipped: "skipped (up to date)",
  failed: "failed",
  "not-attempted": "not attempted",
};

/** "2 updated, 1 skipped (up to date), 1 failed": the line under the report. */
export function summarize(view: RolloutView): string {
  const order = Object.keys(RESULT_LABEL) as DeviceResult[];
  const parts = order
    .map((r) => [r, view.boards.filter((b) => b.result === r).length] as const)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${n} ${RESULT_LABEL[r]}`);
  const running = view.boards.filter((b) => b.result === undefined).length;
  if (running > 0 && view.state === "running") parts.push(`${running} to go`);
  return parts.join(", ") || "no boards";
}
