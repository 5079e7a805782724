/**
 * `status --check` and `status --watch`, the pure part: whether every board is as it
 * should be (running its app, read over WebREPL, on dist's build), and what changed
 * between two rounds of asking (a board went offline, came back, changed build), for a
 * cron job or a CI schedule to alert on.
 */
import type { BoardStatus, StatusReport } from "./status.ts";
import { STATE_LABEL } from "./status.ts";

/** One board that fails the check, and why (one sentence). */
export interface CheckProblem {
  device: string;
  problem: string;
}

/** Why a board fails `--check`, or undefined when it passes. Pure. */
export function boardProblem(
  s: BoardStatus,
  manifest: StatusReport["manifest"],
): string | undefined {
  if (s.state !== "app") return STATE_LABEL[s.state];
  if (s.webrepl !== "logged in") return `unreadable (WebREPL: ${s.webrepl})`;
  if (s.comparison === "up to date") return undefined;
  if (!manifest) return "no build to compare with (dist/manifest.json names none)";
  const build = s.build ? s.build.id : "an unknown build";
  return `not on the build ${manifest.id}: runs ${build} (${s.comparison})`;
}

/** Every board that fails the check, in the report's order. Pure. */
export function checkStatus(report: StatusReport): CheckProblem[] {
  const problems: CheckProblem[] = [];
  for (const s of report.devices) {
    const problem = boardProblem(s, report.manifest);
    if (problem) problems.push({ device: s.name, problem });
  }
  return problems;
}

/** The lines `--check` prints: each problem, then the verdict. Pure. */
export function renderCheck(report: StatusReport, problems: CheckProblem[], code: number): string {
  const total = report.devices.length;
  return [
    ...problems.map((p) => `check: ${p.device}: ${p.problem}`),
    problems.length
      ? `check failed: ${problems.length} of ${total} board${total === 1 ? "" : "s"} (exit ${code})`
      : `check passed: ${total === 1 ? "the board runs" : `all ${total} boards run`} dist's build`,
  ].join("\n");
}

/** What a board looks like to `--watch`: the parts whose change is news. */
export interface BoardSnapshot {
  state: BoardStatus["state"];
  build: string | null;
  comparison: BoardStatus["comparison"];
}

/** A change between two rounds. */
export interface StatusChange {
  device: string;
  /** "offline": it went away; "back": it answers again; "build": its build changed; "state": app ↔ OTA mode and the like. */
  change: "offline" | "back" | "build" | "state" | "comparison";
  from: BoardSnapshot;
  to: BoardSnapshot;
  /** One line for a person. */
  text: string;
}

/** The snapshot of a row. Pure. */
export function snapshotOf(s: BoardStatus): BoardSnapshot {
  return { state: s.state, build: s.build ? s.build.id : null, comparison: s.comparison };
}

const gone = (state: BoardStatus["state"]) => state === "offline" || state === "silent";

function describe(snap: BoardSnapshot): string {
  return STATE_LABEL[snap.state] + (snap.build ? `, build ${snap.build}` : "");
}

/**
 * The changes from `before` to `after` (by board name; a board new to the report is not a
 * change). A build that could not be read this round (no login) is not a build change.
 * Pure.
 */
export function statusChanges(before: StatusReport, after: StatusReport): StatusChange[] {
  const earlier = new Map(before.devices.map((s) => [s.name, snapshotOf(s)]));
  const changes: StatusChange[] = [];
  for (const row of after.devices) {
    const from = earlier.get(row.name);
    if (!from) continue;
    const to = snapshotOf(row);
    const change = kindOf(from, to, row);
    if (!change) continue;
    changes.push({
      device: row.name,
      change,
      from,
      to,
      text: `${row.name}: ${describe(from)} → ${describe(to)}` +
        (change === "comparison" ? ` (${from.comparison} → ${to.comparison} vs dist)` : ""),
    });
  }
  return changes;
}

function kindOf(
  from: BoardSnapshot,
  to: BoardSnapshot,
  row: BoardStatus,
): StatusChange["change"] | undefined {
  if (!gone(from.state) && gone(to.state)) return "offline";
  if (gone(from.state) && !gone(to.state)) return "back";
  if (from.state !== to.state) return "state";
  if (from.build !== to.build && row.webrepl === "logged in") return "build";
  if (from.comparison !== to.comparison) return "comparison";
  return undefined;
}
