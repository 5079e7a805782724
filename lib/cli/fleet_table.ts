/**
 * A fleet deploy's report as text: one row per board (result, bytes, seconds, KB/s,
 * retransmissions, versions and builds, the error or note) and the lines under it.
 */
import { InterruptedError } from "../errors.ts";
import { formatBytes } from "../_units.ts";
import type { DeviceResult } from "../deploy/events.ts";
import type { DeviceReport, FleetReport } from "../deploy/fleet.ts";

/** Splits `text` into lines of at most `width` characters, at spaces where it can. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (word === "") continue;
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = "";
    }
    line = line === "" ? word : `${line} ${word}`;
    while (line.length > width) {
      lines.push(line.slice(0, width));
      line = line.slice(width);
    }
  }
  lines.push(line);
  return lines;
}

/** The result column. */
const RESULT_LABEL: Record<DeviceResult, string> = {
  updated: "updated",
  skipped: "skipped",
  failed: "FAILED",
  "not-attempted": "not attempted",
};

export interface TableOptions {
  /** Show the version before and after (with `--trigger`). */
  trigger?: boolean;
  /** Width of the last column; longer messages continue on the next lines. */
  messageWidth?: number;
}

/** Joins messages as sentences: ". " between them, unless one already ends its own. Pure. */
function sentences(parts: (string | undefined)[]): string {
  return parts.filter((m): m is string => m !== undefined && m !== "").reduce(
    (text, m) => text === "" ? m : /[.?!:]$/.test(text) ? `${text} ${m}` : `${text}. ${m}`,
    "",
  );
}

/**
 * The report as a text table: device, result, bytes, seconds, KiB/s, retransmissions,
 * version before → after (with `trigger`), and the error or note, wrapped to
 * `messageWidth`. Pure.
 */
export function renderFleetTable(rows: DeviceReport[], options: TableOptions = {}): string {
  const dash = "-";
  const header = ["device", "result", "bytes", "seconds", "KiB/s", "retx"];
  const builds = rows.some((r) => r.buildBefore !== undefined || r.buildAfter !== undefined);
  if (options.trigger) header.push("version before → after");
  if (builds) header.push("build before → after");
  header.push("error / note");
  const body = rows.map((r) => {
    const cells = [
      r.name,
      r.kind === InterruptedError.name ? "stopped" : RESULT_LABEL[r.result],
      r.bytes === undefined ? dash : formatBytes(r.bytes),
      r.seconds === undefined ? dash : r.seconds.toFixed(1),
      r.kibps === undefined ? dash : r.kibps.toFixed(1),
      r.retransmits === undefined ? dash : String(r.retransmits),
    ];
    if (options.trigger) cells.push(`${r.versionBefore ?? "?"} → ${r.versionAfter ?? "?"}`);
    if (builds) {
      cells.push(
        r.result === "skipped"
          ? `${r.buildBefore ?? "?"} (as is)`
          : `${r.buildBefore ?? "?"} → ${r.buildAfter ?? "?"}`,
      );
    }
    const attempts = r.attempts !== undefined && r.attempts > 1
      ? ` (after ${r.attempts} attempts)`
      : "";
    const message = sentences([r.skipped, r.error, r.note]) + attempts;
    return { cells, message };
  });
  const widths = header.slice(0, -1).map((h, i) =>
    Math.max(h.length, ...body.map((b) => b.cells[i]!.length))
  );
  const numeric = new Set([2, 3, 4, 5]);
  const line = (cells: string[], message: string) =>
    [
      ...cells.map((c, i) => numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)),
      message,
    ]
      .join("  ").trimEnd();
  const indent = widths.reduce((sum, w) => sum + w + 2, 0);
  const out = [line(header.slice(0, -1), header.at(-1)!)];
  for (const { cells, message } of body) {
    const [first = "", ...more] = wrap(message, options.messageWidth ?? 72);
    out.push(line(cells, first));
    for (const m of more) out.push(" ".repeat(indent) + m);
  }
  return out.join("\n");
}

/** The lines under the table: the counts, why the rollout stopped, what to run for the rest. */
export function renderFleetSummary(report: FleetReport): string {
  const total = report.devices.length;
  const c = report.counts;
  if (report.ok && c.skipped === 0) return `all ${total} device${total === 1 ? "" : "s"} updated`;
  const parts = [`${c.updated} updated`, `${c.skipped} skipped (up to date)`];
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c["not-attempted"]) parts.push(`${c["not-attempted"]} not attempted`);
  const lines = [`${parts.join(", ")} of ${total} device${total === 1 ? "" : "s"}`];
  if (report.stopped) lines.push(`rollout stopped: ${report.stopped.detail}`);
  if (report.retry) {
    const what = c.failed && c["not-attempted"]
      ? "retry the failed and resume the rest"
      : c.failed
      ? "retry them"
      : "resume";
    lines.push(`${what} with: ${report.retry}`);
  }
  return lines.join("\n");
}
