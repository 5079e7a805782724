/**
 * `deno task status`'s table: one line per board, a heading naming dist's build, and a
 * summary, for a person to read at a glance. Every cell that quotes a board, the config
 * or a manifest is made inert for the terminal (`terminal_text.ts`).
 */
import { type BoardStatus, STATE_LABEL, type StatusReport } from "../deploy/status.ts";
import { terminalSafe } from "./terminal_text.ts";

/** Every cell quotes text from a board, the config or a manifest: each is made inert. */
const CELL_LENGTH = 80;

function buildCell(s: BoardStatus): string {
  if (s.build === undefined) return "-";
  if (s.build === null) return "unknown";
  const id = terminalSafe(s.build.id, CELL_LENGTH);
  return s.build.version ? `${id} (${terminalSafe(s.build.version, CELL_LENGTH)})` : id;
}

function lastCell(s: BoardStatus): string {
  const parts: string[] = [];
  if (s.release) {
    parts.push(
      `release ${terminalSafe(s.release.id, CELL_LENGTH)}, built ${
        terminalSafe(s.release.builtAt, CELL_LENGTH)
      }`,
    );
  }
  if (s.note) parts.push(terminalSafe(s.note));
  return parts.join("; ");
}

/** The table: one line per board, columns padded. Pure. */
export function renderStatusTable(report: StatusReport): string {
  const header = [
    "device",
    "address",
    "state",
    "MicroPython",
    "build",
    "vs dist",
    "release / note",
  ];
  const rows = report.devices.map((s) => [
    terminalSafe(s.name, CELL_LENGTH),
    terminalSafe(`${s.ip}:${s.port}`, CELL_LENGTH),
    STATE_LABEL[s.state],
    s.micropython ? terminalSafe(s.micropython.release, CELL_LENGTH) : "-",
    buildCell(s),
    s.comparison,
    lastCell(s),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** The line above the table: which build "vs dist" compares with. Pure. */
export function renderStatusHeading(
  report: StatusReport,
  manifestPath: string,
  manifestExists = true,
): string {
  const m = report.manifest;
  const path = terminalSafe(manifestPath);
  if (!m && !manifestExists) {
    return `no ${path} (no successful 'deno task build-ota' there): 'vs dist' is unknown`;
  }
  if (!m) {
    return `${path} names no build id: 'vs dist' is unknown (run 'deno task build-ota')`;
  }
  const version = m.version ? ` (${terminalSafe(m.version, CELL_LENGTH)})` : "";
  return `${path}: build ${terminalSafe(m.id, CELL_LENGTH)}${version}, built ${
    terminalSafe(m.builtAt, CELL_LENGTH)
  }`;
}

/** One line under the table: how many boards are in each state and how many need the build. */
export function renderStatusSummary(report: StatusReport): string {
  const count = (f: (s: BoardStatus) => boolean) => report.devices.filter(f).length;
  const total = report.devices.length;
  const silent = count((s) => s.state === "silent");
  const parts = [
    `${count((s) => s.state === "app")} running`,
    `${count((s) => s.state === "ota")} in OTA mode`,
    ...(silent ? [`${silent} without a WebREPL answer`] : []),
    `${count((s) => s.state === "offline")} offline`,
  ];
  const upToDate = count((s) => s.comparison === "up to date");
  const older = count((s) => s.comparison === "older");
  return `${total} board${total === 1 ? "" : "s"}: ${parts.join(", ")}; ` +
    `${upToDate} up to date, ${older} older than dist`;
}
