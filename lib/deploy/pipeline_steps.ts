/**
 * The two steps of the deploy pipeline (`pipeline.ts`) that touch files and boards:
 * `preflight` runs once for the run (once per distinct key, since an inventory entry may
 * name its own, and each board's password from the password source) and returns the
 * per-board step: lock the board, then trigger and push (`board_trigger.ts`) or push
 * (`board_push.ts`), and turn what happened into the board's row.
 */
import {
  deploy,
  type DeployRequest,
  type DeployResult,
  type PreparedDeploy,
  prepareDeploy,
} from "./board_push.ts";
import {
  deployWithTrigger,
  type TriggeredDeployHooks,
  type TriggeredDeployRequest,
} from "./board_trigger.ts";
import { KeyError, OtaError, UsageError } from "../errors.ts";
import type { BoardBuild } from "../format/ota_module.ts";
import type { ImageChoice } from "../build/releases.ts";
import { type EventPhase, type EventSink, NO_EVENTS, progressEvents } from "./events.ts";
import { type DeployOne, isRetryable } from "./pipeline_rollout.ts";
import type { DeviceOutcome, FleetDevice } from "./fleet.ts";
import { checkPassword, PASSWORD_ENV } from "../webrepl/password.ts";
import { resolveDeviceAddress } from "../transfer/resolve_device.ts";
import { lockBoard } from "./board_lock.ts";

/** A deploy preceded by a WebREPL trigger: `deployWithTrigger` (board_trigger.ts). */
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
  "image" | "knownBuilds" | "reinstall" | "allowDowngrade" | "allowFilesystemMove"
>;

/**
 * What a triggered deploy of `image` does with the build a board runs: skip a board that
 * runs it (unless `force`), refuse a downgrade (unless `allowDowngrade`). A kept release
 * named on purpose (`--release`, the dashboard's "Redeploy") is wanted even if it is
 * older: a rollback, the only one a single-slot bootloader has. Pure.
 */
export function buildPolicyFor(
  image: ImageChoice,
  flags: { force?: boolean; allowDowngrade?: boolean; allowFilesystemMove?: boolean } = {},
): BuildPolicy {
  return {
    ...(image.build ? { image: image.build } : {}),
    knownBuilds: image.known,
    reinstall: flags.force ?? false,
    // A release the user named is a rollback, not the flag: said so, not as --allow-downgrade.
    allowDowngrade: flags.allowDowngrade ? true : image.release !== undefined ? "rollback" : false,
    ...(flags.allowFilesystemMove ? { allowFilesystemMove: true } : {}),
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

/** The request every board shares; the address and the key come from each board. */
export type SharedRequest = Omit<
  DeployRequest,
  "host" | "port" | "keyPath" | "signal" | "onProgress" | "onStatus" | "onSent"
>;

/**
 * A board's WebREPL password, for `trigger`: a `UsageError` (none given, too short) fails
 * that board's row only. The task chooses the source (a flag, a variable, a prompt).
 */
export type PasswordSource = (device: FleetDevice) => Promise<string>;

export interface PreflightOptions {
  request: SharedRequest;
  /** The key for devices that name none (`--key`, the config's `key`, `keys/priv.key`). */
  keyPath: string;
  /** Reboot each device into OTA mode over WebREPL first. */
  trigger?: boolean;
  /** Reads the password variables of the default password source (default `Deno.env.get`). */
  env?: (name: string) => string | undefined;
  /** With `trigger`: each board's password (default: `passwordFromInventory`). */
  passwords?: PasswordSource;
  /** With `trigger`: timeouts for `deployWithTrigger`. */
  triggerSettings?: TriggerSettings;
  /** With `trigger`: the deploy to run instead of `deployWithTrigger` (tests). */
  triggeredDeploy?: TriggeredDeploy;
  /** With `trigger`: skip boards that run the image's build, refuse downgrades. */
  builds?: BuildPolicy;
  /** `--events`: phases and progress of each board. */
  events?: EventSink;
  /** Each board's phases as they start and end (`ok` false: it threw). */
  onPhase?: (
    device: FleetDevice,
    phase: EventPhase,
    state: "started" | "ended",
    ok?: boolean,
  ) => void;
}

/** What a board's step ended with: the engine's whole result, or the error it threw. */
export interface BoardRun {
  result?: DeployResult | Awaited<ReturnType<TriggeredDeploy>>;
  error?: unknown;
}

/** What the preflight passed: the image, the keys, and each board's step. */
export interface Preflight {
  /** The image's size, in bytes. */
  size: number;
  kind: "image" | "canned";
  /** Key path to fingerprint, for each key that loaded (raw images only). */
  fingerprints: Map<string, string>;
  deployOne: DeployOne;
  /** Each board's last attempt, by name (for the one-board rendering). */
  boards: Map<string, BoardRun>;
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
    kibps: r.kibps,
    kbps: r.kibps,
    retransmits: r.retransmits,
    block: r.block,
    ...(r.versionBefore === undefined ? {} : { versionBefore: r.versionBefore }),
    ...(r.versionAfter === undefined ? {} : { versionAfter: r.versionAfter }),
    ...builds,
    ...(note ? { note } : {}),
  };
}

/**
 * Every check before the first datagram, for the whole run: the file and the image
 * once, each distinct key once, and with `trigger` each board's WebREPL password (from
 * `options.passwords`). A key or password that fails affects only the boards that use
 * it: their rows carry the error.
 * @throws {UnsafeImageError | CannedFileError | FileError} If the file cannot be sent at all.
 * @throws {KeyError} If no device's key can be used.
 */
export async function preflight(
  devices: FleetDevice[],
  options: PreflightOptions,
): Promise<Preflight> {
  const boards = new Map<string, BoardRun>();
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
    const source = options.passwords ?? passwordFromInventory(options.env);
    for (const d of devices) {
      try {
        passwords.set(d.name, await source(d));
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
    try {
      return await boardStep(device, hooks);
    } catch (e) {
      boards.set(device.name, { error: e });
      throw e;
    }
  }

  async function boardStep(
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
      // --verbose: each device's lines under its own name (one board: the engine's own).
      ...(devices.length > 1 ? { traceTopic: `deploy ${device.name}` } : {}),
      onProgress: (p) => {
        // The probe's verdict: the block size once the probe and its resolution are over.
        if (p.phase !== "probe" && p.phase !== "resolve") block = p.block;
        hooks.onProgress?.(p);
        progressEvent(p);
      },
      onStatus: hooks.onStatus,
    };
    const onPhase = (phase: EventPhase, state: "started" | "ended", ok?: boolean) => {
      options.onPhase?.(device, phase, state, ok);
      events.emit(
        state === "started"
          ? { type: "phase.started", phase, device: device.name }
          : { type: "phase.ended", phase, device: device.name, ok: ok ?? false },
      );
    };
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
      boards.set(device.name, { result });
      return fromResult(result, smallDatagramNote(result.block, largest));
    } catch (e) {
      if (!(e instanceof OtaError)) throw e;
      boards.set(device.name, { error: e });
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

  return { size: someSource?.source.size ?? 0, kind, fingerprints, deployOne, boards };
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

/**
 * The fleet's password source: each board's from the variable its `passwordEnv` names,
 * else WEBREPL_PASSWORD; never a prompt.
 */
export function passwordFromInventory(
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): PasswordSource {
  return (d) => {
    const name = d.passwordEnv ?? PASSWORD_ENV;
    const value = env(name);
    if (!value) {
      throw new UsageError(
        `no WebREPL password for '${d.name}': set ${name} (--fleet reads passwords from the environment only)`,
      );
    }
    return Promise.resolve(checkPassword(value, name));
  };
}
