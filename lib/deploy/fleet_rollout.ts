/**
 * `deno task deploy --fleet` as a whole: `deployFleet` selects the devices, runs the
 * preflight once (`prepareFleet`, fleet_deploy.ts), rolls the image out (`rollout.ts`),
 * reports progress and events, and returns the report.
 */
import type { DeviceEntry } from "../config/config.ts";
import { NO_EVENTS } from "./events.ts";
import { type RolloutPolicy, runRollout } from "./rollout.ts";
import {
  buildFleetReport,
  DEFAULT_CONCURRENCY,
  fleetExitCode,
  type FleetProgressSink,
  type FleetReport,
  selectDevices,
} from "./fleet.ts";
import { formatBytes, formatSeconds } from "../_units.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";
import { type FleetDeployOptions, type FleetPlan, prepareFleet } from "./fleet_deploy.ts";
const QUIET: FleetProgressSink = { start() {}, update() {}, note() {}, finish() {}, close() {} };

export interface DeployFleetOptions extends FleetDeployOptions {
  /** The config's `devices`. */
  inventory: DeviceEntry[] | undefined;
  /** `--only` values: names or tags. */
  only?: string[];
  /** Deploys at once (default 4). */
  concurrency?: number;
  /** `--canary`, `--max-failures`, `--retries` (see `rollout.ts`). */
  rollout?: Omit<RolloutPolicy, "concurrency">;
  /** Waits between attempts (tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The port of devices that name none (default 8266). */
  defaultPort?: number;
  /** Ctrl-C: no device starts after it, running ones stop sending. */
  signal?: AbortSignal;
  /** The command line, carried into the report's retry command. */
  argv?: string[];
  /** How the user runs tasks (`deno task` or `yaota`), for the retry command. */
  program?: string;
  /** Each device's progress (the task's `FleetProgress`); default: none shown. */
  progress?: FleetProgressSink;
  /** Lines about the run as a whole; default: none shown. */
  log?: (line: string) => void;
}

/**
 * `deno task deploy --fleet`: selects the devices, runs the preflight once, rolls the
 * image out (N at a time, canaries first, retries, the failure threshold: `rollout.ts`),
 * each failure in its own row, and returns the report. With `events`, the whole run as
 * events, from `run.started` to `run.ended`. Needs `--allow-read` and `--allow-net`, and
 * `--allow-env` with `trigger`.
 * @throws {UsageError} If `--only` names an unknown device or tag, or the inventory is empty.
 * @throws {UnsafeImageError | CannedFileError | FileError} If the file cannot be sent at all.
 */
export async function deployFleet(options: DeployFleetOptions): Promise<FleetReport> {
  const say = options.log ?? (() => {});
  const events = options.events ?? NO_EVENTS;
  const devices = selectDevices(
    options.inventory,
    options.only,
    options.defaultPort ?? DEFAULT_DEVICE_PORT,
  );
  const concurrency = Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, devices.length);
  const policy: RolloutPolicy = { ...options.rollout, concurrency };
  const image = options.builds?.image;
  events.emit({
    type: "run.started",
    command: "deploy",
    devices: devices.map((d) => d.name),
    image: { file: options.request.file, ...(image ? { build: image } : {}) },
    policy: {
      concurrency,
      canary: policy.canary ?? 0,
      maxFailures: policy.maxFailures ?? null,
      retries: policy.retries ?? 0,
    },
  });
  events.emit({ type: "phase.started", phase: "preflight" });
  let plan: FleetPlan;
  try {
    plan = await prepareFleet(devices, options);
  } catch (e) {
    events.emit({
      type: "phase.ended",
      phase: "preflight",
      ok: false,
      error: e instanceof Error ? e.message : String(e),
    });
    throw e;
  }
  events.emit({ type: "phase.ended", phase: "preflight", ok: true });
  const keys = plan.kind === "canned"
    ? "canned"
    : [...new Set(plan.fingerprints.values())].map((f) => `key ${f}`).join(", ");
  say(
    `sending ${options.request.file} (${formatBytes(plan.size)}, ${keys}) to ${devices.length} ` +
      `device${devices.length === 1 ? "" : "s"}, ${concurrency} at a time` +
      describePolicy(policy, devices.length),
  );
  const progress = options.progress ?? QUIET;
  progress.begin?.(devices, plan.size);
  try {
    const { rows, stopped } = await runRollout(devices, plan.deployOne, {
      policy,
      signal: options.signal,
      ...(options.sleep ? { sleep: options.sleep } : {}),
      hooks: (d) => ({
        onProgress: (p) => progress.update(d.name, p),
        onStatus: (m) => progress.note(d.name, m),
      }),
      onStart: (d) => progress.start(d),
      onRetry: (d, retry) => {
        progress.note(
          d.name,
          `${retry.outcome.error} — trying again in ${formatSeconds(retry.delayMs / 1000)} ` +
            `(attempt ${retry.attempt} of ${retry.attempts})`,
        );
        events.emit({
          type: "retry",
          device: d.name,
          attempt: retry.attempt,
          attempts: retry.attempts,
          delayMs: retry.delayMs,
          reason: retry.outcome.error ?? "failed",
          ...(retry.outcome.kind ? { kind: retry.outcome.kind } : {}),
        });
      },
      onFinish: (d, row) => {
        progress.finish(d.name, row);
        events.emit({
          type: "device.result",
          device: d.name,
          result: row.result,
          ...(row.skipped ?? row.error ? { reason: row.skipped ?? row.error } : {}),
          ...(row.kind ? { kind: row.kind } : {}),
          ...(row.attempts ? { attempts: row.attempts } : {}),
          ...(row.buildBefore ? { buildBefore: row.buildBefore } : {}),
          ...(row.buildAfter ? { buildAfter: row.buildAfter } : {}),
        });
      },
      onDecision: (decision) => {
        say(`rollout: ${decision.detail}`);
        events.emit({ type: "rollout.decision", ...decision });
      },
      onUnexpected: (d, e) => {
        say(`unexpected error on '${d.name}' (a bug: please report it with the lines below)`);
        say(e instanceof Error ? (e.stack ?? e.message) : String(e));
      },
    });
    const report = buildFleetReport(rows, options.argv, options.program, stopped);
    events.emit({
      type: "run.ended",
      ok: report.ok,
      exitCode: fleetExitCode(report),
      counts: report.counts,
      report,
    });
    return report;
  } finally {
    progress.close();
  }
}

/** ", canary 1, at most 2 failures, 3 retries" for the opening line. Pure. */
function describePolicy(policy: RolloutPolicy, devices: number): string {
  const parts: string[] = [];
  if (policy.canary && policy.canary < devices) {
    parts.push(`${policy.canary} canar${policy.canary === 1 ? "y" : "ies"} first`);
  }
  if (policy.maxFailures !== undefined) {
    parts.push(
      `stopping after ${policy.maxFailures} failure${policy.maxFailures === 1 ? "" : "s"}`,
    );
  }
  if (policy.retries) {
    parts.push(
      `${policy.retries} retr${policy.retries === 1 ? "y" : "ies"} for boards that do not answer`,
    );
  }
  return parts.length ? `; ${parts.join(", ")}` : "";
}
