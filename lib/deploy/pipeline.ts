/**
 * The one deploy pipeline, for one board (`deploy --ip`) and for many (`deploy --fleet`,
 * the dashboard): targets → the preflight once (`pipeline_steps.ts`) → each board under
 * the rollout policy (`pipeline_rollout.ts`: N at a time, canaries, retries, the failure
 * threshold), where a board's step locks it, reads what it runs, decides (push, skip,
 * refuse), triggers, pushes and proves → the report (`fleet.ts`). The whole run is told
 * as events, from `run.started` to `run.ended`. The abort signal, the password source,
 * the progress sink and the log are the caller's: nothing here reaches for a terminal.
 */
import type { DeviceEntry } from "../config/config.ts";
import { errorOf, exitCodeOf, NO_EVENTS } from "./events.ts";
import { type RolloutPolicy, runRollout } from "./pipeline_rollout.ts";
import {
  buildFleetReport,
  DEFAULT_CONCURRENCY,
  type FleetDevice,
  fleetExitCode,
  type FleetProgressSink,
  type FleetReport,
  selectDevices,
} from "./fleet.ts";
import { formatBytes, formatSeconds } from "../_units.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";
import {
  type BoardRun,
  type Preflight,
  preflight,
  type PreflightOptions,
} from "./pipeline_steps.ts";

const QUIET: FleetProgressSink = { start() {}, update() {}, note() {}, finish() {}, close() {} };

/** What the run is about to do, once the preflight passed (the opening line). */
export interface RunPlan {
  targets: FleetDevice[];
  /** The image's size, in bytes. */
  size: number;
  kind: "image" | "canned";
  /** Key path to fingerprint, for each key that loaded (raw images only). */
  fingerprints: Map<string, string>;
  policy: RolloutPolicy;
}

export interface PipelineOptions extends PreflightOptions {
  /** The boards: one (`deploy --ip`) or many. */
  targets: FleetDevice[];
  /** `--concurrency`, `--canary`, `--max-failures`, `--retries` (see `pipeline_rollout.ts`). */
  rollout?: Partial<RolloutPolicy>;
  /** Waits between attempts (tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Ctrl-C: no board starts after it, running ones stop sending. */
  signal?: AbortSignal;
  /**
   * A fleet's run (`deploy --fleet`, the dashboard): the report names the command that
   * retries the failed boards, and the exit code is a fleet's (10, 11). Else the run is
   * one board's (`deploy --ip`): its exit code is its error's.
   */
  fleet?: boolean;
  /** The command line, carried into the report's retry command. */
  argv?: string[];
  /** How the user runs tasks (`deno task` or `yaota`), for the retry command. */
  program?: string;
  /** Each board's progress; default: none shown. */
  progress?: FleetProgressSink;
  /** The preflight passed: what is sent, to whom, how. */
  onPlan?: (plan: RunPlan) => void;
  /** Lines about the run as a whole (rollout decisions, a bug's stack); default: none. */
  log?: (line: string) => void;
}

export interface PipelineRun {
  report: FleetReport;
  /** Each board's engine result or error, by name. */
  boards: Map<string, BoardRun>;
  /** The run's exit code: a fleet's (lib/exit_codes.ts), or a lone board's error's. */
  exitCode: number;
}

/**
 * Runs the pipeline on `options.targets`. A board's failure is its row; only what stops
 * every board (the file, the image, every key) throws, after `phase.ended` says so.
 * Needs `--allow-read` and `--allow-net`, and `--allow-env` with `trigger`.
 * @throws {UnsafeImageError | CannedFileError | FileError | KeyError} Before the first board.
 */
export async function runDeploy(options: PipelineOptions): Promise<PipelineRun> {
  const say = options.log ?? (() => {});
  const events = options.events ?? NO_EVENTS;
  const devices = options.targets;
  const concurrency = Math.min(
    options.rollout?.concurrency ?? DEFAULT_CONCURRENCY,
    Math.max(1, devices.length),
  );
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
  let plan: Preflight;
  try {
    plan = await preflight(devices, options);
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
  options.onPlan?.({
    targets: devices,
    size: plan.size,
    kind: plan.kind,
    fingerprints: plan.fingerprints,
    policy,
  });
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
    const full = buildFleetReport(rows, options.argv, options.program, stopped);
    const { retry: _, ...withoutRetry } = full;
    const report: FleetReport = options.fleet ? full : withoutRetry;
    const lone = options.fleet ? undefined : plan.boards.get(devices[0]?.name ?? "")?.error;
    const exitCode: number = lone === undefined ? fleetExitCode(report) : exitCodeOf(lone);
    events.emit({
      type: "run.ended",
      ok: report.ok,
      exitCode,
      counts: report.counts,
      report,
      ...(lone === undefined ? {} : errorOf(lone)),
    });
    return { report, boards: plan.boards, exitCode };
  } finally {
    progress.close();
  }
}

export interface DeployFleetOptions extends Omit<PipelineOptions, "targets"> {
  /** The config's `devices`. */
  inventory: DeviceEntry[] | undefined;
  /** `--only` values: names or tags. */
  only?: string[];
  /** Deploys at once (default 4). */
  concurrency?: number;
  /** The port of devices that name none (default 8266). */
  defaultPort?: number;
}

/**
 * `deploy --fleet`: the pipeline on the inventory's devices that `--only` names.
 * @throws {UsageError} If `--only` names an unknown device or tag, or the inventory is empty.
 */
export async function deployFleet(options: DeployFleetOptions): Promise<FleetReport> {
  const targets = selectDevices(
    options.inventory,
    options.only,
    options.defaultPort ?? DEFAULT_DEVICE_PORT,
  );
  const say = options.log ?? (() => {});
  const run = await runDeploy({
    onPlan: (plan) => say(describeRun(options.request.file, plan)),
    fleet: true,
    ...options,
    targets,
    rollout: {
      ...options.rollout,
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    },
  });
  return run.report;
}

/** "sending FILE (SIZE, key F) to N devices, C at a time; the policy": the opening line. Pure. */
export function describeRun(file: string, plan: RunPlan): string {
  const keys = plan.kind === "canned"
    ? "canned"
    : [...new Set(plan.fingerprints.values())].map((f) => `key ${f}`).join(", ");
  const n = plan.targets.length;
  return `sending ${file} (${formatBytes(plan.size)}, ${keys}) to ${n} ` +
    `device${n === 1 ? "" : "s"}, ${plan.policy.concurrency} at a time` +
    describePolicy(plan.policy, n);
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
