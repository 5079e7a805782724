/**
 * `deno task status`, asking the boards: for each, at the same time and each step with a
 * timeout, a WebREPL login (`os.uname()` and the build `ota` names, see `board_state.ts`)
 * and the OTA-mode question over UDP (`ota_probe.ts`), which changes nothing on a board.
 * Nothing here resets, writes or sends an end packet. A password is only ever handed to
 * the login.
 */
import { readBoardState } from "./board_state.ts";
import { filesystemMoveProblem } from "./filesystem_move.ts";
import { formatHex } from "../_bytes.ts";
import { compareBuild, type KnownBuilds } from "./build_compare.ts";
import type { BuildStamp } from "../build/build_id.ts";
import { DeviceUnreachableError, OtaError, WebReplError } from "../errors.ts";
import { type EventSink, NO_EVENTS } from "./events.ts";
import type { FleetDevice } from "./fleet.ts";
import type { BoardBuild } from "../format/ota_module.ts";
import { askOtaMode } from "../transfer/ota_probe.ts";
import type { Signer } from "../format/packet.ts";
import type { RunningVersion } from "../webrepl/trigger.ts";
import { mapPool } from "../_pool.ts";
import { webReplHello } from "../webrepl/hello.ts";
import { PASSWORD_PROMPT } from "../webrepl/protocol.ts";
import { boardState, type BoardStatus, type StatusReport, type WebReplAccess } from "./status.ts";

/** One board to ask, with what each question needs. */
export interface StatusTarget {
  device: FleetDevice;
  /** The WebREPL password, or why there is none (e.g. "set KITCHEN_PW"). Never printed. */
  password: { value: string } | { missing: string };
  /** Signs the OTA-mode question, or why it cannot be asked (a key problem). */
  signer: Signer | { missing: string };
}

export interface StatusOptions {
  /** Each WebREPL step (connect, login, each command), default 3 s. */
  timeoutMs?: number;
  /** Boards asked at once (default 64). */
  concurrency?: number;
  /** Each board's row as it comes, with how many of `total` are done (progress). */
  onBoard?: (row: BoardStatus, done: number, total: number) => void;
  /** dist/manifest.json's build. */
  manifest?: BuildStamp;
  /** Build ids whose time we know (kept releases and the current build). */
  known?: KnownBuilds;
  /** The kept release of a build id. */
  release?: (id: string) => BuildStamp | undefined;
  /** The OTA-mode question: tries and the wait for each (default 3 × 300 ms). */
  question?: { tries?: number; waitMs?: number };
  events?: EventSink;
}

export const DEFAULT_STATUS_TIMEOUT_MS = 3000;
/** Each board takes a TCP and a UDP socket while asked: 64 stays far below any fd limit. */
export const DEFAULT_STATUS_CONCURRENCY = 64;

interface WebReplAnswer {
  /** "open": the handshake and prompt came; "silent": TCP accepted, nothing more. */
  port: "open" | "silent" | "closed";
  access: WebReplAccess;
  uname?: RunningVersion;
  build?: BoardBuild;
  note?: string;
}

const SILENT_NOTE = "the port accepts TCP but gave no WebREPL handshake and prompt: " +
  "not MicroPython's WebREPL, or its app hangs";

/** A login that failed before the board's prompt: the port is not an answering WebREPL. */
const BEFORE_PROMPT = new RegExp(
  `waiting for (the WebSocket handshake reply|the '${PASSWORD_PROMPT}' prompt)|` +
    "not MicroPython's WebREPL",
);

async function askWebRepl(target: StatusTarget, timeoutMs: number): Promise<WebReplAnswer> {
  const { ip: host, port } = target.device;
  if ("missing" in target.password) {
    const hello = await webReplHello(host, port, timeoutMs);
    switch (hello) {
      case "webrepl":
        return {
          port: "open",
          access: "no password",
          note: `build not read: ${target.password.missing}`,
        };
      case "busy":
        return { port: "open", access: "failed", note: BUSY_NOTE };
      case "silent":
      case "not-webrepl":
        return { port: "silent", access: "no handshake", note: SILENT_NOTE };
      case "refused":
        return { port: "closed", access: "refused" };
      case "no-answer":
        return { port: "closed", access: "no answer" };
    }
  }
  try {
    const state = await readBoardState({
      host,
      port,
      password: target.password.value,
      timeoutMs,
    });
    return {
      port: "open",
      access: "logged in",
      uname: state.uname,
      ...(state.build ? { build: state.build } : {}),
    };
  } catch (e) {
    if (e instanceof DeviceUnreachableError) return { port: "closed", access: "no answer" };
    if (e instanceof WebReplError && e.cause instanceof Deno.errors.ConnectionRefused) {
      return { port: "closed", access: "refused" };
    }
    if (!(e instanceof OtaError)) throw e;
    if (BEFORE_PROMPT.test(e.message)) {
      return { port: "silent", access: "no handshake", note: SILENT_NOTE };
    }
    const denied = /Access denied/.test(e.message);
    return {
      port: "open",
      access: denied ? "wrong password" : "failed",
      note: denied ? "WebREPL: wrong password" : `WebREPL: ${e.message}`,
    };
  }
}

const BUSY_NOTE = "WebREPL: another client is connected (the board takes one at a time)";

/**
 * Asks one board both questions at once and puts the answers together. Needs `--allow-net`.
 */
export async function probeBoard(
  target: StatusTarget,
  options: StatusOptions = {},
): Promise<BoardStatus> {
  const { device } = target;
  const timeoutMs = options.timeoutMs ?? DEFAULT_STATUS_TIMEOUT_MS;
  const [web, ota] = await Promise.all([
    askWebRepl(target, timeoutMs),
    "sign" in target.signer
      ? askOtaMode(device.ip, device.port, target.signer, options.question)
      : Promise.resolve(null),
  ]);
  const state = boardState(web.port, ota);
  const build = web.build;
  const release = build?.id ? options.release?.(build.id) : undefined;
  const notes: string[] = [];
  if (web.note) notes.push(web.note);
  if (state === "offline") {
    notes.push(
      ota === null
        ? `no answer over WebREPL; OTA mode not asked: ${
          (target.signer as { missing: string }).missing
        }`
        : "no answer over WebREPL or UDP: offline, busy with another OTA session, or built for another key",
    );
  } else if (state === "app" && web.access === "logged in" && build === undefined) {
    notes.push("its answer to 'import ota' was not understood");
  }
  const moved = filesystemMoveProblem(build, options.manifest, false, device.name);
  if (moved) {
    notes.push(
      `dist's image would move its filesystem (flash_user_start ${
        formatHex(build!.flashUserStart!)
      } → ${
        formatHex(options.manifest!.flashUserStart!)
      }): deploy refuses unless --allow-filesystem-move`,
    );
  }
  return {
    name: device.name,
    ip: device.ip,
    port: device.port,
    state,
    webrepl: web.access,
    otaMode: ota,
    ...(web.uname
      ? { micropython: { release: web.uname.release, version: web.uname.version } }
      : {}),
    ...(build === undefined ? {} : {
      build: build.id
        ? { id: build.id, ...(build.version ? { version: build.version } : {}) }
        : null,
    }),
    comparison: compareBuild(build, options.manifest, options.known ?? (() => undefined)),
    ...(build?.flashUserStart === undefined
      ? {}
      : { flashUserStart: formatHex(build.flashUserStart) }),
    ...(release ? { release } : {}),
    ...(notes.length ? { note: notes.join("; ") } : {}),
  };
}

/**
 * Asks every board, `concurrency` at a time; rows in the targets' order; `onBoard` hears
 * each row as it comes (progress). Needs `--allow-net`.
 */
export async function probeFleet(
  targets: StatusTarget[],
  options: StatusOptions = {},
): Promise<StatusReport> {
  const events = options.events ?? NO_EVENTS;
  const ask = async (target: StatusTarget): Promise<BoardStatus> => {
    const device = target.device.name;
    events.emit({ type: "phase.started", phase: "probe", device });
    let row: BoardStatus;
    try {
      row = await probeBoard(target, options);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      events.emit({ type: "phase.ended", phase: "probe", device, ok: false, error });
      throw e;
    }
    events.emit({
      type: "device.status",
      device,
      status: row as unknown as Record<string, unknown>,
    });
    events.emit({ type: "phase.ended", phase: "probe", device, ok: true });
    return row;
  };
  const devices = await mapPool(
    targets,
    options.concurrency ?? DEFAULT_STATUS_CONCURRENCY,
    ask,
    (row, done) => options.onBoard?.(row, done, targets.length),
  );
  return { manifest: options.manifest ?? null, devices };
}
