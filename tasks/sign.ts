/**
 * `deno task sign FIRMWARE [--key K] [--block 256] [--out FILE] [--json]`: signs a
 * firmware image into a canned `.ota` file (lib/setup/sign.ts; docs/device.md, "Canned .ota
 * files"). The image is inspected first and refused unless it is safe to push to the app
 * offset (or `--force`).
 */
import { resolve } from "node:path";
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
import { UsageError } from "../lib/errors.ts";
import { KEY_OPTION } from "../lib/cli/shared_options.ts";
import { resolveAppOffset, resolveKeyPath } from "../lib/config/values.ts";
import {
  bold,
  formatBytes,
  formatSeconds,
  print,
  printJson,
  red,
  warn,
} from "../lib/cli/output.ts";
import { SECTOR_SIZE } from "../lib/format/packet.ts";
import { MAX_UNFRAGMENTED } from "../lib/transfer/packet_source.ts";
import { BLOCK_SIZES, DEFAULT_BLOCK, signFirmware } from "../lib/setup/sign.ts";
import { formatHex } from "../lib/_bytes.ts";

export const spec: CommandSpec = {
  name: "sign",
  summary: "Sign a firmware image into a canned .ota file (the packets as they go on the wire).",
  positionals: "FIRMWARE",
  options: {
    key: KEY_OPTION,
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
  keyPath?: string;
  block: number;
  out?: string;
  appOffset?: number;
  force: boolean;
  json: boolean;
  config?: string;
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
    keyPath: stringOpt(args.values, "key"),
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

export async function main({ args }: TaskContext): Promise<number | void> {
  const options = toSignArgs(args);
  const config = await loadConfig(options.config);
  const appOffset = resolveAppOffset(options.appOffset, config);
  const r = await signFirmware({
    firmware: options.firmware,
    ...(options.out === undefined ? {} : { out: options.out }),
    keyPath: resolveKeyPath(options.keyPath, config),
    block: options.block,
    appOffset,
    flashSize: config.flashSize,
    force: options.force,
    onWarning: warn,
    onUnsafe: (message) => warn(bold(red(message))),
  });
  if (options.json) {
    printJson({
      ok: true,
      out: r.out,
      firmware: r.firmware,
      firmwareBytes: r.firmwareBytes,
      firmwareSha1: r.firmwareSha1,
      packets: r.packets,
      endPackets: r.endPackets,
      bytes: r.bytes,
      block: r.block,
      datagramBytes: r.datagramBytes,
      key: r.keyPath,
      bits: r.bits,
      fingerprint: r.fingerprint,
      sha1: r.sha1,
      appOffset: formatHex(r.appOffset),
      safe: r.safe,
      forced: r.problems !== undefined,
      seconds: Math.round(r.seconds * 1000) / 1000,
    });
    return;
  }
  print(
    `wrote ${r.out}: ${r.packets} packets of up to ${r.block} bytes + ` +
      `${r.endPackets} end packets, ${r.bytes} bytes (${formatBytes(r.bytes)})`,
  );
  print(
    `firmware ${r.firmware}: ${r.firmwareBytes} bytes, sha1 ${r.firmwareSha1}` +
      (r.problems === undefined ? `, safe to push to app offset ${formatHex(r.appOffset)}` : ""),
  );
  print(`key ${r.keyPath}: ${r.bits}-bit, fingerprint ${r.fingerprint}`);
  print(`sha1 ${r.sha1} (file trailer)`);
  print(
    `signed in ${r.seconds < 1 ? `${Math.round(r.seconds * 1000)} ms` : formatSeconds(r.seconds)}`,
  );
}

if (import.meta.main) runTask(spec, main);
