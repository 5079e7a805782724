/**
 * `deno task deploy --fleet`: the real `DeployOne` on `lib/deploy.ts`, and `deployFleet`,
 * which selects the devices, runs the preflight once (once per distinct key, since an
 * inventory entry may name its own), then deploys to every device N at a time.
 */
import type { DeviceEntry } from "../config/config.ts";
import {
  deploy,
  type DeployRequest,
  type DeployResult,
  type PreparedDeploy,
  prepareDeploy,
} from "./deploy.ts";
import {
  deployWithTrigger,
  type TriggeredDeployHooks,
  type TriggeredDeployRequest,
} from "./deploy_trigger.ts";
import { KeyError, OtaError, UsageError } from "../errors.ts";
import type { BoardBuild } from "../format/ota_module.ts";
import type { ImageChoice } from "../build/releases.ts";
import { type EventPhase, type EventSink, NO_EVENTS, progressEvents } from "./events.ts";
import { isRetryable, type RolloutPolicy, runRollout } from "./rollout.ts";
import {
  buildFleetReport,
  DEFAULT_CONCURRENCY,
  type DeployOne,
  type DeviceOutcome,
  type FleetDevice,
  fleetExitCode,
  type FleetProgressSink,
  type FleetReport,
  selectDevices,
} from "./fleet.ts";
import { formatBytes, formatSeconds } from "../_units.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";
import { checkPassword, PASSWORD_ENV } from "../webrepl/password.ts";
import { resolveDeviceAddress } from "../transfer/resolve_device.ts";
import { lockBoard } from "./board_lock.ts";

/** A deploy preceded by a WebREPL trigger: `deployWithTrigger` (lib/deploy_trigger.ts). */
export type TriggeredDeploy = (
  request: DeployRequest,
  prepared: PreparedDeploy,
  webrepl: {
    password: string;
    onStep?: (line: string) => void;
    onPhase?: TriggeredDeployHooks["onPhase"];
    onBefore?: TriggeredDeployHooks["onBefore"];
    builds?: BuildPolicy;
  },
) => Promise<
  DeployResult & {
    versionBefore?: string;
    versionAfter?: string;
    buildBefore?: BoardBuild;
    buildAfter?: BoardBuild;
    skipped?: string;
  }
>;

/** What a triggered deploy does with the build a board runs (`build_compare.ts`). */
export type BuildPolicy = Pick<
  TriggeredDeployRequest,
  "image" | "knownBuilds" | "reinstall" | "allowDowngrade"
>;

/**
 * What a triggered deploy of `image` does with the build a board runs: skip a board that
 * runs it (unless `force`), refuse a downgrade (unless `allowDowngrade`). A kept release
 * named on purpose (`--release`, the dashboard's "Redeploy") is wanted even if it is
 * older: a rollback, the only one a single-slot bootloader has. Pure.
 */
export function buildPolicyFor(
  image: ImageChoice,
  flags: { force?: boolean; allowDowngrade?: boolean } = {},
): BuildPolicy {
  return {
    ...(image.build ? { image: image.build } : {}),
    knownBuilds: image.known,
    reinstall: flags.force ?? false,
    allowDowngrade: (flags.allowDowngrade ?? false) || image.release !== undefined,
  };
}

/** The WebREPL settings of `deployWithTrigger` that a fleet may change. */
export type TriggerSettings = Pick<
  TriggeredDeployRequest,
  "webreplTimeoutMs" | "otaWaitMs" | "comeBackMs"
>;

function viaWebRepl(settings: TriggerSettings = {}): TriggeredDeploy {
  return (request, prepared, { password, onStep, onPhase, onBefore, builds }) =>
    deployWithTrigger({ ...request, ...settings, ...builds, password }, prepared, {
      onStep,
      onPhase,
      onBefore,
    });
}

/** The request every device shares; the address and the key come from each device. */
export type SharedRequest = Omit<
  DeployRequest,
  "host" | "port" | "keyPath" | "signal" | "onProgress" | "onStatus" | "onSent"
>;

export interface FleetDeployOptions {
  request: SharedRequest;
  /** The key for devices that name none (`--key`, the config's `key`, `keys/priv.key`). */
  keyPath: string;
  /** Reboot each device into OTA mode over WebREPL first. */
  trigger?: boolean;
  /** Reads the password variables (default `Deno.env.get`). */
  env?: (name: string) => string | undefined;
  /** With `trigger`: timeouts for `deployWithTrigger`. */
  triggerSettings?: TriggerSettings;
  /** With `trigger`: the deploy to run instead of `deployWithTrigger` (tests). */
  triggeredDeploy?: TriggeredDeploy;
  /** With `trigger`: skip boards that run the image's build, refuse downgrades. */
  builds?: BuildPolicy;
  /** `--events`: phases and progress of each board. */
  events?: EventSink;
}

export interface FleetPlan {
  /** The image's size, in bytes. */
  size: number;
  kind: "image" | "canned";
  /** Key path to fingerprint, for each key that loaded (raw images only). */
  fingerprints: Map<string, string>;
  deployOne: DeployOne;
}

/** `link passes only small datagrams` when the probe settled below the largest block. */
function smallDatagramNote(block: number | undefined, largest: number): string | undefined {
  return block !== undefined && block < largest
    ? `link passes only small datagrams: ${block}-byte blocks`
    : undefined;
}

/** A board's build as a report names it: its id, or "unknown". */
function buildName(build: BoardBuild | undefined): string | undefined {
  return build === undefined ? undefined : build.id ?? "unknown";
}

function fromResult(
  r: Awaited<ReturnType<TriggeredDeploy>>,
  note: string | undefined,
): DeviceOutcome {
  const builds = {
    ...(r.buildBefore ? { buildBefore: buildName(r.buildBefore) } : {}),
    ...(r.buildAfter ? { buildAfter: buildName(r.buildAfter) } : {}),
  };
  if (r.skipped !== undefined) {
    return {
      ok: true,
      skipped: r.skipped,
      ...(r.versionBefore === undefined ? {} : { versionBefore: r.versionBefore }),
      ...(r.versionAfter === undefined ? {} : { versionAfter: r.versionAfter }),
      ...builds,
    };
  }
  return {
    ok: true,
    bytes: r.bytes,
    seconds: r.seconds,
    kbps: r.kbps,
    retransmits: r.retransmits,
    block: r.block,
    ...(r.versionBefore === undefined ? {} : { versionBefore: r.versionBefore }),
    ...(r.versionAfter === undefined ? {} : { versionAfter: r.versionAfter }),
    ...builds,
    ...(note ? { note } : {}),
  };
}

/**
 * Every check before the first datagram, for the whole fleet: the file and the image
 * once, each distinct key once, and with `trigger` each device's WebREPL password
 * (from its `passwordEnv`, else WEBREPL_PASSWORD; never a prompt). A key or password
 * that fails affects only the devices that use it: their rows carry the error.
 * @throws {UnsafeImageError | CannedFileError | FileError} If the file cannot be sent at all.
 * @throws {KeyError} If no device's key can be used.
 */
export async function prepareFleet(
  devices: FleetDevice[],
  options: FleetDeployOptions,
): Promise<FleetPlan> {
  const warned = new Set<string>();
  const shared: SharedRequest = {
    ...options.request,
    onWarning: (m) => {
      if (!warned.has(m)) options.request.onWarning?.(m);
      warned.add(m);
    },
  };
  const prepareWith = (keyPath: string, quiet = false) =>
    prepareDeploy({
      ...shared,
      ...(quiet ? { onWarning: () => {} } : {}),
      host: "",
      port: 0,
      keyPath,
    });
  const keyOf = (d: FleetDevice) => d.key ?? options.keyPath;
  const keyPaths = [...new Set(devices.map(keyOf))];
  const tryKey = (keyPath: string) =>
    prepareWith(keyPath).catch((e) => e instanceof KeyError ? e : Promise.reject(e));
  // The first key also checks the file: one that cannot be sent fails here, for every device.
  const first = await tryKey(keyPaths[0] ?? options.keyPath);
  const prepared = new Map<string, PreparedDeploy | KeyError>([[
    keyPaths[0] ?? options.keyPath,
    first,
  ]]);
  const kind = first instanceof KeyError ? "image" : first.kind;
  if (kind === "image") {
    for (const keyPath of keyPaths.slice(1)) prepared.set(keyPath, await tryKey(keyPath));
    const usable = [...prepared.values()].filter((p) => !(p instanceof KeyError));
    if (usable.length === 0) throw first;
  } else {
    for (const d of devices.filter((d) => d.key !== undefined)) {
      shared.onWarning?.(
        `a canned file is sent as it is, signed when it was made: the key named for '${d.name}' is not used`,
      );
    }
  }
  const passwords = new Map<string, string | UsageError>();
  if (options.trigger) {
    const env = options.env ?? ((name: string) => Deno.env.get(name));
    for (const d of devices) {
      const name = d.passwordEnv ?? PASSWORD_ENV;
      const value = env(name);
      try {
        if (!value) {
          throw new UsageError(
            `no WebREPL password for '${d.name}': set ${name} (--fleet reads passwords from the environment only)`,
          );
        }
        passwords.set(d.name, checkPassword(value, name));
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        passwords.set(d.name, e);
      }
    }
  }

  const fingerprints = new Map<string, string>();
  for (const [keyPath, p] of prepared) {
    if (!(p instanceof Error) && p.fingerprint) fingerprints.set(keyPath, p.fingerprint);
  }
  const triggered = options.triggeredDeploy ?? viaWebRepl(options.triggerSettings);
  const someSource = [...prepared.values()].find((p): p is PreparedDeploy => !(p instanceof Error));

  async function deployOne(
    device: FleetDevice,
    hooks: Parameters<DeployOne>[1],
  ): Promise<DeviceOutcome> {
    const keyPath = kind === "image" ? keyOf(device) : [...prepared.keys()][0]!;
    const ready = prepared.get(keyPath)!;
    if (ready instanceof Error) throw ready;
    const password = passwords.get(device.name);
    if (password instanceof Error) throw password;
    // A canned source maps the file's sequence numbers to the sender's: one per device.
    const source = kind === "canned" ? await prepareWith(keyPath, true) : ready;
    const largest = kind === "image" && options.request.block === "auto"
      ? source.source.blocks[0]!
      : 0;
    let block: number | undefined;
    /** What the board ran before, kept for a failure's row. */
    let before: { version: string; build?: BoardBuild } | undefined;
    const events = options.events ?? NO_EVENTS;
    const progressEvent = progressEvents(events, device.name);
    const request: DeployRequest = {
      ...shared,
      host: device.ip,
      port: device.port,
      keyPath,
      signal: hooks.signal,
      // --verbose: each device's lines under its own name.
      traceTopic: `deploy ${device.name}`,
      onProgress: (p) => {
        // The probe's verdict: the block size once the probe and its resolution are over.
        if (p.phase !== "probe" && p.phase !== "resolve") block = p.block;
        hooks.onProgress?.(p);
        progressEvent(p);
      },
      onStatus: hooks.onStatus,
    };
    const onPhase = (phase: EventPhase, state: "started" | "ended", ok?: boolean) =>
      events.emit(
        state === "started"
          ? { type: "phase.started", phase, device: device.name }
          : { type: "phase.ended", phase, device: device.name, ok: ok ?? false },
      );
    try {
      // One deploy per board on this machine (lib/board_lock.ts): a name that does not
      // resolve, or a board already being updated, fails this row at once.
      const address = await resolveDeviceAddress(device.ip);
      await using _lock = await lockBoard(address, device.port, { host: device.ip });
      const result = password === undefined
        ? await inPhase(onPhase, "push", () => deploy(request, source))
        : await triggered(request, source, {
          password,
          onStep: hooks.onStatus,
          onPhase,
          onBefore: (running) => (before = running),
          ...(options.builds ? { builds: options.builds } : {}),
        });
      return fromResult(result, smallDatagramNote(result.block, largest));
    } catch (e) {
      if (!(e instanceof OtaError)) throw e;
      const note = smallDatagramNote(block, largest);
      return {
        ok: false,
        error: e.message,
        kind: e.name,
        retryable: isRetryable(e),
        ...(before
          ? { versionBefore: before.version, buildBefore: buildName(before.build) ?? "unknown" }
          : {}),
        ...(block === undefined ? {} : { block }),
        ...(note ? { note } : {}),
      };
    }
  }

  return { size: someSource?.source.size ?? 0, kind, fingerprints, deployOne };
}

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

/** Runs `run` between a phase's start and end. */
async function inPhase<T>(
  onPhase: (phase: EventPhase, state: "started" | "ended", ok?: boolean) => void,
  phase: EventPhase,
  run: () => Promise<T>,
): Promise<T> {
  onPhase(phase, "started");
  let ok = false;
  try {
    const value = await run();
    ok = true;
    return value;
  } finally {
    onPhase(phase, "ended", ok);
  }
}
