/**
 * `deno task status`, the pure part: what is known of each board (running its app and
 * answering WebREPL, in OTA mode, or neither; its MicroPython; the build it runs and how
 * that compares with `dist/manifest.json`; the kept release it is), as a table a person
 * reads at a glance and as the `--json` object. `status_probe.ts` asks the boards.
 */
import type { BuildStamp } from "../build/build_id.ts";
import type { BuildComparison } from "./build_compare.ts";

/** How the board answered. */
export type BoardState =
  /** Its WebREPL port accepts connections: it runs its app. */
  | "app"
  /** It answered the OTA-mode question (docs/device.md, "Asking whether a device is in OTA mode"). */
  | "ota"
  /** Its port accepts TCP but no WebREPL handshake and prompt came: nothing could be read. */
  | "silent"
  /** Neither: offline, busy with someone else's OTA session, or built for another key. */
  | "offline";

/** What became of the WebREPL login. */
export type WebReplAccess =
  | "logged in"
  | "no password"
  | "wrong password"
  | "refused"
  | "no answer"
  /** TCP accepted, but no WebSocket handshake and prompt within the timeout. */
  | "no handshake"
  | "failed";

export interface BoardStatus {
  name: string;
  ip: string;
  port: number;
  state: BoardState;
  webrepl: WebReplAccess;
  /** Whether it answered the OTA-mode question; null when not asked (no usable key). */
  otaMode: boolean | null;
  /** `os.uname()`: release ("1.19.1") and version ("v1.19.1 on 2022-06-18"). */
  micropython?: { release: string; version: string };
  /** The build its `ota` module names; null when it names none (firmware from before build ids). */
  build?: { id: string; version?: string } | null;
  /** Its build against dist/manifest.json's. */
  comparison: BuildComparison;
  /** `esp.flash_user_start()`: where its filesystem is (docs/device.md, "The board's filesystem"). */
  flashUserStart?: string;
  /** The kept release it runs (dist/releases/<id>). */
  release?: BuildStamp;
  /** What went wrong, or what to do. Never a password. */
  note?: string;
}

/** `--json` of `deno task status`. */
export interface StatusReport {
  /** dist/manifest.json's build, or null. */
  manifest: BuildStamp | null;
  devices: BoardStatus[];
}

/**
 * Which board state the answers make: `webrepl` is what its WebREPL port did ("open":
 * the handshake and prompt came; "silent": TCP accepted, nothing more). Pure.
 */
export function boardState(
  webrepl: "open" | "silent" | "closed",
  otaMode: boolean | null,
): BoardState {
  if (webrepl === "open") return "app";
  if (otaMode) return "ota";
  return webrepl === "silent" ? "silent" : "offline";
}

export const STATE_LABEL: Record<BoardState, string> = {
  app: "app",
  ota: "OTA mode",
  silent: "no WebREPL answer",
  offline: "offline",
};

function buildCell(s: BoardStatus): string {
  if (s.build === undefined) return "-";
  if (s.build === null) return "unknown";
  return s.build.version ? `${s.build.id} (${s.build.version})` : s.build.id;
}

function lastCell(s: BoardStatus): string {
  const parts: string[] = [];
  if (s.release) parts.push(`release ${s.release.id}, built ${s.release.builtAt}`);
  if (s.note) parts.push(s.note);
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
    s.name,
    `${s.ip}:${s.port}`,
    STATE_LABEL[s.state],
    s.micropython?.release ?? "-",
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
  if (!m && !manifestExists) {
    return `no ${manifestPath} (no successful 'deno task build-ota' there): 'vs dist' is unknown`;
  }
  if (!m) {
    return `${manifestPath} names no build id: 'vs dist' is unknown (run 'deno task build-ota')`;
  }
  return `${manifestPath}: build ${m.id}${m.version ? ` (${m.version})` : ""}, built ${m.builtAt}`;
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
