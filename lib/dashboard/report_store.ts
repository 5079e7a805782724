/**
 * The last rollout's report, kept in `dist/dashboard/last-rollout.json` so that it
 * survives a restart of the dashboard (the page gets it from memory on a reload).
 */
import { dirname, join } from "node:path";
import type { BoardProgress, RolloutView } from "./rollout_view.ts";

/** Where, under the build folder (`dist/`), the report is kept. */
export function reportPath(out: string): string {
  return join(out, "dashboard", "last-rollout.json");
}

/** What was found at the report's path. */
export type KeptReport =
  | { kind: "none" }
  | { kind: "report"; view: RolloutView }
  /** Not a report this dashboard can show: `problem` says why; moved to `setAside`. */
  | { kind: "malformed"; problem: string; setAside?: string };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function boardProblem(b: unknown, i: number): string | undefined {
  if (!isObject(b)) return `boards[${i}] is not an object`;
  const row = b as Partial<Record<keyof BoardProgress, unknown>>;
  if (typeof row.name !== "string") return `boards[${i}].name is not a string`;
  if (typeof row.phase !== "string") return `boards[${i}].phase is not a string`;
  for (const key of ["bytes", "total", "percent", "rate", "retransmits", "retries"] as const) {
    if (typeof row[key] !== "number") return `boards[${i}].${key} is not a number`;
  }
  return undefined;
}

/** Why `value` is not a report this dashboard wrote, or undefined when it is one. Pure. */
export function reportProblem(value: unknown): string | undefined {
  if (!isObject(value)) return "it is not a JSON object";
  if (value.state !== "running" && value.state !== "done") {
    return "its state is neither 'running' nor 'done'";
  }
  for (const key of ["id", "startedAt", "build"] as const) {
    if (typeof value[key] !== "string") return `its ${key} is not a string`;
  }
  if (!isObject(value.request)) return "its request is not an object";
  for (const key of ["boards", "decisions", "events"] as const) {
    if (!Array.isArray(value[key])) return `its ${key} is not a list`;
  }
  const boards = value.boards as unknown[];
  for (const [i, b] of boards.entries()) {
    const problem = boardProblem(b, i);
    if (problem) return problem;
  }
  if (!(value.decisions as unknown[]).every(isObject)) return "a decision is not an object";
  if (!(value.events as unknown[]).every(isObject)) return "an event is not an object";
  return undefined;
}

/**
 * The report at `path`. One that cannot be read as a report is moved aside (to
 * `<path>.malformed-<time>`) so that the next rollout's report does not overwrite it, and
 * the dashboard starts without it. Needs `--allow-read` and `--allow-write`.
 */
export async function readReport(path: string, now = new Date()): Promise<KeptReport> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { kind: "none" };
    return { kind: "malformed", problem: e instanceof Error ? e.message : String(e) };
  }
  let problem: string | undefined;
  try {
    const value: unknown = JSON.parse(text);
    problem = reportProblem(value);
    if (problem === undefined) return { kind: "report", view: value as RolloutView };
  } catch (e) {
    problem = `it is not JSON (${e instanceof Error ? e.message : String(e)})`;
  }
  const setAside = `${path}.malformed-${now.toISOString().replaceAll(":", "")}`;
  try {
    await Deno.rename(path, setAside);
    return { kind: "malformed", problem, setAside };
  } catch {
    return { kind: "malformed", problem };
  }
}

/** Writes the report (whole, then renamed over the old one). Needs `--allow-write`. */
export async function writeReport(path: string, view: RolloutView): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(view, null, 2) + "\n");
  await Deno.rename(tmp, path);
}
