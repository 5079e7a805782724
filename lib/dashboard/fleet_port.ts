/**
 * The one module that adapts the toolchain to the dashboard's `FleetPort` (`port.ts`);
 * nothing else in `lib/dashboard/` imports deploy, WebREPL or transfer code. Each job is
 * done the way `deno task status` and `deploy --fleet` do it, by the same code:
 *
 * - `status`: `probeFleet` (status_probe.ts): a WebREPL login (`os.uname()`, `ota.BUILD`)
 *   and the OTA-mode question, the build compared with dist/manifest.json's (up to date,
 *   older, newer, unknown) and the kept release a board runs.
 * - the builds: build-ota's outputs (`firmware-ota.bin` and its manifest, with the
 *   preflight's verdict) and the kept releases (`listReleases`).
 * - `rollout`: `deployFleet` with its rollout policy (canary, max failures, retries) and
 *   its `--events` stream, each event stamped and handed on. With `trigger`, a board that
 *   runs the build already is skipped and a downgrade is refused; a kept release sent on
 *   purpose ("Redeploy") is a rollback and goes through, as with `deploy --release`.
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { OtaConfig } from "../config/config.ts";
import { resolveAppOffset } from "../config/values.ts";
import { describeBuild } from "../build/build_id.ts";
import {
  DEFAULT_BUILD_DIR,
  FIRMWARE_FILE,
  MANIFEST_FILE,
  type ManifestFacts,
  manifestMismatch,
  missingBuild,
  parseManifest,
} from "../build/build_outputs.ts";
import {
  chooseImage,
  currentBuild as currentStamp,
  type ImageChoice,
  listReleases,
  stampOf,
} from "../build/releases.ts";
import { ConfigError, FileError, OtaError } from "../errors.ts";
import { formatHex } from "../_bytes.ts";
import { inspectImage, problemLines } from "../format/inspect.ts";
import { type FleetDevice, selectDevices } from "../deploy/fleet.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";
import { buildPolicyFor, type TriggerSettings } from "../deploy/pipeline_steps.ts";
import { deployFleet, type DeployFleetOptions } from "../deploy/pipeline.ts";
import { errorOf, exitCodeOf, type StampedEvent, stampedSink } from "../deploy/events.ts";
import { DEFAULT_STATUS_TIMEOUT_MS, probeFleet } from "../deploy/status_probe.ts";
import { passwordFromEnv, statusBuilds, statusTargets } from "../deploy/status_inputs.ts";
import type {
  BoardStatus,
  CurrentBuild,
  FleetPort,
  Release,
  RolloutEvent,
  RolloutPlan,
  RolloutRequest,
} from "./port.ts";
import { onlyOf } from "./rollout_request.ts";

/** `deploy`'s wait for an answer before a board counts as not answering. */
const DEFAULT_DEPLOY_TIMEOUT_MS = 15000;

export interface FleetPortOptions {
  config: OtaConfig;
  /** The key for boards that name none (`--key`, the config's `key`, `keys/priv.key`). */
  keyPath: string;
  /** Reads password variables (default `Deno.env.get`). Passwords stay in this process. */
  env?: (name: string) => string | undefined;
  /** Each WebREPL step of a status question (default 3 s). */
  statusTimeoutMs?: number;
  /** The deploy's own limits (default 15 s without an answer, the boot check's default window). */
  deploy?: { timeoutMs?: number; bootCheckMs?: number };
  /** With `trigger`: the WebREPL waits of `deploy --trigger`. */
  triggerSettings?: TriggerSettings;
  /** The wait before the first retry, doubled for each next one (default 2 s). */
  retryDelayMs?: number;
  /** Warnings of the preflight (a key file others can read, …). */
  onWarning?: (message: string) => void;
  /** Lines about a rollout as a whole: what is sent to how many, each decision, a bug's stack. */
  onLog?: (line: string) => void;
  now?: () => Date;
}

/** A rollout's progress goes to the page as events only: nothing drawn on a terminal. */
const NO_PROGRESS: DeployFleetOptions["progress"] = {
  start() {},
  update() {},
  note() {},
  finish() {},
  close() {},
};

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** How a build without an id is named: by its image. */
function imageLabel(bytes: Uint8Array): string {
  return `image ${sha256Hex(bytes).slice(0, 12)} (no build id)`;
}

/** What the manifest beside the image says (undefined: none, or unreadable), and its modules. */
function readManifest(
  text: string | undefined,
  path: string,
): { facts: ManifestFacts; modules: string[] } | undefined {
  if (text === undefined) return undefined;
  try {
    const facts = parseManifest(text, path);
    const listed = (JSON.parse(text) as { modules?: unknown }).modules;
    const modules = Array.isArray(listed)
      ? listed.flatMap((m) => typeof m?.name === "string" ? [m.name as string] : [])
      : [];
    return { facts, modules };
  } catch (e) {
    if (e instanceof ConfigError) return undefined;
    throw e;
  }
}

/** An event as the page gets it: the rollout's own types, `run.ended` without its report. */
function forPage(event: StampedEvent): RolloutEvent | undefined {
  if (event.type === "device.status") return undefined;
  if (event.type === "run.ended") {
    const { report: _, ...rest } = event;
    return rest;
  }
  return event;
}

/**
 * The dashboard's `FleetPort` on this toolchain.
 * @throws {ConfigError} If two devices of the config share an address and port.
 */
export function createFleetPort(options: FleetPortOptions): FleetPort {
  const { config } = options;
  const out = config.out ?? DEFAULT_BUILD_DIR;
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const now = options.now ?? (() => new Date());
  const appOffset = resolveAppOffset(undefined, config);
  const flashSize = config.flashSize ?? 0x100000;
  const defaultPort = config.port ?? DEFAULT_DEVICE_PORT;
  const inventory: FleetDevice[] = config.devices?.length
    ? selectDevices(config.devices, [], defaultPort)
    : [];

  const blank = (d: FleetDevice): BoardStatus => ({
    name: d.name,
    tags: d.tags ?? [],
    address: `${d.ip}:${d.port}`,
    comparison: "unknown",
  });

  async function status(names?: readonly string[]): Promise<BoardStatus[]> {
    const chosen = names ? inventory.filter((d) => names.includes(d.name)) : inventory;
    const [builds, targets] = await Promise.all([
      statusBuilds(out),
      statusTargets(chosen, {
        keyPath: (d) => d.key ?? options.keyPath,
        password: (d) => passwordFromEnv(d, env),
      }),
    ]);
    const report = await probeFleet(targets, {
      timeoutMs: options.statusTimeoutMs ?? DEFAULT_STATUS_TIMEOUT_MS,
      ...builds,
    });
    const checkedAt = now().toISOString();
    return report.devices.map(({ name: _, ip: __, port: ___, ...row }, i) => ({
      ...blank(chosen[i]!),
      ...row,
      checkedAt,
    }));
  }

  async function currentBuild(): Promise<CurrentBuild | null> {
    const file = join(out, FIRMWARE_FILE);
    let image: Uint8Array;
    try {
      image = await Deno.readFile(file);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    const manifestPath = join(out, MANIFEST_FILE);
    const manifest = readManifest(
      await Deno.readTextFile(manifestPath).catch(() => undefined),
      manifestPath,
    );
    const build = manifest?.facts.build;
    const report = inspectImage(image, { appOffset, flashSize });
    const version = build?.version ?? report.version;
    return {
      id: build?.id ?? null,
      label: build ? describeBuild(build) : imageLabel(image),
      file,
      size: image.length,
      sha256: sha256Hex(image),
      ...(build ? { builtAt: build.builtAt } : {}),
      ...(version ? { version } : {}),
      appOffset: formatHex(appOffset),
      ...(report.link?.bestBaseHex ? { linkAddress: report.link.bestBaseHex } : {}),
      modules: manifest?.modules ?? [],
      verdict: { safe: report.safe, problems: problemLines(report) },
      matchesManifest: manifest !== undefined &&
        manifestMismatch(image, manifest.facts, appOffset, { file, manifest: manifestPath }) ===
          undefined,
    };
  }

  async function releases(): Promise<Release[]> {
    const [kept, current] = await Promise.all([listReleases(out), currentStamp(out)]);
    return kept.map((r) => ({ ...stampOf(r), current: r.id === current?.id }));
  }

  /** What a request sends: the current build, or the kept release it names. */
  async function imageFor(
    request: RolloutRequest,
  ): Promise<{ choice: ImageChoice; label: string; size: number }> {
    const choice = await chooseImage(
      request.release === undefined ? {} : { release: request.release },
      out,
    );
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(choice.file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      if (!choice.release) throw await missingBuild(out);
      throw new FileError(
        `the release ${choice.release.id} has no ${choice.file}: it cannot be sent (build it again)`,
      );
    }
    const label = choice.build ? describeBuild(choice.build) : imageLabel(bytes);
    return { choice, label, size: bytes.length };
  }

  async function plan(request: RolloutRequest): Promise<RolloutPlan> {
    const devices = selectDevices(inventory, onlyOf(request.target), defaultPort);
    const image = await imageFor(request);
    return {
      boards: devices.map((d) => d.name),
      build: image.label,
      buildId: image.choice.build?.id ?? null,
      file: image.choice.file,
      size: image.size,
    };
  }

  async function rollout(
    request: RolloutRequest,
    onEvent: (event: RolloutEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const events = stampedSink((event) => {
      const shown = forPage(event);
      if (shown) onEvent(shown);
    }, now);
    try {
      const { choice } = await imageFor(request);
      await deployFleet({
        inventory,
        only: onlyOf(request.target),
        defaultPort,
        ...(request.concurrency === undefined ? {} : { concurrency: request.concurrency }),
        rollout: {
          canary: request.canary,
          ...(request.maxFailures === null ? {} : { maxFailures: request.maxFailures }),
          retries: request.retries,
          ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
        },
        request: {
          file: choice.file,
          ...(choice.buildDir === undefined ? {} : { buildDir: choice.buildDir }),
          block: "auto",
          pace: true,
          timeoutMs: options.deploy?.timeoutMs ?? DEFAULT_DEPLOY_TIMEOUT_MS,
          force: false,
          bootCheck: true,
          ...(options.deploy?.bootCheckMs ? { bootCheckMs: options.deploy.bootCheckMs } : {}),
          appOffset,
          flashSize,
          onWarning: (m) => options.onWarning?.(m),
        },
        keyPath: options.keyPath,
        trigger: request.trigger,
        env,
        ...(options.triggerSettings ? { triggerSettings: options.triggerSettings } : {}),
        builds: buildPolicyFor(choice),
        events,
        signal,
        progress: NO_PROGRESS,
        log: options.onLog ?? (() => {}),
      });
    } catch (e) {
      // Before the first board (the image, the key, the selection): the run ends with it.
      if (!(e instanceof OtaError)) throw e;
      events.emit({ type: "run.ended", ok: false, exitCode: exitCodeOf(e), ...errorOf(e) });
    }
  }

  return {
    boards: () => inventory.map(blank),
    status,
    currentBuild,
    releases,
    plan,
    rollout,
  };
}
