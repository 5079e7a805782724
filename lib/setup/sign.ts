/**
 * `sign`: a firmware image into a canned `.ota` file (docs/device.md, "Canned .ota files"):
 * every packet as it goes on the wire, the end packets, and a SHA1 trailer, byte-identical
 * to the original client's. Checks first (where it goes, the key, the block size, the
 * image's inspection), then signs and writes atomically. The task prints the result.
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { encodeCanned, firmwarePackets, isCanned } from "../format/canned.ts";
import { FileError, UnsafeImageError, UsageError } from "../errors.ts";
import { inspectImage, summarizeProblems } from "../format/inspect.ts";
import { loadSigningKey } from "../config/key_file.ts";
import { datagramSize, END_PACKET_COPIES } from "../format/packet.ts";
import { MAX_UNFRAGMENTED } from "../transfer/packet_source.ts";
import { nativeSigner } from "../format/signer.ts";
import { folderProblem, isDir, writeFileAtomically } from "../_fs.ts";
import { formatHex, toHex } from "../_bytes.ts";

/** Block sizes that divide the device's 4 KiB buffer (docs/device.md, "Wire protocol", rule 5). */
export const BLOCK_SIZES = [256, 512, 1024, 2048, 4096];
/** The original client's block size: datagrams over 548 bytes got lost on some networks. */
export const DEFAULT_BLOCK = 256;

/**
 * `dist/firmware-ota.bin` → `dist/firmware-ota.ota`; other names get `.ota` appended. Pure.
 * @example
 * ```ts
 * import { defaultOtaPath } from "./sign.ts";
 * if (defaultOtaPath("dist/firmware-ota.bin") !== "dist/firmware-ota.ota") throw new Error();
 * ```
 */
export function defaultOtaPath(firmware: string): string {
  return /\.bin$/i.test(firmware) ? firmware.slice(0, -4) + ".ota" : firmware + ".ota";
}

/**
 * Checks that `block` packets fit one unfragmented datagram with a key whose signatures
 * are `signatureLength` bytes. Pure.
 * @throws {UsageError} Naming the datagram size and the largest block that fits.
 */
export function checkBlockFits(block: number, signatureLength: number): void {
  const size = datagramSize(block, signatureLength);
  if (size <= MAX_UNFRAGMENTED) return;
  const fits = BLOCK_SIZES.filter((b) => datagramSize(b, signatureLength) <= MAX_UNFRAGMENTED);
  throw new UsageError(
    `--block ${block} with a ${signatureLength * 8}-bit key makes ${size}-byte datagrams, over ` +
      `the ${MAX_UNFRAGMENTED} bytes of one unfragmented UDP payload: the device reads only ` +
      `the first fragment, so no packet would verify. ` +
      (fits.length ? `Use --block ${fits.at(-1)} or smaller.` : "No block size fits this key."),
  );
}

export interface SignRequest {
  /** The raw firmware image. */
  firmware: string;
  /** The `.ota` file to write (default: `defaultOtaPath(firmware)`). */
  out?: string;
  keyPath: string;
  block: number;
  /** The app offset the image must be safe to push to. */
  appOffset: number;
  flashSize?: number;
  /** Sign an image that failed inspection (it may not boot). */
  force: boolean;
  /** The key file is open to other users. */
  onWarning?: (message: string) => void;
  /** With `force`: the image failed inspection, and why; said before signing. */
  onUnsafe?: (message: string) => void;
}

export interface SignResult {
  out: string;
  firmware: string;
  firmwareBytes: number;
  firmwareSha1: string;
  /** Data packets, without the end packets. */
  packets: number;
  endPackets: number;
  /** Bytes of the `.ota` file. */
  bytes: number;
  block: number;
  datagramBytes: number;
  keyPath: string;
  bits: number;
  fingerprint: string;
  /** The file's SHA1 trailer. */
  sha1: string;
  appOffset: number;
  safe: boolean;
  /** Signed with `force` although it failed inspection: the problems found. */
  problems?: string;
  seconds: number;
}

const sha1 = (bytes: Uint8Array) =>
  toHex(new Uint8Array(createHash("sha1").update(bytes).digest()));

/**
 * Signs `request.firmware` into a canned `.ota` file, checking everything first.
 * @throws {FileError} The output is a folder or cannot be written, the firmware is
 *   unreadable, empty or already a canned file.
 * @throws {KeyError} The key cannot be used.
 * @throws {UsageError} The block does not fit one datagram with this key.
 * @throws {UnsafeImageError} The image is not safe to push to the app offset (without `force`).
 * Needs --allow-read and --allow-write.
 */
export async function signFirmware(request: SignRequest): Promise<SignResult> {
  const { appOffset } = request;
  const out = request.out ?? defaultOtaPath(request.firmware);
  if (await isDir(out)) {
    throw new FileError(
      `--out '${out}' is a folder: name the .ota file to write, e.g. --out ${
        join(out, basename(defaultOtaPath(request.firmware)))
      }`,
    );
  }
  const outProblem = await folderProblem(dirname(out));
  if (outProblem !== undefined) throw new FileError(`cannot write '${out}': ${outProblem}`);
  const key = await loadSigningKey(request.keyPath, { onWarning: request.onWarning });
  checkBlockFits(request.block, key.modulus.length);
  let firmware: Uint8Array;
  try {
    firmware = await Deno.readFile(request.firmware);
  } catch (e) {
    throw new FileError(
      `cannot read the firmware '${request.firmware}': ${(e as Error).message}`,
    );
  }
  if (isCanned(firmware)) {
    throw new FileError(
      `'${request.firmware}' is already a signed canned .ota file: sign the firmware image ` +
        "(e.g. dist/firmware-ota.bin) instead",
    );
  }
  if (firmware.length === 0) throw new FileError(`'${request.firmware}' is empty`);
  const report = inspectImage(firmware, { appOffset, flashSize: request.flashSize });
  const problems = report.safe ? undefined : summarizeProblems(report);
  if (problems !== undefined) {
    if (!request.force) {
      throw new UnsafeImageError(
        `${request.firmware} is not safe to push to app offset ${formatHex(appOffset)}: ` +
          `${problems}. Nothing was signed. See 'deno task inspect ${request.firmware}'; ` +
          "sign it anyway with --force.",
      );
    }
    request.onUnsafe?.(
      `--force: signing ${request.firmware} although it is NOT safe to push to app offset ` +
        `${formatHex(appOffset)}: ${problems}. A device that receives it may not boot it, ` +
        "or may boot-loop until re-flashed over serial.",
    );
  }

  const started = performance.now();
  const packets = firmwarePackets(firmware, request.block, nativeSigner(key));
  const canned = encodeCanned(packets);
  const seconds = (performance.now() - started) / 1000;
  try {
    await Deno.mkdir(dirname(resolve(out)), { recursive: true });
  } catch (e) {
    throw new FileError(`cannot write '${out}': ${(e as Error).message}`);
  }
  await writeFileAtomically(out, canned);
  return {
    out,
    firmware: request.firmware,
    firmwareBytes: firmware.length,
    firmwareSha1: sha1(firmware),
    packets: packets.length - END_PACKET_COPIES,
    endPackets: END_PACKET_COPIES,
    bytes: canned.length,
    block: request.block,
    datagramBytes: datagramSize(request.block, key.modulus.length),
    keyPath: request.keyPath,
    bits: key.bits,
    fingerprint: key.fingerprint,
    sha1: toHex(canned.subarray(canned.length - 20)),
    appOffset,
    safe: report.safe,
    ...(problems === undefined ? {} : { problems }),
    seconds,
  };
}
