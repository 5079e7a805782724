/**
 * Fleets: the pure parts of `deno task deploy --fleet`. Choosing devices from the config's
 * `devices` list (`--only NAME|TAG`), running one deploy per device N at a time with each
 * failure kept to its own row, and the report as a table and as JSON. The deploy itself
 * is injected (`DeployOne`), so all of this runs without sockets; `fleet_deploy.ts`
 * supplies the real one.
 */
import type { DeviceEntry } from "../config/config.ts";
import { ConfigError, InterruptedError, UsageError } from "../errors.ts";
import type { SendProgress } from "../transfer/send_firmware.ts";
import { formatBytes } from "../_units.ts";
import { shellQuote } from "../_shell.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";
import { EXIT, type ExitCode, FLEET_KIND, fleetExitCode as exitCodeOfRows } from "../exit_codes.ts";
import type { DeviceResult } from "./events.ts";
import { type RolloutDecision, runRollout } from "./rollout.ts";

export const DEFAULT_CONCURRENCY = 4;

/** A device from the inventory, its port resolved. */
export interface FleetDevice extends DeviceEntry {
  port: number;
}

/** What one device's deploy came to: a row of the report without the address. */
export interface DeviceOutcome {
  /** Updated, or skipped because it runs the build already. */
  ok: boolean;
  /** Set when nothing was sent because the board runs this build: why. */
  skipped?: string;
  /** A failure that trying again may cure (offline, not answering): see `rollout.ts`. */
  retryable?: boolean;
  /** Attempts made (more than 1 after retries). */
  attempts?: number;
  /** The build the board named before and after (`ota.BUILD`), with --trigger. */
  buildBefore?: string;
  buildAfter?: string;
  bytes?: number;
  seconds?: number;
  /** KiB per second. */
  kibps?: number;
  /** @deprecated The same value as `kibps`, kept in `--json` for 0.1.x only. */
  kbps?: number;
  retransmits?: number;
  block?: number;
  versionBefore?: string;
  versionAfter?: string;
  /** The typed error's message. */
  error?: string;
  /** The typed error's class name (`DeviceUnreachableError`, ...). */
  kind?: string;
  /** Worth knowing even on success, e.g. "link passes only small datagrams: 256-byte blocks". */
  note?: string;
}

/** One row of the report. */
export interface DeviceReport extends DeviceOutcome {
  name: string;
  ip: string;
  port: number;
  /** updated, skipped (up to date), failed, not-attempted. */
  result: DeviceResult;
}

/** `--json` output of `deno task deploy --fleet`. */
export interface FleetReport {
  /** True only if every selected device was updated or runs the build already. */
  ok: boolean;
  devices: DeviceReport[];
  /** Names of the devices that did not succeed (failed or not attempted), in inventory order. */
  failed: string[];
  /** Those of them that were not attempted. */
  notAttempted: string[];
  counts: Record<DeviceResult, number>;
  /** Why the rollout stopped starting boards, if it did (canary, --max-failures, Ctrl-C). */
  stopped?: { decision: string; detail: string };
  /** The command that deploys to the failed devices only (absent when none failed). */
  retry?: string;
  /**
   * Absent on success; else `SomeDevicesFailed`, `AllDevicesFailed` or `InterruptedError`,
   * as the exit code tells (lib/exit_codes.ts).
   */
  kind?: string;
}

/** What the runner hands each deploy: where to report, and when to stop. */
export interface DeployHooks {
  signal?: AbortSignal;
  onProgress?: (p: SendProgress) => void;
  onStatus?: (message: string) => void;
}

export type DeployOne = (device: FleetDevice, hooks: DeployHooks) => Promise<DeviceOutcome>;

/**
 * Where a fleet deploy reports each device's progress; the task supplies one
 * (`FleetProgress`, lib/cli/fleet_progress.ts, draws bars or plain lines).
 */
export interface FleetProgressSink {
  /** Before the first device: which devices, and the image's size in bytes. */
  begin?(devices: FleetDevice[], size: number): void;
  start(device: FleetDevice): void;
  update(name: string, state: SendProgress): void;
  note(name: string, message: string): void;
  finish(name: string, outcome: DeviceOutcome & { result?: DeviceResult }): void;
  close(): void;
}

/**
 * Two inventory entries at one address and port: two names for one board, which two
 * deploys at once would corrupt (each restarts the other's session). Names are compared
 * as written, without case or a trailing dot; a name and the address it resolves to are
 * caught by the per-board lock instead (lib/board_lock.ts).
 * @throws {ConfigError} Naming both devices and the address.
 */
export function checkDistinctAddresses(
  inventory: DeviceEntry[],
  defaultPort = DEFAULT_DEVICE_PORT,
): void {
  const seen = new Map<string, DeviceEntry>();
  for (const d of inventory) {
    const port = d.port ?? defaultPort;
    const key = `${d.ip.toLowerCase().replace(/\.$/, "")}:${port}`;
    const first = seen.get(key);
    if (first) {
      throw new ConfigError(
        `the devices '${first.name}' and '${d.name}' have the same address, ${d.ip}:${port}: ` +
          `one board cannot take two deploys at once. Fix the "ip" (or "port") of one of them ` +
          `in the config's "devices", or remove the duplicate.`,
      );
    }
    seen.set(key, d);
  }
}

/**
 * The devices `--only` names, in inventory order. Each `--only` value is a device name
 * or a tag (commas separate several); none means every device.
 * @throws {UsageError} If the inventory is empty, or a value is neither a name nor a tag
 *   (the message lists the known ones).
 * @throws {ConfigError} If two devices of the inventory share an address and port.
 * @example
 * ```ts
 * import { selectDevices } from "./fleet.ts";
 * const fleet = [{ name: "kitchen", ip: "10.0.0.2", tags: ["sensor"] }, { name: "cellar", ip: "10.0.0.3" }];
 * selectDevices(fleet, ["sensor"]); // [{ name: "kitchen", ip: "10.0.0.2", port: 8266, tags: ["sensor"] }]
 * ```
 */
export function selectDevices(
  inventory: DeviceEntry[] | undefined,
  only: string[] = [],
  defaultPort = DEFAULT_DEVICE_PORT,
): FleetDevice[] {
  const all = inventory ?? [];
  if (all.length === 0) {
    throw new UsageError(
      '--fleet needs a "devices" list in ota.config.json, e.g. ' +
        '{"devices": [{"name": "kitchen", "ip": "192.168.1.20"}]}',
    );
  }
  const wanted = only.flatMap((o) => o.split(",")).map((o) => o.trim()).filter((o) => o !== "");
  const names = all.map((d) => d.name);
  const tags = [...new Set(all.flatMap((d) => d.tags ?? []))];
  const unknown = wanted.filter((w) => !names.includes(w) && !tags.includes(w));
  if (unknown.length > 0) {
    throw new UsageError(
      `--only: no device or tag named ${unknown.map((u) => `'${u}'`).join(", ")}. ` +
        `Devices: ${names.join(", ")}` + (tags.length ? `; tags: ${tags.join(", ")}` : "; no tags"),
    );
  }
  checkDistinctAddresses(all, defaultPort);
  const chosen = wanted.length === 0
    ? all
    : all.filter((d) => wanted.includes(d.name) || (d.tags ?? []).some((t) => wanted.includes(t)));
  return chosen.map((d) => ({ ...d, port: d.port ?? defaultPort }));
}

export interface RunFleetOptions {
  /** Deploys at once (at least 1). */
  concurrency: number;
  /** Aborting it (Ctrl-C) starts no further device; running ones see it in their hooks. */
  signal?: AbortSignal;
  /** Per-device progress and status sinks (a `FleetProgress`). */
  hooks?: (device: FleetDevice) => Omit<DeployHooks, "signal">;
  onStart?: (device: FleetDevice) => void;
  onFinish?: (device: FleetDevice, outcome: DeviceOutcome) => void;
  /** An error that is not an `OtaError` (a bug): its row says so, the stack goes here. */
  onUnexpected?: (device: FleetDevice, error: unknown) => void;
}

/**
 * Runs `deployOne` for every device, at most `concurrency` at a time, in inventory
 * order. A deploy that throws becomes a failed row (`error` = message, `kind` = class
 * name); the others go on. Rows come back in inventory order.
 */
export async function runFleet(
  devices: FleetDevice[],
  deployOne: DeployOne,
  options: RunFleetOptions,
): Promise<DeviceReport[]> {
  const { rows } = await runRollout(devices, deployOne, {
    ...options,
    policy: { concurrency: options.concurrency },
    onStart: options.onStart,
    onFinish: (device, row) => options.onFinish?.(device, row),
  });
  return rows;
}

/**
 * The command that deploys to `failed` only: `deno task deploy --fleet --only a --only b`
 * (or `yaota deploy …`, as `program` says), followed by the rest of `argv` (the FILE and
 * other flags) without its `--fleet` and `--only` flags.
 */
export function retryCommand(failed: string[], argv: string[] = [], program = "deno task"): string {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--fleet" || a.startsWith("--only=")) continue;
    if (a === "--only") {
      i++;
      continue;
    }
    rest.push(a);
  }
  const args = shellQuote([...failed.flatMap((n) => ["--only", n]), ...rest]);
  return `${program} deploy --fleet${args ? ` ${args}` : ""}`;
}

/** The `--json` object: the rows, who failed, and how to retry them. */
export function buildFleetReport(
  rows: DeviceReport[],
  argv: string[] = [],
  program = "deno task",
  stopped?: RolloutDecision,
): FleetReport {
  const failed = rows.filter((r) => !r.ok).map((r) => r.name);
  const counts: Record<DeviceResult, number> = {
    updated: 0,
    skipped: 0,
    failed: 0,
    "not-attempted": 0,
  };
  for (const r of rows) counts[r.result]++;
  const code = exitCodeOfRows(rows);
  const kind = code === EXIT.interrupted
    ? InterruptedError.name
    : code === EXIT.fleetAllFailed
    ? FLEET_KIND.allFailed
    : FLEET_KIND.someFailed;
  return {
    ok: failed.length === 0,
    devices: rows,
    failed,
    notAttempted: rows.filter((r) => r.result === "not-attempted").map((r) => r.name),
    counts,
    ...(stopped ? { stopped: { decision: stopped.decision, detail: stopped.detail } } : {}),
    ...(failed.length ? { retry: retryCommand(failed, argv, program), kind } : {}),
  };
}

/**
 * 0 if every device succeeded, 130 if Ctrl-C stopped the run, 10 if some devices
 * failed, 11 if all did (lib/exit_codes.ts).
 */
export function fleetExitCode(
  report: { devices: readonly { ok: boolean; kind?: string; result?: string }[] },
): ExitCode {
  return exitCodeOfRows(report.devices);
}

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
