/**
 * `deploy`: everything between a file and a device that booted it. Preflight first
 * (file kind, canned SHA1, image inspection, key), then the transfer, then the verdict
 * as a typed result or a typed error a person can act on.
 */
import { tcpPortOpen } from "../transfer/tcp_probe.ts";
import { decodeCanned, isCanned } from "../format/canned.ts";
import {
  BootCheckError,
  DeviceUnreachableError,
  FileError,
  type OtaError,
  UnsafeImageError,
} from "../errors.ts";
import { inspectImage, type InspectReport, summarizeProblems } from "../format/inspect.ts";
import { defaultBuildProblem, FIRMWARE_FILE, missingBuild } from "../build/build_outputs.ts";
import { basename, dirname } from "node:path";
import { loadSigningKey } from "../config/key_file.ts";
import {
  AUTO_BLOCKS,
  cannedSource,
  liveSource,
  type PacketSource,
} from "../transfer/packet_source.ts";
import { ENGINE_OPTIONS, sendFirmware, type SendOptions } from "../transfer/send_firmware.ts";
import { pick } from "../_pick.ts";
import { nativeSigner } from "../format/signer.ts";
import { formatHex } from "../_bytes.ts";
import { readFileUpTo, TooLargeError } from "../_fs.ts";
import { STANDARD_IROM_BASE } from "../format/image.ts";
import { resolveDeviceAddress } from "../transfer/resolve_device.ts";
import type { TransferFailure } from "../transfer/engine.ts";
import { trace } from "../trace.ts";

/** The transfer's options that `deploy` passes on to `sendFirmware` as they are. */
const SEND_OPTIONS = [
  ...ENGINE_OPTIONS,
  "port",
  "signal",
  "onProgress",
  "onStatus",
  "onSent",
  "traceTopic",
] as const satisfies readonly (keyof SendOptions)[];

export interface DeployRequest
  extends Pick<SendOptions, typeof SEND_OPTIONS[number] | "host" | "appRunning"> {
  /** Path of a raw image or a canned `.ota` file. */
  file: string;
  /**
   * Set when `file` is the default, `buildDir/firmware-ota.bin`: its manifest must describe
   * it (a file named on the command line is sent as it is).
   */
  buildDir?: string;
  keyPath: string;
  block: "auto" | number;
  force: boolean;
  appOffset: number;
  flashSize: number;
  onWarning?: (message: string) => void;
}

export interface DeployResult {
  ok: true;
  bytes: number;
  packets: number;
  retransmits: number;
  /** Transfer time, up to the end packet. */
  seconds: number;
  /** KiB per second over the transfer time. */
  kibps: number;
  /** @deprecated The same value as `kibps` (KiB/s, not kB/s), kept in `--json` for 0.1.x only. */
  kbps: number;
  block: number;
  paced: boolean;
  bootCheck: "passed" | "failed" | "skipped";
  attempts: number;
  recoveries: number;
  /** Including the boot check. */
  totalSeconds: number;
  /** What was sent: a raw image signed on the fly, or a canned `.ota` file. (`kind` is an error class.) */
  sent: "image" | "canned";
  fingerprint?: string;
  /** Sent with --force although it will not run: why the board will boot-loop. */
  bootLoop?: string;
}

export interface PreparedDeploy {
  source: PacketSource;
  kind: "image" | "canned";
  fingerprint?: string;
  /**
   * Set when --force sends an image boot8266 accepts (its MD5 trailer is right) but whose
   * code is linked for another address: the board will crash and reset again and again.
   */
  bootLoop?: string;
}

/**
 * Why a board would boot-loop on this image, if it would: boot8266 accepts it (MD5
 * right) and jumps into code linked for another address. Pure.
 */
export function bootLoopReason(report: InspectReport): string | undefined {
  const md5 = report.checks.find((c) => c.name === "md5");
  const link = report.checks.find((c) => c.name === "link address");
  if (!md5?.ok || !link || link.ok) return undefined;
  const at = report.link?.linkedAt;
  return at === undefined ? link.detail : `irom linked at ${at}, not ${report.expectedIromBase}` +
    (at === formatHex(STANDARD_IROM_BASE) ? ": a standard (non-OTA) build" : "");
}

/** How a deploy of such an image ends: what happens to the board, and the way back. Pure. */
export function bootLoopEnding(reason: string, host: string): string {
  return "the board will boot-loop: boot8266 accepts this image (its MD5 trailer is right) but " +
    `its code cannot run there (${reason}). It does not fall back to OTA mode by itself: press ` +
    "its BOOT button within 3 s of a reset, then send an OTA build ('deno task build-ota') with " +
    `'deno task deploy --ip ${host}'.`;
}

/** No ESP8266 has more flash than this: a longer file is not an image for one. */
const MAX_IMAGE_FILE = 16 * 1024 * 1024;

async function readFile(path: string): Promise<Uint8Array> {
  try {
    return await readFileUpTo(path, MAX_IMAGE_FILE);
  } catch (e) {
    if (e instanceof TooLargeError) {
      throw new FileError(
        `'${path}' holds more than ${MAX_IMAGE_FILE / 1024 / 1024} MiB (or never ends, as a ` +
          "device does): larger than any ESP8266 flash, so not an image for one. Name the image file.",
      );
    }
    // A build's output that is not there may have been moved aside by a failed build.
    if (e instanceof Deno.errors.NotFound && basename(path) === FIRMWARE_FILE) {
      throw await missingBuild(dirname(path));
    }
    if (e instanceof Deno.errors.NotFound) {
      throw new FileError(
        `no file at '${path}'. Build one with 'deno task build-ota', or name the image to send.`,
      );
    }
    throw new FileError(`cannot read '${path}': ${(e as Error).message}`);
  }
}

/**
 * Every check before the first datagram: the file, its SHA1 trailer if canned, the
 * image inspection, the key. @throws {CannedFileError | UnsafeImageError | KeyError | FileError}
 */
export async function prepareDeploy(request: DeployRequest): Promise<PreparedDeploy> {
  const topic = request.traceTopic ?? "deploy";
  const bytes = await readFile(request.file);
  trace(topic, `read ${request.file}: ${bytes.length} bytes`);
  if (request.buildDir !== undefined) {
    trace(topic, `the build's output: checking it against ${request.buildDir}/manifest.json`);
    const stale = await defaultBuildProblem(request.buildDir, bytes, request.appOffset);
    if (stale instanceof UnsafeImageError && request.force) {
      request.onWarning?.(`--force: ${stale.message}`);
    } else if (stale) throw stale;
  }
  const canned = isCanned(bytes) ? decodeCanned(bytes, request.file) : undefined;
  const image = canned ? canned.payload : bytes;
  const report = inspectImage(image, {
    appOffset: request.appOffset,
    flashSize: request.flashSize,
  });
  if (!report.safe) {
    const problems = summarizeProblems(report);
    if (!request.force) {
      throw new UnsafeImageError(
        `refusing to send '${request.file}': it is not a safe OTA image for app offset ${
          formatHex(request.appOffset)
        } (${problems}). yaota8266 updates in place with no fallback copy. See 'deno task inspect ${request.file}'; ` +
          `--force sends it anyway.`,
      );
    }
    request.onWarning?.(`--force: sending an image that failed inspection (${problems})`);
  }
  trace(
    topic,
    () =>
      `${
        canned ? `canned .ota file (block ${canned.block}, SHA1 trailer checked)` : "raw image"
      }; ` +
      `inspected for app offset ${formatHex(request.appOffset)}: ${
        report.safe ? "safe" : `NOT safe (${summarizeProblems(report)})`
      }`,
  );
  const bootLoop = report.safe ? undefined : bootLoopReason(report);
  if (canned) {
    if (request.block !== "auto" && request.block !== canned.block) {
      request.onWarning?.(
        `a canned file is sent as it is: its block size is ${canned.block}, not ${request.block}`,
      );
    }
    return { source: cannedSource(canned), kind: "canned", ...(bootLoop ? { bootLoop } : {}) };
  }
  const key = await loadSigningKey(request.keyPath, { onWarning: request.onWarning });
  const blocks = request.block === "auto" ? AUTO_BLOCKS : [request.block];
  let source: PacketSource;
  try {
    source = liveSource(image, nativeSigner(key), blocks);
  } catch (e) {
    throw new UnsafeImageError(`${(e as Error).message}: choose a smaller --block`);
  }
  trace(
    topic,
    () =>
      `key ${request.keyPath}: ${key.bits}-bit, fingerprint ${key.fingerprint}; block sizes ` +
      `${source.blocks.join(", ")}` +
      (source.blocks.length < blocks.length
        ? ` (${
          blocks.filter((b) => !source.blocks.includes(b)).join(", ")
        } left out: with a ${key.bits}-bit signature its datagram would not fit 1472 bytes)`
        : "") +
      "; signed on the fly, a worker signing ahead",
  );
  return { source, kind: "image", fingerprint: key.fingerprint, ...(bootLoop ? { bootLoop } : {}) };
}

function failureError(
  failure: TransferFailure,
  request: DeployRequest,
  prepared: PreparedDeploy,
): Error {
  const where = `${request.host}:${request.port}`;
  switch (failure.kind) {
    case "no-answer":
      if (failure.unmatched > 0) {
        return new DeviceUnreachableError(
          `${where} answered ${failure.unmatched} times in ${
            Math.max(request.timeoutMs, request.firstAnswerMs ?? 0) / 1000
          } s, but never for a packet that was sent (other offsets or lengths): nothing was ` +
            `confirmed and no end packet was sent. Is it a yaota8266 device, and the only ` +
            `sender to it? Check the address and port, stop any other deploy to it, then run deploy again.`,
        );
      }
      return new DeviceUnreachableError(
        `no answer from ${where} in ${
          Math.max(request.timeoutMs, request.firstAnswerMs ?? 0) / 1000
        } s: nothing was written. The device may not be in OTA mode ` +
          `(run 'deno task trigger --ip ${request.host}', or press its button within 3 s of a reset), the address may be wrong, ` +
          `or the device was built for another key` +
          (prepared.fingerprint
            ? ` (this file is signed with key ${prepared.fingerprint}; check with 'deno task verify')`
            : ` (check with 'deno task verify')`) +
          ".",
      );
    case "stopped-answering":
      return new DeviceUnreachableError(
        `the device at ${where} stopped answering after confirming ${failure.confirmed} bytes ` +
          `(${(failure.silentMs / 1000).toFixed(0)} s without a reply that confirmed a packet${
            failure.unmatched > 0
              ? `; ${failure.unmatched} replies for other offsets do not count`
              : ""
          }). No end packet was sent, so its app region is incomplete ` +
          `but its OTA server is intact: it restarts its session by itself after 10 s and running deploy again is safe.`,
      );
    case "not-in-ota-mode":
      return new DeviceUnreachableError(
        `${where} refused the packet at once (ICMP port unreachable): the board is reachable but ` +
          `not in OTA mode, it runs its app. Nothing was written. Switch it to OTA mode over ` +
          `WebREPL and send the image: 'deno task deploy --ip ${request.host} --trigger' (or ` +
          `reset it, press its button within 3 s and deploy again).`,
      );
    case "overall-limit":
      return new DeviceUnreachableError(
        `gave up on ${where} after ${
          (failure.limitMs / 1000).toFixed(0)
        } s, the bound for an image of this size, with ${failure.confirmed} bytes confirmed${
          failure.unmatched > 0 ? ` and ${failure.unmatched} replies for other offsets` : ""
        }. No end packet was sent, so its OTA server is intact: it restarts its session by ` +
          `itself after 10 s. Check the link and that nothing else sends to it, then run deploy again.`,
      );
    case "boot-failed":
      return new BootCheckError(
        `the device did not boot the new image after ${failure.attempts} attempts: it fell back to OTA mode. ` +
          `Check the image with 'deno task inspect ${request.file} --app-offset ${
            formatHex(request.appOffset)
          }': ` +
          `is it built for this app offset and does its MD5 trailer match?`,
      );
    case "unstable":
      return new DeviceUnreachableError(
        `the device at ${where} restarted its session ${failure.recoveries} times during this deploy: the ` +
          `link drops out for 10 s and more again and again. Each time it was left recoverable over the air; ` +
          `move the board or the access point, then run deploy again.`,
      );
    case "end-ignored":
      return new DeviceUnreachableError(
        `the device at ${where} confirmed every byte but did not take the end packet. It restarts its session ` +
          `after 10 s; running deploy again is safe.`,
      );
  }
}

/**
 * Preflight, transfer, verdict. The address is checked and a host name looked up first:
 * a bad or unresolvable address fails at once (`AddressError`), not after the timeout.
 * @throws typed errors (see lib/errors.ts)
 */
export async function deploy(
  request: DeployRequest,
  prepared?: PreparedDeploy,
): Promise<DeployResult> {
  const address = await resolveDeviceAddress(request.host);
  const ready = prepared ?? await prepareDeploy(request);
  const outcome = await sendFirmware({
    ...pick(request, SEND_OPTIONS),
    host: address,
    source: ready.source,
    // The app's WebREPL port accepting a connection ends the boot check at once.
    appRunning: request.appRunning ?? (() => tcpPortOpen(address, request.port)),
  });
  if (!outcome.ok) {
    const error = failureError(outcome.failure, request, ready) as OtaError;
    error.details = {
      bytes: outcome.confirmed,
      packets: outcome.packets,
      retransmits: outcome.retransmits,
      seconds: Number(outcome.seconds.toFixed(3)),
      kibps: outcome.seconds > 0
        ? Number((outcome.confirmed / 1024 / outcome.seconds).toFixed(2))
        : 0,
      block: outcome.block,
      paced: request.pace,
    };
    throw error;
  }
  const s = outcome.summary;
  const seconds = s.transferMs / 1000;
  return {
    ok: true,
    bytes: s.bytes,
    packets: s.packets,
    retransmits: s.retransmits,
    seconds: Number(seconds.toFixed(3)),
    kibps: Number((s.bytes / 1024 / seconds).toFixed(2)),
    kbps: Number((s.bytes / 1024 / seconds).toFixed(2)),
    block: s.block,
    paced: s.paced,
    bootCheck: s.bootCheck,
    attempts: s.attempts,
    recoveries: s.recoveries,
    totalSeconds: Number(outcome.seconds.toFixed(3)),
    sent: ready.kind,
    ...(ready.fingerprint ? { fingerprint: ready.fingerprint } : {}),
    ...(ready.bootLoop ? { bootLoop: ready.bootLoop } : {}),
  };
}
