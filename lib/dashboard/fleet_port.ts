/**
 * The one module that adapts the toolchain to the dashboard's `FleetPort` (`port.ts`).
 * Nothing else in `lib/dashboard/` imports deploy, WebREPL or transfer code.
 *
 * Interim, until issue 14 (build ids, `status`, rollout policy, the `--events` stream,
 * releases) is merged: this module does those jobs itself, on what the toolchain has now,
 * in the shapes issue 14 gives them, so that swapping them in is local to this file:
 *
 * - `status`: a WebREPL login (`os.uname()`, and `ota.BUILD` where the firmware has it)
 *   and, for a board whose app does not answer, the OTA-mode question of docs/device.md
 *   ("Asking whether a device is in OTA mode") → issue 14's `probeFleet` (status_probe.ts).
 * - the build comparison: by build id where both sides have one, else by the MicroPython
 *   version in the image's banner → issue 14's `compareBuild` (build_compare.ts).
 * - `rollout`: `prepareFleet`'s per-board deploy under a canary / max-failures / retries
 *   runner that emits the stream's events → issue 14's `deployFleet({ rollout, events })`.
 * - releases: read from `dist/releases/<id>/manifest.json` → issue 14's `listReleases`.
 *
 * Once merged, `rollout` becomes one `deployFleet({ inventory, only, request, keyPath,
 * trigger, env, rollout: { canary, maxFailures, retries, retryDelayMs }, events, signal,
 * progress: a silent sink, log: () => {} })` whose `events.emit` stamps each event and
 * hands it to `onEvent` (its `device.status` type is not a rollout's and is dropped), with
 * a preflight error turned into `run.ended`; `status` maps `probeFleet`'s rows (`app` →
 * `online`, `release` into the note). The server, the page and their tests do not change.
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { OtaConfig } from "../config/config.ts";
import { resolveAppOffset } from "../config/values.ts";
import { DEFAULT_BUILD_DIR, FIRMWARE_FILE, MANIFEST_FILE } from "../build/build_outputs.ts";
import { FileError, OtaError, UsageError } from "../errors.ts";
import { EXIT, exitCodeOf } from "../exit_codes.ts";
import { inspectImage } from "../format/inspect.ts";
import { findVersion } from "../format/image.ts";
import { loadSigningKey } from "../config/key_file.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";
import { makePacket, parseReply, type Signer } from "../format/packet.ts";
import { nativeSigner } from "../format/signer.ts";
import { openUdpPeer } from "../transfer/udp.ts";
import { tcpPortOpen } from "../transfer/tcp_probe.ts";
import type { SendProgress } from "../transfer/send_firmware.ts";
import { WebReplClient } from "../webrepl/client.ts";
import { readUname } from "../webrepl/trigger.ts";
import { PASSWORD_ENV } from "../webrepl/password.ts";
import {
  DEFAULT_CONCURRENCY,
  type DeviceOutcome,
  type FleetDevice,
  selectDevices,
} from "../deploy/fleet.ts";
import { type FleetPlan, prepareFleet, type TriggerSettings } from "../deploy/fleet_deploy.ts";
import type {
  BoardState,
  BoardStatus,
  BuildComparison,
  CurrentBuild,
  DeviceResult,
  FleetPort,
  Release,
  RolloutEvent,
  RolloutEventBody,
  RolloutPlan,
  RolloutRequest,
} from "./port.ts";
import { onlyOf } from "./rollout_request.ts";

/** The `v` of every event: issue 14's schema version. */
export const EVENTS_VERSION = 1;
/** A `progress` event at most this often per board (and the first and the last). */
const PROGRESS_INTERVAL_MS = 500;
/** Each WebREPL step of a status question. */
const DEFAULT_STATUS_TIMEOUT_MS = 3000;
const STATUS_CONCURRENCY = 16;
/** The OTA-mode question: tries, and the wait for an answer to each. */
const QUESTION_TRIES = 3;
const QUESTION_WAIT_MS = 300;
/** `ota_prev_offset` of a fresh session (docs/device.md, "Asking whether a device is in OTA mode"). */
const QUESTION_OFFSET = 0xffffffff;
const DEFAULT_RETRY_DELAY_MS = 2000;
const MAX_RETRY_DELAY_MS = 30000;
const RELEASES_DIR = "releases";

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
  now?: () => Date;
}

interface ManifestBuild {
  id: string | null;
  builtAt?: string;
  version?: string;
  /** The MicroPython version in the image's banner, as `os.uname().version` reports it. */
  imageVersion?: string;
  sha256?: string;
  size?: number;
  modules: string[];
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    const value = JSON.parse(await Deno.readTextFile(path));
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The build a manifest describes: issue 14's `build` object, or the older fields alone. */
function manifestBuild(json: Record<string, unknown> | undefined): ManifestBuild | undefined {
  if (!json) return undefined;
  const build = (json.build ?? {}) as Record<string, unknown>;
  const image = (json.image ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => typeof v === "string" && v !== "" ? v : undefined;
  const modules = Array.isArray(json.modules)
    ? json.modules.map((m) => str((m as Record<string, unknown>)?.name)).filter((m) =>
      m !== undefined
    )
    : [];
  const builtAt = str(build.builtAt) ?? str(json.builtAt);
  const version = str(build.version);
  const sha256 = str(image.sha256);
  const imageVersion = str(image.version);
  return {
    id: str(build.id) ?? str(json.buildId) ?? null,
    ...(builtAt ? { builtAt } : {}),
    ...(version ? { version } : {}),
    ...(imageVersion ? { imageVersion } : {}),
    ...(sha256 ? { sha256 } : {}),
    ...(typeof image.size === "number" ? { size: image.size } : {}),
    modules,
  };
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What we know of a kept build: when it was built, and the version in its image. */
interface KeptBuild {
  id: string;
  builtAt: string;
  imageVersion?: string;
}

/**
 * The board's build against ours: by build id, ordered by the build times we know. For
 * firmware without build ids, by the MicroPython version in the images' banners (ours and
 * the kept releases'), which does not change when only frozen modules do: a guess, and
 * the note says so.
 */
function compare(
  board: { build?: { id: string } | null; micropython?: string },
  current: Current | null,
  kept: readonly KeptBuild[],
): { comparison: BuildComparison; by?: string } {
  if (!current) return { comparison: "unknown" };
  const ours = current.build;
  const order = (theirs: string | undefined): BuildComparison =>
    theirs && ours.builtAt
      ? (Date.parse(theirs) < Date.parse(ours.builtAt) ? "older" : "newer")
      : "unknown";
  const boardId = board.build?.id;
  if (boardId && ours.id) {
    if (boardId === ours.id) return { comparison: "up to date" };
    return { comparison: order(kept.find((k) => k.id === boardId)?.builtAt) };
  }
  if (!board.micropython || !current.banner) return { comparison: "unknown" };
  const by = "compared by MicroPython version (no build id)";
  if (board.micropython === current.banner) return { comparison: "up to date", by };
  const same = kept.filter((k) => k.imageVersion === board.micropython && k.id !== ours.id);
  const comparison = same.length === 1 ? order(same[0]!.builtAt) : "unknown";
  return { comparison, by: comparison === "unknown" ? `the build is ${current.banner}` : by };
}

/** The current build and the version in its image's banner. */
interface Current {
  build: CurrentBuild;
  banner?: string;
}

/** The OTA-mode question: a signed packet at offset 0xFFFFFFFF, len 1. True if answered. */
async function askOtaMode(host: string, port: number, signer: Signer): Promise<boolean> {
  let answered = false;
  let wake = () => {};
  const peer = await openUdpPeer(host, port, (data) => {
    const reply = parseReply(data);
    if (reply?.offset !== QUESTION_OFFSET || reply.len !== 1) return;
    answered = true;
    wake();
  });
  try {
    for (let seq = 1; seq <= QUESTION_TRIES && !answered; seq++) {
      peer.send(makePacket(seq, QUESTION_OFFSET, new Uint8Array(1), signer));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, QUESTION_WAIT_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return answered;
  } finally {
    await peer.close();
  }
}

const BUILD_CODE = 'try:\n    import ota as _o\n    print(repr(getattr(_o, "BUILD", None)))\n' +
  "except ImportError:\n    print(None)\n";

/** `ota.BUILD` as the board printed it: an id, or null (none). */
function parseBuildAnswer(output: string): { id: string } | null | undefined {
  const text = output.trim();
  if (text === "None") return null;
  const m = /^'([0-9a-f]{4,64})'$/.exec(text);
  return m ? { id: m[1]! } : undefined;
}

/** Whether trying again may help: the board did not answer, or its app was not up yet. */
function retryable(outcome: DeviceOutcome): boolean {
  return outcome.kind === "DeviceUnreachableError" || outcome.kind === "OtaModeTimeoutError" ||
    (outcome.kind === "WebReplError" && /^no WebREPL at /.test(outcome.error ?? ""));
}

/** The dashboard's `FleetPort` on this toolchain. */
export function createFleetPort(options: FleetPortOptions): FleetPort {
  const { config } = options;
  const out = config.out ?? DEFAULT_BUILD_DIR;
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const now = options.now ?? (() => new Date());
  const statusTimeoutMs = options.statusTimeoutMs ?? DEFAULT_STATUS_TIMEOUT_MS;
  const appOffset = resolveAppOffset(undefined, config);
  const flashSize = config.flashSize ?? 0x100000;
  const inventory: FleetDevice[] = config.devices?.length
    ? selectDevices(config.devices, [], config.port ?? DEFAULT_DEVICE_PORT)
    : [];
  const signers = new Map<string, Promise<Signer | string>>();

  function signerFor(device: FleetDevice): Promise<Signer | string> {
    const path = device.key ?? options.keyPath;
    let s = signers.get(path);
    if (!s) {
      s = loadSigningKey(path).then(
        nativeSigner,
        (e) => e instanceof OtaError ? e.message : String(e),
      );
      signers.set(path, s);
    }
    return s;
  }

  const blank = (d: FleetDevice): BoardStatus => ({
    name: d.name,
    tags: d.tags ?? [],
    address: `${d.ip}:${d.port}`,
    comparison: "unknown",
  });

  async function releases(): Promise<Release[]> {
    return (await keptBuilds()).map(({ imageVersion: _, ...r }) => r);
  }

  async function keptBuilds(): Promise<(Release & KeptBuild)[]> {
    const current = await readJson(join(out, MANIFEST_FILE)).then(manifestBuild);
    const found: (Release & KeptBuild)[] = [];
    try {
      for await (const entry of Deno.readDir(join(out, RELEASES_DIR))) {
        if (!entry.isDirectory) continue;
        const json = await readJson(join(out, RELEASES_DIR, entry.name, MANIFEST_FILE));
        const b = manifestBuild(json);
        if (!b?.id || b.id !== entry.name || !b.builtAt) continue;
        found.push({
          id: b.id,
          builtAt: b.builtAt,
          ...(b.version ? { version: b.version } : {}),
          ...(b.size === undefined ? {} : { size: b.size }),
          ...(b.imageVersion ? { imageVersion: b.imageVersion } : {}),
          current: current?.id === b.id,
        });
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return found.sort((a, b) => Date.parse(a.builtAt) - Date.parse(b.builtAt));
  }

  async function readCurrent(): Promise<Current | null> {
    const file = join(out, FIRMWARE_FILE);
    let image: Uint8Array;
    try {
      image = await Deno.readFile(file);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    const manifest = manifestBuild(await readJson(join(out, MANIFEST_FILE)));
    const report = inspectImage(image, { appOffset, flashSize });
    const sha256 = sha256Hex(image);
    const banner = findVersion(image);
    const version = manifest?.version ?? banner;
    const id = manifest?.id ?? null;
    const build: CurrentBuild = {
      id,
      label: id
        ? (manifest?.version ? `${id} (${manifest.version})` : id)
        : `image ${sha256.slice(0, 12)}${banner ? `, ${banner}` : ""}`,
      file,
      size: image.length,
      sha256,
      ...(manifest?.builtAt ? { builtAt: manifest.builtAt } : {}),
      ...(version ? { version } : {}),
      appOffset: `0x${appOffset.toString(16)}`,
      ...(report.link?.bestBaseHex ? { linkAddress: report.link.bestBaseHex } : {}),
      modules: manifest?.modules ?? [],
      verdict: {
        safe: report.safe,
        problems: report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`),
      },
      matchesManifest: manifest?.sha256 === sha256,
    };
    return { build, ...(banner ? { banner } : {}) };
  }

  const currentBuild = () => readCurrent().then((c) => c?.build ?? null);

  async function askBoard(
    d: FleetDevice,
    current: Current | null,
    kept: readonly KeptBuild[],
  ): Promise<BoardStatus> {
    const variable = d.passwordEnv ?? PASSWORD_ENV;
    const password = env(variable);
    const notes: string[] = [];
    let online = false;
    let micropython: string | undefined;
    let build: { id: string } | null | undefined;
    if (!password) {
      online = await tcpPortOpen(d.ip, d.port, statusTimeoutMs);
      if (online) notes.push(`version not read: set ${variable} for its WebREPL password`);
    } else {
      try {
        await using repl = await WebReplClient.connect({
          host: d.ip,
          port: d.port,
          password,
          timeoutMs: statusTimeoutMs,
        });
        online = true;
        micropython = (await readUname(repl)).version;
        const answer = await repl.exec(BUILD_CODE);
        build = answer.error ? undefined : parseBuildAnswer(answer.output);
      } catch (e) {
        if (!(e instanceof OtaError)) throw e;
        const refused = /^no WebREPL at /.test(e.message) || e.name === "DeviceUnreachableError";
        if (!refused) {
          online = true;
          notes.push(
            /Access denied/i.test(e.message)
              ? `WebREPL: wrong password (${variable})`
              : `WebREPL: ${e.message}`,
          );
        }
      }
    }
    let state: BoardState = online ? "online" : "offline";
    if (!online) {
      const signer = await signerFor(d);
      if (typeof signer === "string") {
        notes.push(`OTA mode not asked: ${signer}`);
      } else if (await askOtaMode(d.ip, d.port, signer).catch(() => false)) {
        state = "ota";
      } else {
        notes.push(
          "no answer over WebREPL or UDP: off, out of range, busy with another OTA session, " +
            "or built for another key",
        );
      }
    }
    const { comparison, by } = compare({ build, micropython }, current, kept);
    if (by && state === "online") notes.push(by);
    return {
      ...blank(d),
      state,
      ...(micropython ? { micropython } : {}),
      ...(build === undefined ? {} : { build }),
      comparison,
      ...(notes.length ? { note: notes.join("; ") } : {}),
      checkedAt: now().toISOString(),
    };
  }

  async function status(names?: readonly string[]): Promise<BoardStatus[]> {
    const chosen = names ? inventory.filter((d) => names.includes(d.name)) : inventory;
    const [current, kept] = await Promise.all([readCurrent(), keptBuilds()]);
    const rows: BoardStatus[] = new Array(chosen.length);
    let next = 0;
    const worker = async () => {
      while (next < chosen.length) {
        const i = next++;
        rows[i] = await askBoard(chosen[i]!, current, kept);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(STATUS_CONCURRENCY, chosen.length) }, worker),
    );
    return rows;
  }

  async function imageFor(
    request: RolloutRequest,
  ): Promise<{ file: string; buildDir?: string; label: string; id: string | null; size: number }> {
    if (request.release !== undefined) {
      const kept = await releases();
      const release = kept.find((r) => r.id === request.release);
      if (!release) {
        throw new UsageError(
          `no release '${request.release}' in ${join(out, RELEASES_DIR)} (${
            kept.length ? `kept: ${kept.map((r) => r.id).join(", ")}` : "none is kept"
          })`,
        );
      }
      const dir = join(out, RELEASES_DIR, release.id);
      const file = join(dir, FIRMWARE_FILE);
      const size = await Deno.stat(file).then((s) => s.size, () => {
        throw new FileError(`the release ${release.id} has no ${file}: it cannot be sent`);
      });
      return {
        file,
        buildDir: dir,
        label: release.version ? `${release.id} (${release.version})` : release.id,
        id: release.id,
        size,
      };
    }
    const current = await currentBuild();
    if (!current) {
      throw new FileError(
        `no ${
          join(out, FIRMWARE_FILE)
        }: build one with 'deno task build-ota' (or redeploy a kept release)`,
      );
    }
    return {
      file: current.file,
      buildDir: out,
      label: current.label,
      id: current.id,
      size: current.size,
    };
  }

  async function plan(request: RolloutRequest): Promise<RolloutPlan> {
    if (inventory.length === 0) {
      throw new UsageError('no boards: add a "devices" list to ota.config.json');
    }
    const only = onlyOf(request.target);
    if (request.target.kind === "board" && !inventory.some((d) => d.name === only[0])) {
      throw new UsageError(`no board named '${only[0]}' in the config's "devices"`);
    }
    if (request.target.kind === "tag" && !inventory.some((d) => d.tags?.includes(only[0]!))) {
      throw new UsageError(`no board has the tag '${only[0]}'`);
    }
    const devices = selectDevices(inventory, only, DEFAULT_DEVICE_PORT);
    const image = await imageFor(request);
    return {
      boards: devices.map((d) => d.name),
      build: image.label,
      buildId: image.id,
      file: image.file,
      size: image.size,
    };
  }

  async function rollout(
    request: RolloutRequest,
    onEvent: (event: RolloutEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let seq = 0;
    const emit = (body: RolloutEventBody) =>
      onEvent({ v: EVENTS_VERSION, seq: ++seq, time: now().toISOString(), ...body });
    let planned: RolloutPlan;
    let image: Awaited<ReturnType<typeof imageFor>>;
    try {
      planned = await plan(request);
      image = await imageFor(request);
    } catch (e) {
      if (!(e instanceof OtaError)) throw e;
      emit({
        type: "run.ended",
        ok: false,
        exitCode: exitCodeOf(e),
        reason: e.message,
        kind: e.name,
      });
      return;
    }
    const devices = selectDevices(inventory, onlyOf(request.target), DEFAULT_DEVICE_PORT);
    const concurrency = Math.min(request.concurrency ?? DEFAULT_CONCURRENCY, devices.length);
    emit({
      type: "run.started",
      command: "deploy",
      devices: planned.boards,
      image: {
        file: image.file,
        size: image.size,
        ...(image.id ? { build: { id: image.id } } : {}),
      },
      policy: {
        concurrency,
        canary: request.canary,
        maxFailures: request.maxFailures,
        retries: request.retries,
      },
    });
    emit({ type: "phase.started", phase: "preflight" });
    let fleetPlan: FleetPlan;
    try {
      fleetPlan = await prepareFleet(devices, {
        request: {
          file: image.file,
          ...(image.buildDir ? { buildDir: image.buildDir } : {}),
          block: "auto",
          pace: true,
          timeoutMs: options.deploy?.timeoutMs ?? 15000,
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
      });
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      const kind = e instanceof OtaError ? e.name : "InternalError";
      emit({ type: "phase.ended", phase: "preflight", ok: false, error: reason });
      emit({ type: "run.ended", ok: false, exitCode: exitCodeOf(e), reason, kind });
      return;
    }
    emit({ type: "phase.ended", phase: "preflight", ok: true });

    /** One attempt on one board, its phases and progress as events. */
    const attempt = async (d: FleetDevice): Promise<DeviceOutcome> => {
      const first = request.trigger ? "trigger" : "push";
      let phase: "trigger" | "push" | "verify" = first;
      emit({ type: "phase.started", phase, device: d.name });
      const move = (to: "push" | "verify") => {
        if (phase === to || (phase === "verify" && to === "push")) return;
        emit({ type: "phase.ended", phase, device: d.name, ok: true });
        phase = to;
        emit({ type: "phase.started", phase, device: d.name });
      };
      let lastAt = -Infinity;
      let complete = false;
      const onProgress = (p: SendProgress) => {
        if (phase === "trigger" && (p.phase !== "probe" || p.confirmed > 0)) move("push");
        if (phase === "trigger") return;
        if (p.phase === "ending" || p.phase === "finished") {
          if (p.confirmed >= p.size) progress(p, true);
          move("verify");
          return;
        }
        progress(p, p.confirmed >= p.size);
      };
      const progress = (p: SendProgress, last: boolean) => {
        if (complete || (!last && p.elapsedMs - lastAt < PROGRESS_INTERVAL_MS)) return;
        lastAt = p.elapsedMs;
        complete = last;
        const rate = p.elapsedMs > 0 ? p.confirmed / (p.elapsedMs / 1000) : 0;
        emit({
          type: "progress",
          device: d.name,
          bytes: p.confirmed,
          total: p.size,
          rate: Math.round(rate),
          eta: rate > 0 ? Number(((p.size - p.confirmed) / rate).toFixed(1)) : null,
          retransmits: p.retransmits,
          block: p.block,
        });
      };
      let outcome: DeviceOutcome;
      try {
        outcome = await fleetPlan.deployOne(d, { signal, onProgress });
      } catch (e) {
        outcome = {
          ok: false,
          error: e instanceof Error ? e.message : String(e),
          kind: e instanceof OtaError ? e.name : "InternalError",
        };
      }
      emit({
        type: "phase.ended",
        phase,
        device: d.name,
        ok: outcome.ok,
        ...(outcome.ok ? {} : { error: outcome.error ?? "failed" }),
      });
      return outcome;
    };

    const retryDelay = (n: number) =>
      Math.min((options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS) * 2 ** (n - 1), MAX_RETRY_DELAY_MS);
    const counts: Record<DeviceResult, number> = {
      "updated": 0,
      "skipped": 0,
      "failed": 0,
      "not-attempted": 0,
    };
    const started = new Set<string>();
    let stopped: string | undefined;
    const decide = (
      decision: "canary-passed" | "canary-failed" | "max-failures" | "interrupted",
      detail: string,
    ) => {
      if (decision !== "canary-passed") stopped = detail;
      const notAttempted = decision === "canary-passed"
        ? []
        : devices.filter((d) => !started.has(d.name)).map((d) => d.name);
      emit({ type: "rollout.decision", decision, detail, notAttempted });
    };
    const results = new Map<string, DeviceResult>();
    const finish = (d: FleetDevice, result: DeviceResult, extra: Partial<DeviceOutcome> & {
      attempts?: number;
    } = {}) => {
      results.set(d.name, result);
      counts[result]++;
      emit({
        type: "device.result",
        device: d.name,
        result,
        ...(extra.error === undefined ? {} : { reason: extra.error }),
        ...(extra.kind === undefined ? {} : { kind: extra.kind }),
        ...(extra.attempts === undefined ? {} : { attempts: extra.attempts }),
        ...(extra.versionBefore === undefined ? {} : { buildBefore: extra.versionBefore }),
        ...(extra.versionAfter === undefined ? {} : { buildAfter: extra.versionAfter }),
      });
    };
    let failures = 0;
    const runGroup = async (group: FleetDevice[], limit: number) => {
      let next = 0;
      const worker = async () => {
        while (next < group.length) {
          const d = group[next++]!;
          if (signal.aborted && stopped === undefined) {
            decide("interrupted", "stopped from the page");
          }
          if (stopped !== undefined) {
            finish(d, "not-attempted", { error: `not attempted: ${stopped}` });
            continue;
          }
          started.add(d.name);
          const attempts = request.retries + 1;
          let outcome: DeviceOutcome = { ok: false };
          let n = 1;
          for (;; n++) {
            outcome = await attempt(d);
            if (outcome.ok || !retryable(outcome) || n >= attempts || signal.aborted) break;
            const delayMs = retryDelay(n);
            emit({
              type: "retry",
              device: d.name,
              attempt: n + 1,
              attempts,
              delayMs,
              reason: outcome.error ?? "failed",
              ...(outcome.kind ? { kind: outcome.kind } : {}),
            });
            await sleep(delayMs, signal);
            if (signal.aborted) break;
          }
          finish(d, outcome.ok ? "updated" : "failed", { ...outcome, attempts: n });
          if (!outcome.ok && stopped === undefined) {
            failures++;
            if (request.maxFailures !== null && failures >= request.maxFailures) {
              decide(
                "max-failures",
                `${failures} board${
                  failures === 1 ? "" : "s"
                } failed (max failures ${request.maxFailures})`,
              );
            }
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), group.length) }, worker));
    };
    const canary = Math.min(request.canary, devices.length);
    if (canary > 0 && canary < devices.length) {
      await runGroup(devices.slice(0, canary), Math.min(concurrency, canary));
      if (stopped === undefined) {
        const bad = devices.slice(0, canary).filter((d) => results.get(d.name) !== "updated");
        if (bad.length) {
          decide(
            "canary-failed",
            `canary ${bad.map((d) => `'${d.name}'`).join(", ")} did not take the new build`,
          );
        } else {
          decide(
            "canary-passed",
            `${canary === 1 ? "the canary runs" : `all ${canary} canaries run`} the new build: ` +
              `starting the other ${devices.length - canary}`,
          );
        }
      }
      await runGroup(devices.slice(canary), concurrency);
    } else {
      await runGroup(devices, concurrency);
    }
    const ok = counts.failed === 0 && counts["not-attempted"] === 0;
    emit({
      type: "run.ended",
      ok,
      exitCode: ok
        ? EXIT.ok
        : signal.aborted
        ? EXIT.interrupted
        : counts.updated + counts.skipped > 0
        ? EXIT.fleetSomeFailed
        : EXIT.fleetAllFailed,
      counts,
    });
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

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
