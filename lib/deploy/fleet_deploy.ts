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
import { deployWithTrigger, type TriggeredDeployRequest } from "./deploy_trigger.ts";
import { KeyError, OtaError, UsageError } from "../errors.ts";
import {
  buildFleetReport,
  DEFAULT_CONCURRENCY,
  type DeployOne,
  type DeviceOutcome,
  type FleetDevice,
  type FleetProgressSink,
  type FleetReport,
  runFleet,
  selectDevices,
} from "./fleet.ts";
import { formatBytes } from "../_units.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";
import { checkPassword, PASSWORD_ENV } from "../webrepl/password.ts";
import { resolveDeviceAddress } from "../transfer/resolve_device.ts";
import { lockBoard } from "./board_lock.ts";

/** A deploy preceded by a WebREPL trigger: `deployWithTrigger` (lib/deploy_trigger.ts). */
export type TriggeredDeploy = (
  request: DeployRequest,
  prepared: PreparedDeploy,
  webrepl: { password: string; onStep?: (line: string) => void },
) => Promise<DeployResult & { versionBefore?: string; versionAfter?: string }>;

/** The WebREPL settings of `deployWithTrigger` that a fleet may change. */
export type TriggerSettings = Pick<
  TriggeredDeployRequest,
  "webreplTimeoutMs" | "otaWaitMs" | "comeBackMs"
>;

function viaWebRepl(settings: TriggerSettings = {}): TriggeredDeploy {
  return (request, prepared, { password, onStep }) =>
    deployWithTrigger({ ...request, ...settings, password }, prepared, { onStep });
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

function fromResult(
  r: DeployResult & { versionBefore?: string; versionAfter?: string },
  note: string | undefined,
): DeviceOutcome {
  return {
    ok: true,
    bytes: r.bytes,
    seconds: r.seconds,
    kbps: r.kbps,
    retransmits: r.retransmits,
    block: r.block,
    ...(r.versionBefore === undefined ? {} : { versionBefore: r.versionBefore }),
    ...(r.versionAfter === undefined ? {} : { versionAfter: r.versionAfter }),
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
      },
      onStatus: hooks.onStatus,
    };
    try {
      // One deploy per board on this machine (lib/board_lock.ts): a name that does not
      // resolve, or a board already being updated, fails this row at once.
      const address = await resolveDeviceAddress(device.ip);
      await using _lock = await lockBoard(address, device.port, { host: device.ip });
      const result = password === undefined
        ? await deploy(request, source)
        : await triggered(request, source, { password, onStep: hooks.onStatus });
      return fromResult(result, smallDatagramNote(result.block, largest));
    } catch (e) {
      if (!(e instanceof OtaError)) throw e;
      const note = smallDatagramNote(block, largest);
      return {
        ok: false,
        error: e.message,
        kind: e.name,
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
 * `deno task deploy --fleet`: selects the devices, runs the preflight once, deploys to
 * each (N at a time, each failure in its own row) and returns the report. Needs
 * `--allow-read` and `--allow-net`, and `--allow-env` with `trigger`.
 * @throws {UsageError} If `--only` names an unknown device or tag, or the inventory is empty.
 * @throws {UnsafeImageError | CannedFileError | FileError} If the file cannot be sent at all.
 */
export async function deployFleet(options: DeployFleetOptions): Promise<FleetReport> {
  const say = options.log ?? (() => {});
  const devices = selectDevices(
    options.inventory,
    options.only,
    options.defaultPort ?? DEFAULT_DEVICE_PORT,
  );
  const plan = await prepareFleet(devices, options);
  const concurrency = Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, devices.length);
  const keys = plan.kind === "canned"
    ? "canned"
    : [...new Set(plan.fingerprints.values())].map((f) => `key ${f}`).join(", ");
  say(
    `sending ${options.request.file} (${formatBytes(plan.size)}, ${keys}) to ${devices.length} ` +
      `device${devices.length === 1 ? "" : "s"}, ${concurrency} at a time`,
  );
  const progress = options.progress ?? QUIET;
  progress.begin?.(devices, plan.size);
  try {
    const rows = await runFleet(devices, plan.deployOne, {
      concurrency,
      signal: options.signal,
      hooks: (d) => ({
        onProgress: (p) => progress.update(d.name, p),
        onStatus: (m) => progress.note(d.name, m),
      }),
      onStart: (d) => progress.start(d),
      onFinish: (d, outcome) => progress.finish(d.name, outcome),
      onUnexpected: (d, e) => {
        say(`unexpected error on '${d.name}' (a bug: please report it with the lines below)`);
        say(e instanceof Error ? (e.stack ?? e.message) : String(e));
      },
    });
    return buildFleetReport(rows, options.argv, options.program);
  } finally {
    progress.close();
  }
}
