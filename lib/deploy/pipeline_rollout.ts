/**
 * Rolling a build out to a fleet the way fleet operators do (phased rollouts, an error
 * threshold): `canary` boards first and alone, the rest only if every canary ended up
 * running the build; no new board once `maxFailures` have failed; boards that were
 * offline or did not answer tried again after a backoff. Every board ends in one of
 * four results: updated, skipped (it runs the build already), failed (with the reason),
 * not attempted (with the reason). The deploy is injected (`DeployOne`), and so is the
 * wait, so all of this runs without sockets or real time.
 */
import { sleep as abortableSleep } from "../_sleep.ts";
import { DeviceUnreachableError, InterruptedError, OtaError, WebReplError } from "../errors.ts";
import type { DeviceOutcome, DeviceReport, FleetDevice, RolloutDecision } from "./fleet.ts";
import type { SendProgress } from "../transfer/send_firmware.ts";
import type { DeviceResult } from "./events.ts";

export interface RolloutPolicy {
  /** Boards updated at once (at least 1). */
  concurrency: number;
  /** The first N selected boards go first, alone (0: no canary). */
  canary?: number;
  /** Start no new board once this many have failed (undefined: no limit). */
  maxFailures?: number;
  /** Further attempts for a board that was offline or stopped answering (default 0). */
  retries?: number;
  /** The wait before the first retry; it doubles for each next one (default 2 s). */
  retryDelayMs?: number;
}

export const DEFAULT_RETRY_DELAY_MS = 2000;
/** The longest wait between two attempts. */
export const MAX_RETRY_DELAY_MS = 30000;

export type { RolloutDecision };

/** What the runner hands each deploy: where to report, and when to stop. */
export interface DeployHooks {
  signal?: AbortSignal;
  onProgress?: (p: SendProgress) => void;
  onStatus?: (message: string) => void;
}

export type DeployOne = (device: FleetDevice, hooks: DeployHooks) => Promise<DeviceOutcome>;

export interface RetryInfo {
  /** The attempt about to start (2 for the first retry). */
  attempt: number;
  /** Attempts allowed in all. */
  attempts: number;
  delayMs: number;
  /** The attempt that failed. */
  outcome: DeviceOutcome;
}

export interface RolloutOptions {
  policy: RolloutPolicy;
  /**
   * Aborting it (Ctrl-C) starts no further board or attempt; running ones see it in their
   * hooks. A string reason (`abort("stopped from the page")`) is the decision's detail.
   */
  signal?: AbortSignal;
  /** Per-board progress and status sinks. */
  hooks?: (device: FleetDevice) => Omit<DeployHooks, "signal">;
  onStart?: (device: FleetDevice) => void;
  onRetry?: (device: FleetDevice, retry: RetryInfo) => void;
  onFinish?: (device: FleetDevice, row: DeviceReport) => void;
  onDecision?: (decision: RolloutDecision) => void;
  /** An error that is not an `OtaError` (a bug): its row says so, the stack goes here. */
  onUnexpected?: (device: FleetDevice, error: unknown) => void;
  /** Waits between attempts (default: a timer that the signal cuts short). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Whether trying again may succeed: the board did not answer (offline, asleep, out of
 * range: `DeviceUnreachableError`, whose transfer left it safe to retry), or nothing
 * listened on its WebREPL port (still booting, or in OTA mode). Not a wrong password, a
 * refused downgrade, or a board that took the image and failed its boot check. Pure.
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof DeviceUnreachableError) return true;
  return error instanceof WebReplError && error.cause instanceof Deno.errors.ConnectionRefused;
}

/** The wait before attempt `attempt + 1`: the delay, doubled per retry, at most 30 s. Pure. */
export function retryDelay(policy: RolloutPolicy, attempt: number): number {
  const base = policy.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  return Math.min(base * 2 ** (attempt - 1), Math.max(base, MAX_RETRY_DELAY_MS));
}

/** The result of a finished attempt. Pure. */
export function resultOf(outcome: DeviceOutcome): DeviceResult {
  return outcome.ok ? (outcome.skipped ? "skipped" : "updated") : "failed";
}

/** Why the run was stopped: the abort's reason when it gives one in words, else Ctrl-C. */
function stopReason(signal: AbortSignal): string {
  return typeof signal.reason === "string" ? signal.reason : "interrupted (Ctrl-C)";
}

/**
 * Runs `deployOne` for every board under `policy`. Rows come back in inventory order,
 * each with its `result`; the decision that stopped the rollout (if one did) with them.
 */
export async function runRollout(
  devices: FleetDevice[],
  deployOne: DeployOne,
  options: RolloutOptions,
): Promise<{ rows: DeviceReport[]; stopped?: RolloutDecision }> {
  const { policy, signal } = options;
  const sleep = options.sleep ?? abortableSleep;
  const retries = Math.max(0, policy.retries ?? 0);
  const rows: (DeviceReport | undefined)[] = new Array(devices.length);
  const started = new Set<number>();
  let failures = 0;
  let stopped: RolloutDecision | undefined;

  const decide = (decision: RolloutDecision["decision"], detail: string) => {
    const notAttempted = devices.filter((_, i) => !started.has(i)).map((d) => d.name);
    const made: RolloutDecision = { decision, detail, notAttempted };
    if (decision !== "canary-passed") stopped = made;
    options.onDecision?.(made);
  };

  async function runOne(device: FleetDevice): Promise<DeviceOutcome> {
    try {
      return await deployOne(device, { ...options.hooks?.(device), signal });
    } catch (e) {
      if (e instanceof OtaError) {
        return { ok: false, error: e.message, kind: e.name, retryable: isRetryable(e) };
      }
      options.onUnexpected?.(device, e);
      const name = e instanceof Error ? e.name : "Error";
      const message = e instanceof Error ? e.message : String(e);
      return { ok: false, error: `unexpected ${name}: ${message} (a bug)`, kind: "InternalError" };
    }
  }

  async function attempts(device: FleetDevice): Promise<DeviceOutcome & { attempts: number }> {
    for (let attempt = 1;; attempt++) {
      const outcome = await runOne(device);
      if (outcome.ok || !outcome.retryable || attempt > retries || signal?.aborted) {
        return { ...outcome, attempts: attempt };
      }
      const delayMs = retryDelay(policy, attempt);
      options.onRetry?.(device, { attempt: attempt + 1, attempts: retries + 1, delayMs, outcome });
      await sleep(delayMs, signal);
      if (signal?.aborted) return { ...outcome, attempts: attempt };
    }
  }

  const row = (device: FleetDevice, outcome: DeviceOutcome, result: DeviceResult) => {
    const { retryable: _, ...rest } = outcome;
    return { name: device.name, ip: device.ip, port: device.port, ...rest, result };
  };

  async function runGroup(indices: number[], limit: number): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < indices.length) {
        const index = indices[next++]!;
        const device = devices[index]!;
        if (signal?.aborted && !stopped) decide("interrupted", stopReason(signal));
        if (stopped) {
          const interrupted = stopped.decision === "interrupted";
          const r = row(device, {
            ok: false,
            error: interrupted ? "not started: interrupted" : `not attempted: ${stopped.detail}`,
            ...(interrupted ? { kind: InterruptedError.name } : {}),
          }, "not-attempted");
          rows[index] = r;
          options.onFinish?.(device, r);
          continue;
        }
        started.add(index);
        options.onStart?.(device);
        const outcome = await attempts(device);
        const r = row(device, outcome, resultOf(outcome));
        rows[index] = r;
        options.onFinish?.(device, r);
        if (r.result === "failed" && !stopped) {
          failures++;
          if (policy.maxFailures !== undefined && failures >= policy.maxFailures) {
            decide(
              "max-failures",
              `${failures} board${
                failures === 1 ? "" : "s"
              } failed (--max-failures ${policy.maxFailures})`,
            );
          }
        }
      }
    };
    const workers = Math.min(Math.max(1, Math.floor(limit)), indices.length);
    await Promise.all(Array.from({ length: workers }, worker));
  }

  const all = devices.map((_, i) => i);
  const canary = Math.min(Math.max(0, policy.canary ?? 0), devices.length);
  if (canary > 0 && canary < devices.length) {
    await runGroup(all.slice(0, canary), Math.min(policy.concurrency, canary));
    if (!stopped) {
      const bad = rows.slice(0, canary).filter((r) =>
        r && r.result !== "updated" && r.result !== "skipped"
      );
      if (bad.length) {
        decide(
          "canary-failed",
          `canary ${
            bad.map((r) => `'${r!.name}'`).join(", ")
          } did not end up running the new build`,
        );
      } else {
        const who = canary === 1 ? "the canary runs" : `all ${canary} canaries run`;
        decide(
          "canary-passed",
          `${who} the new build: starting the other ${devices.length - canary}`,
        );
      }
    }
    await runGroup(all.slice(canary), policy.concurrency);
  } else {
    await runGroup(all, policy.concurrency);
  }
  return { rows: rows as DeviceReport[], ...(stopped ? { stopped } : {}) };
}

/** `runRollout`'s options without a policy but the number of deploys at once. */
export type RunFleetOptions =
  & Pick<RolloutOptions, "signal" | "hooks" | "onStart" | "onFinish" | "onUnexpected">
  & { concurrency: number };

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
  });
  return rows;
}
