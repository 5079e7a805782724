/**
 * The fleet as the dashboard last saw it, and the checks that keep it true: never two at
 * once (one WebREPL client per board), and a check asked for while another runs is made
 * after it, so what it answers was seen after it was asked for (a check asked for when a
 * rollout ends never answers with what the boards ran before). Boards a rollout is
 * updating are left alone meanwhile, and a rollout waits (`idle`) for the check under way
 * that asks its boards: that check holds each board's one WebREPL session.
 */
import type { BoardStatus, FleetPort } from "./port.ts";

export interface FleetChecks {
  /** Each board's last answer, or its inventory row while it has none ("checking"). */
  boards(): BoardStatus[];
  /** When the whole fleet was last asked (ISO 8601); undefined before the first answer. */
  checkedAt(): string | undefined;
  /**
   * Asks `names` (default: every board) again. Resolves once a check that started after
   * this call is back.
   */
  check(names?: readonly string[]): Promise<void>;
  /** Forgets what `name` answered (it just changed): its row says "checking" until asked. */
  forget(name: string, note: string): void;
  /**
   * Makes way for a rollout of `names`: waits until no check under way asks any of them (a
   * check started meanwhile skips the boards `busy()` names), at most `withinMs` or until
   * `signal` aborts; their rows say so. Resolves with the boards a check still asks then.
   */
  makeWay(names: readonly string[], withinMs: number, signal: AbortSignal): Promise<string[]>;
  /** Waits for the checks under way. */
  settled(): Promise<void>;
}

/** The row of a board whose rollout waits for the check under way. */
export const WAITING = "its rollout waits for the check under way (one WebREPL client at a time)";

/** The row of a board whose check outlasted the rollout's wait. */
export function gaveUp(withinMs: number): string {
  return `a check under way did not end within ${withinMs / 1000} s: the rollout went on ` +
    "(its WebREPL login may fail while that check holds the board)";
}

interface Queued {
  /** null: every board. */
  names: Set<string> | null;
  done: PromiseWithResolvers<void>;
}

/**
 * The checks over `port`. `busy()` names the boards being updated now; `onChange` gets the
 * rows after each change.
 */
export function fleetChecks(
  port: FleetPort,
  busy: () => readonly string[],
  onChange: (boards: BoardStatus[], checkedAt: string | undefined) => void,
  now: () => Date,
): FleetChecks {
  const inventory = port.boards();
  let rows: BoardStatus[] = inventory;
  let checkedAt: string | undefined;
  let running: Promise<void> | undefined;
  /** The boards the check under way asks. */
  let asking = new Set<string>();
  let queued: Queued | undefined;
  /** Bumped when a board is forgotten: an answer asked for before that is out of date. */
  const forgotten = new Map<string, number>();

  async function run(names: Set<string> | null): Promise<void> {
    const skip = busy();
    const asked = rows.map((b) => b.name)
      .filter((n) => (names === null || names.has(n)) && !skip.includes(n));
    const before = new Map(asked.map((n) => [n, forgotten.get(n) ?? 0]));
    asking = new Set(asked);
    const answers = (asked.length ? await port.status(asked) : [])
      .filter((a) => (forgotten.get(a.name) ?? 0) === before.get(a.name));
    rows = rows.map((old) =>
      answers.find((a) => a.name === old.name) ??
        (skip.includes(old.name) && (names === null || names.has(old.name))
          ? { ...old, note: "being updated now" }
          : old)
    );
    if (names === null) checkedAt = now().toISOString();
    onChange(rows, checkedAt);
  }

  function forget(name: string, note: string): void {
    const base = inventory.find((b) => b.name === name);
    if (!base) return;
    forgotten.set(name, (forgotten.get(name) ?? 0) + 1);
    rows = rows.map((b) => b.name === name ? { ...base, note } : b);
    onChange(rows, checkedAt);
  }

  function start(names: Set<string> | null): Promise<void> {
    running = run(names).finally(() => {
      running = undefined;
      asking = new Set();
      const next = queued;
      queued = undefined;
      if (next) start(next.names).then(next.done.resolve, next.done.reject);
    });
    return running;
  }

  return {
    boards: () => rows,
    checkedAt: () => checkedAt,
    check(names) {
      const wanted = names === undefined ? null : new Set(names);
      if (!running) return start(wanted);
      if (!queued) {
        queued = { names: wanted, done: Promise.withResolvers<void>() };
      } else if (wanted === null || queued.names === null) {
        queued.names = null;
      } else {
        for (const n of wanted) queued.names.add(n);
      }
      return queued.done.promise;
    },
    forget,
    async makeWay(names, withinMs, signal) {
      const held = names.filter((n) => asking.has(n));
      for (const n of held) forget(n, WAITING);
      const over = Promise.withResolvers<void>();
      let ended = signal.aborted;
      const end = () => {
        ended = true;
        over.resolve();
      };
      const timer = setTimeout(end, withinMs);
      signal.addEventListener("abort", end, { once: true });
      try {
        while (running && !ended && held.some((n) => asking.has(n))) {
          await Promise.race([running.catch(() => {}), over.promise]);
        }
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", end);
      }
      if (signal.aborted) return [];
      const still = held.filter((n) => asking.has(n));
      for (const n of still) forget(n, gaveUp(withinMs));
      return still;
    },
    async settled() {
      while (running) await running.catch(() => {});
    },
  };
}
