/**
 * The last rollout's report, kept in `dist/dashboard/last-rollout.json` so that it
 * survives a restart of the dashboard (the page gets it from memory on a reload).
 */
import { dirname, join } from "node:path";
import type { RolloutView } from "./rollout_view.ts";

/** Where, under the build folder (`dist/`), the report is kept. */
export function reportPath(out: string): string {
  return join(out, "dashboard", "last-rollout.json");
}

/** The report at `path`, or undefined when there is none or it cannot be read. */
export async function readReport(path: string): Promise<RolloutView | undefined> {
  try {
    const value = JSON.parse(await Deno.readTextFile(path));
    const ok = typeof value === "object" && value !== null && Array.isArray(value.boards) &&
      typeof value.startedAt === "string" && (value.state === "running" || value.state === "done");
    return ok ? value as RolloutView : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the report (whole, then renamed over the old one). Needs `--allow-write`. */
export async function writeReport(path: string, view: RolloutView): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(view, null, 2) + "\n");
  await Deno.rename(tmp, path);
}
