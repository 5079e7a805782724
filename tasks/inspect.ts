/**
 * `deno task inspect FILE [--app-offset 0x3c000] [--flash-size 1M] [--json]`: is this
 * image safe to push to a yaota8266 device at that offset? Exit code 0 only if it is.
 */
import {
  appOffsetOpt,
  type CommandSpec,
  flashSizeOpt,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import { EXIT } from "../lib/exit_codes.ts";
import { FileError, UnsafeImageError, UsageError } from "../lib/errors.ts";
import type { KnownModulus } from "../lib/format/bootloader_image.ts";
import { identifyFile } from "../lib/format/file_kind.ts";
import { hexOffsets } from "../lib/cli/json_report.ts";
import { loadPublicKey } from "../lib/config/key_file.ts";
import { inspectImage, summarizeProblems } from "../lib/format/inspect.ts";
import { renderInspectReport } from "../lib/cli/inspect_report.ts";
import { fail, print, printJson, warn } from "../lib/cli/output.ts";
import { resolveAppOffset, resolveKeyPath } from "../lib/config/values.ts";

export const spec: CommandSpec = {
  name: "inspect",
  summary:
    "Check a firmware image: is it a valid OTA image that yaota8266 can boot at the app offset?",
  positionals: "FILE",
  options: {
    "app-offset": {
      type: "string",
      arg: "ADDR",
      help: "MAIN_APP_OFFSET of the device (default: config appOffset, else 0x3c000)",
    },
    "flash-size": {
      type: "string",
      arg: "SIZE",
      help: "flash size of the device, e.g. 1M, 4M (default: config flashSize, else 1M)",
    },
    key: {
      type: "string",
      arg: "FILE",
      help:
        "for a yaota8266.bin: the key to look for in it (default: 'key' in ota.config.json, else keys/priv.key if there)",
    },
    json: { type: "boolean", help: "print one JSON object instead of the report" },
  },
  notes: [
    "Checks the ESP8266 header and segments, the segment checksum, the RAM part (under 0x9000), " +
    "the length word at 0x8ffc, the MD5 trailer as boot8266 checks it, the irom link address " +
    "(from the pointers in the image: a standard build links at 0x40209000 and boot-loops), " +
    "and the size against the flash above the app offset. Exit code 0 only for an image that " +
    "is safe to push to that offset.",
    "A file that is not an ESP8266 image is named (the yaota8266 bootloader, a signed .ota file, " +
    "an ESP32 or MCUboot image, an ELF file, an empty file) with what to do instead. For a " +
    "yaota8266.bin it tells whether its boot8266 has the software trigger (the RTC magic that " +
    "'deno task trigger' writes), the app offset it was built for and whether it holds your key.",
  ],
  examples: ["deno task inspect dist/firmware-ota.bin", "deno task inspect fw.bin --json"],
};

export interface InspectArgs {
  file: string;
  appOffset?: number;
  flashSize?: number;
  json: boolean;
  keyPath?: string;
  config?: string;
}

export function toInspectArgs(args: ParsedArgs): InspectArgs {
  const [file, ...extra] = args.positionals;
  if (file === undefined) throw new UsageError("name the image to inspect: inspect FILE");
  if (extra.length) throw new UsageError(`one FILE only, got also '${extra.join("' '")}'`);
  return {
    file,
    appOffset: appOffsetOpt(args.values),
    flashSize: flashSizeOpt(args.values),
    json: args.values.json === true,
    keyPath: stringOpt(args.values, "key"),
    config: stringOpt(args.values, "config"),
  };
}

/** Parses the command line. Pure. @throws {UsageError} */
export function parseInspectArgs(argv: string[]): InspectArgs {
  return toInspectArgs(parseCommandArgs(spec, argv));
}

/** The user's key as a modulus to look for; a default key that is absent is no error. */
async function keysToLookFor(path: string, named: boolean): Promise<KnownModulus[]> {
  try {
    const key = await loadPublicKey(path, { onWarning: warn });
    return [{ label: `your key ${path} (${key.fingerprint})`, modulus: key.modulus }];
  } catch (e) {
    if (named) throw e;
    return [];
  }
}

export async function main({ args }: TaskContext): Promise<number | void> {
  const options = toInspectArgs(args);
  const config = await loadConfig(options.config);
  let image: Uint8Array;
  try {
    image = await Deno.readFile(options.file);
  } catch (e) {
    throw new FileError(`cannot read the image '${options.file}': ${(e as Error).message}`);
  }
  // A key only matters for a bootloader: is it built for yours?
  const keys = identifyFile(image).id === "yaota8266"
    ? await keysToLookFor(resolveKeyPath(options.keyPath, config), options.keyPath !== undefined)
    : [];
  const report = inspectImage(image, {
    appOffset: resolveAppOffset(options.appOffset, config),
    flashSize: options.flashSize ?? config.flashSize,
    keys,
  });
  if (options.json) {
    printJson(hexOffsets({
      ok: report.safe,
      ...(report.safe ? {} : { kind: UnsafeImageError.name }),
      file: options.file,
      ...report,
    }));
  } else {
    for (const line of renderInspectReport(report, options.file)) print(line);
    if (report.fileKind.id !== "esp8266") {
      fail(`${options.file} is ${report.fileKind.name}: ${report.fileKind.next}`);
    } else if (!report.safe) {
      fail(`${options.file} is not safe to push: ${summarizeProblems(report)}`);
    }
  }
  return report.safe ? EXIT.ok : EXIT.unsafeImage;
}

if (import.meta.main) runTask(spec, main);
