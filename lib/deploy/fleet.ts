/**
 * Fleets, the pure parts: choosing devices from the config's `devices` list
 * (`--only NAME|TAG`), and the report of a deploy (one row per board, who failed, the
 * command that retries them) as `--json` prints it. The run itself is `pipeline.ts`;
 * the rollout policy `pipeline_rollout.ts`; the table `lib/cli/fleet_table.ts`.
 */
import type { DeviceEntry } from "../config/config.ts";
import { ConfigError, InterruptedError, UsageError } from "../errors.ts";
import type { SendProgress } from "../transfer/send_firmware.ts";
import { shellQuote } from "../_shell.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";
import { EXIT, type ExitCode, FLEET_KIND, fleetExitCode as exitCodeOfRows } from "../exit_codes.ts";
import type { DeviceResult } from "./events.ts";

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
  /** A failure that trying again may cure (offline, not answering): see `pipeline_rollout.ts`. */
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

/** Why a rollout stopped starting boards (or that the canaries passed): `pipeline_rollout.ts`. */
export interface RolloutDecision {
  decision: "canary-passed" | "canary-failed" | "max-failures" | "interrupted";
  detail: string;
  /** Boards not started because of it, in inventory order. */
  notAttempted: string[];
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
