/**
 * `deno task sign FIRMWARE [--key K] [--block 256] [--out FILE] [--json]`: signs a
 * firmware image into a canned `.ota` file (docs/device.md, "Canned .ota files"): every packet as
 * it goes on the wire, the end packets, and a SHA1 trailer. The image is inspected
 * first and refused unless it is safe to push to the app offset (or `--force`).
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { encodeCanned, firmwarePackets, isCanned } from "../lib/format/canned.ts";
import {
  appOffsetOpt,
  boolOpt,
  type CommandSpec,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import { FileError, UnsafeImageError, UsageError } from "../lib/errors.ts";
import { inspectImage, summarizeProblems } from "../lib/format/inspect.ts";
import { loadSigningKey } from "../lib/config/key_file.ts";
import { DEFAULT_KEY_PATH, resolveAppOffset } from "../lib/config/values.ts";
import {
  bold,
  formatBytes,
  formatSeconds,
  print,
  printJson,
  red,
  warn,
} from "../lib/cli/output.ts";
import { datagramSize, END_PACKET_COPIES, SECTOR_SIZE } from "../lib/format/packet.ts";
import { MAX_UNFRAGMENTED } from "../lib/transfer/packet_source.ts";
import { nativeSigner } from "../lib/format/signer.ts";
import { folderProblem, isDir } from "../lib/_fs.ts";
import { formatHex, toHex } from "../lib/_bytes.ts";

/** Block sizes that divide the device's 4 KiB buffer (docs/device.md, "Wire protocol", rule 5). */
export const BLOCK_SIZES = [256, 512, 1024, 2048, 4096];
/** The original client's block size: datagrams over 548 bytes got lost on some networks. */
export const DEFAULT_BLOCK = 256;

export const spec: CommandSpec = {
  name: "sign",
  summary: "Sign a firmware image into a canned .ota file (the packets as they go on the wire).",
  positionals: "FIRMWARE",
  options: {
    key: {
      type: "string",
      arg: "FILE",
      help: `private key (default: config key, else ${DEFAULT_KEY_PATH})`,
    },
    block: {
      type: "string",
      arg: "BYTES",
      help: `data bytes per packet: ${BLOCK_SIZES.join(", ")} (default: ${DEFAULT_BLOCK})`,
    },
    out: {
      type: "string",
      arg: "FILE",
      help: "output file (default: FIRMWARE with .bin replaced by .ota)",
    },
    "app-offset": {
      type: "string",
      arg: "ADDR",
      help: "MAIN_APP_OFFSET the image must be safe for (default: config appOffset, else 0x3c000)",
    },
    force: {
      type: "boolean",
      help: "sign an image that inspection says is NOT safe to push (it may not boot)",
    },
    json: { type: "boolean", help: "print one JSON object instead of the summary" },
  },
  notes: [
    "The block size must divide the device's 4096-byte buffer, and a request (12 header " +
    "bytes, the block, padding to 16, the signature) must fit one unfragmented UDP payload " +
    `(${MAX_UNFRAGMENTED} bytes): the device reads only the first fragment. With a 2048-bit ` +
    "key that allows blocks up to 1024 bytes.",
    "Before signing, the image gets the checks of 'deno task inspect' for the app offset; " +
    "an image that is not safe to push is refused unless --force.",
  ],
  examples: [
    "deno task sign dist/firmware-ota.bin",
    "deno task sign fw.bin --key keys/priv.key --block 512 --out fw-512.ota --json",
  ],
};

export interface SignArgs {
  firmware: string;
  key?: string;
  block: number;
  out?: string;
  appOffset?: number;
  force: boolean;
  json: boolean;
  config?: string;
}

/** `dist/firmware-ota.bin` → `dist/firmware-ota.ota`; other names get `.ota` appended. Pure. */
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

export function toSignArgs(args: ParsedArgs): SignArgs {
  const [firmware, ...extra] = args.positionals;
  if (firmware === undefined) throw new UsageError("name the firmware image: sign FIRMWARE");
  if (extra.length) throw new UsageError(`one FIRMWARE only, got also '${extra.join("' '")}'`);
  const blockText = stringOpt(args.values, "block");
  const block = blockText === undefined ? DEFAULT_BLOCK : Number(blockText);
  if (!BLOCK_SIZES.includes(block)) {
    throw new UsageError(
      `--block expects one of ${BLOCK_SIZES.join(", ")} (it must divide the device's ` +
        `${SECTOR_SIZE}-byte buffer), got '${blockText}'`,
    );
  }
  const out = stringOpt(args.values, "out");
  if (out !== undefined && resolve(out) === resolve(firmware)) {
    throw new UsageError(`--out '${out}' is the firmware itself: name another file`);
  }
  return {
    firmware,
    key: stringOpt(args.values, "key"),
    block,
    out,
    appOffset: appOffsetOpt(args.values),
    force: boolOpt(args.values, "force"),
    json: boolOpt(args.values, "json"),
    config: stringOpt(args.values, "config"),
  };
}

/** Parses the command line. Pure. @throws {UsageError} */
export function parseSignArgs(argv: string[]): SignArgs {
  return toSignArgs(parseCommandArgs(spec, argv));
}

const sha1 = (bytes: Uint8Array) =>
  toHex(new Uint8Array(createHash("sha1").update(bytes).digest()));

/** Writes `bytes` to a temporary file beside `path`, then renames it: no half-written .ota. */
async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.mkdir(dirname(resolve(path)), { recursive: true });
    await Deno.writeFile(temp, bytes);
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw new FileError(`cannot write '${path}': ${(e as Error).message}`);
  }
}

export async function main({ args }: TaskContext): Promise<number | void> {
  const options = toSignArgs(args);
  const config = await loadConfig(options.config);
  const keyPath = options.key ?? config.key ?? DEFAULT_KEY_PATH;
  const appOffset = resolveAppOffset(options.appOffset, config);
  const out = options.out ?? defaultOtaPath(options.firmware);

  // Check everything before signing: where it goes, key, block size, image.
  if (await isDir(out)) {
    throw new FileError(
      `--out '${out}' is a folder: name the .ota file to write, e.g. --out ${
        join(out, basename(defaultOtaPath(options.firmware)))
      }`,
    );
  }
  const outProblem = await folderProblem(dirname(out));
  if (outProblem !== undefined) throw new FileError(`cannot write '${out}': ${outProblem}`);
  const key = await loadSigningKey(keyPath, { onWarning: warn });
  checkBlockFits(options.block, key.modulus.length);
  let firmware: Uint8Array;
  try {
    firmware = await Deno.readFile(options.firmware);
  } catch (e) {
    throw new FileError(
      `cannot read the firmware '${options.firmware}': ${(e as Error).message}`,
    );
  }
  if (isCanned(firmware)) {
    throw new FileError(
      `'${options.firmware}' is already a signed canned .ota file: sign the firmware image ` +
        "(e.g. dist/firmware-ota.bin) instead",
    );
  }
  if (firmware.length === 0) throw new FileError(`'${options.firmware}' is empty`);
  const report = inspectImage(firmware, { appOffset, flashSize: config.flashSize });
  const problems = report.safe ? undefined : summarizeProblems(report);
  if (problems !== undefined) {
    if (!options.force) {
      throw new UnsafeImageError(
        `${options.firmware} is not safe to push to app offset ${formatHex(appOffset)}: ` +
          `${problems}. Nothing was signed. See 'deno task inspect ${options.firmware}'; ` +
          "sign it anyway with --force.",
      );
    }
    warn(
      bold(red(
        `--force: signing ${options.firmware} although it is NOT safe to push to app offset ` +
          `${formatHex(appOffset)}: ${problems}. A device that receives it may not boot it, ` +
          "or may boot-loop until re-flashed over serial.",
      )),
    );
  }

  const started = performance.now();
  const packets = firmwarePackets(firmware, options.block, nativeSigner(key));
  const canned = encodeCanned(packets);
  const seconds = (performance.now() - started) / 1000;
  await writeAtomically(out, canned);

  const dataPackets = packets.length - END_PACKET_COPIES;
  const trailer = toHex(canned.subarray(canned.length - 20));
  if (options.json) {
    printJson({
      ok: true,
      out,
      firmware: options.firmware,
      firmwareBytes: firmware.length,
      firmwareSha1: sha1(firmware),
      packets: dataPackets,
      endPackets: END_PACKET_COPIES,
      bytes: canned.length,
      block: options.block,
      datagramBytes: datagramSize(options.block, key.modulus.length),
      key: keyPath,
      bits: key.bits,
      fingerprint: key.fingerprint,
      sha1: trailer,
      appOffset: formatHex(appOffset),
      safe: report.safe,
      forced: problems !== undefined,
      seconds: Math.round(seconds * 1000) / 1000,
    });
    return;
  }
  print(
    `wrote ${out}: ${dataPackets} packets of up to ${options.block} bytes + ` +
      `${END_PACKET_COPIES} end packets, ${canned.length} bytes (${formatBytes(canned.length)})`,
  );
  print(
    `firmware ${options.firmware}: ${firmware.length} bytes, sha1 ${sha1(firmware)}` +
      (problems === undefined ? `, safe to push to app offset ${formatHex(appOffset)}` : ""),
  );
  print(`key ${keyPath}: ${key.bits}-bit, fingerprint ${key.fingerprint}`);
  print(`sha1 ${trailer} (file trailer)`);
  print(`signed in ${seconds < 1 ? `${Math.round(seconds * 1000)} ms` : formatSeconds(seconds)}`);
}

if (import.meta.main) runTask(spec, main);
