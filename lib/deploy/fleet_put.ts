/**
 * `put --fleet`: one file to every board of the config's `devices` (or those `--only`
 * names), N at a time, each failure kept to its own row (`runFleet` of `pipeline_rollout.ts`).
 * Passwords follow the fleet's convention: a device's `passwordEnv` names its variable;
 * the others share the one password of `--password`, WEBREPL_PASSWORD or the prompt.
 * The connection is injected, so this runs against virtual devices in tests.
 */
import { OtaError, UsageError } from "../errors.ts";
import type { DeviceOutcome, FleetDevice } from "./fleet.ts";
import { runFleet } from "./pipeline_rollout.ts";
import { checkPassword } from "../webrepl/password.ts";
import type { BoardSession } from "../webrepl/tools.ts";
import { putToBoard } from "../webrepl/tools.ts";
import type { WebReplOptions } from "../webrepl/client.ts";

/** A session that can be closed (a `WebReplClient`). */
export type ClosableSession = BoardSession & AsyncDisposable;

export interface FleetPutRow {
  name: string;
  ip: string;
  port: number;
  ok: boolean;
  /** The path written on the board. */
  remote?: string;
  bytes?: number;
  seconds?: number;
  error?: string;
  kind?: string;
}

export interface FleetPutReport {
  ok: boolean;
  local: string;
  devices: FleetPutRow[];
  /** Names of the boards that did not get the file, in inventory order. */
  failed: string[];
}

/**
 * Each device's password, or the error that keeps it from being used (its row fails,
 * the others go on). `shared` is asked for only if some device has no `passwordEnv`.
 */
export async function fleetPasswords(
  devices: FleetDevice[],
  shared: () => Promise<string>,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<Map<string, string | UsageError>> {
  const out = new Map<string, string | UsageError>();
  const common = devices.some((d) => d.passwordEnv === undefined) ? await shared() : undefined;
  for (const d of devices) {
    if (d.passwordEnv === undefined) {
      out.set(d.name, common!);
      continue;
    }
    const value = env(d.passwordEnv);
    try {
      if (!value) {
        throw new UsageError(
          `no WebREPL password for '${d.name}': set ${d.passwordEnv} (its "passwordEnv")`,
        );
      }
      out.set(d.name, checkPassword(value, d.passwordEnv));
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      out.set(d.name, e);
    }
  }
  return out;
}

export interface FleetPutOptions {
  local: string;
  data: Uint8Array;
  remote?: string;
  passwords: Map<string, string | UsageError>;
  timeoutMs: number;
  concurrency: number;
  connect: (options: WebReplOptions) => Promise<ClosableSession>;
  onFinish?: (row: FleetPutRow) => void;
  /** Milliseconds now (injected for tests of the report; default `Date.now`). */
  now?: () => number;
}

/** Puts the file on every device; rows come back in inventory order. */
export async function putFleet(
  devices: FleetDevice[],
  options: FleetPutOptions,
): Promise<FleetPutReport> {
  const now = options.now ?? Date.now;
  /** The path each board got. */
  const written = new Map<string, string>();
  const rows = await runFleet(devices, async (device): Promise<DeviceOutcome> => {
    const password = options.passwords.get(device.name);
    if (password === undefined) throw new UsageError(`no WebREPL password for '${device.name}'`);
    if (password instanceof OtaError) throw password;
    const started = now();
    await using session = await options.connect({
      host: device.ip,
      port: device.port,
      password,
      timeoutMs: options.timeoutMs,
    });
    written.set(
      device.name,
      await putToBoard(session, options.local, options.data, options.remote),
    );
    return { ok: true, bytes: options.data.length, seconds: (now() - started) / 1000 };
  }, {
    concurrency: options.concurrency,
    onFinish: (device, outcome) => options.onFinish?.(toRow(device, outcome, written)),
  });
  const devicesOut = rows.map((r) => toRow(r, r, written));
  const failed = devicesOut.filter((r) => !r.ok).map((r) => r.name);
  return { ok: failed.length === 0, local: options.local, devices: devicesOut, failed };
}

function toRow(
  device: Pick<FleetDevice, "name" | "ip" | "port">,
  outcome: DeviceOutcome,
  written: Map<string, string>,
): FleetPutRow {
  const remote = written.get(device.name);
  return {
    name: device.name,
    ip: device.ip,
    port: device.port,
    ok: outcome.ok,
    ...(outcome.ok && remote !== undefined ? { remote } : {}),
    ...(outcome.bytes === undefined ? {} : { bytes: outcome.bytes }),
    ...(outcome.seconds === undefined ? {} : { seconds: outcome.seconds }),
    ...(outcome.error === undefined ? {} : { error: outcome.error }),
    ...(outcome.kind === undefined ? {} : { kind: outcome.kind }),
  };
}

/** The report as text: one line per board, then a summary line. Pure. */
export function renderFleetPut(report: FleetPutReport): string {
  const width = Math.max(6, ...report.devices.map((d) => d.name.length));
  const lines = report.devices.map((d) =>
    d.ok
      ? `${d.name.padEnd(width)}  ok      ${d.bytes} bytes → ${d.remote} (${
        d.seconds?.toFixed(1)
      } s)`
      : `${d.name.padEnd(width)}  FAILED  ${d.error}`
  );
  const total = report.devices.length;
  lines.push(
    report.ok
      ? `'${report.local}' is on all ${total} board${total === 1 ? "" : "s"}`
      : `'${report.local}' is on ${total - report.failed.length} of ${total} boards; failed: ${
        report.failed.join(", ")
      }`,
  );
  return lines.join("\n");
}
