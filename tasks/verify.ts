/**
 * `deno task verify`: cross-checks the key, its public half, config.h's MODULUS, the
 * key compiled into yaota8266.bin and the firmware image. One line per check; exit 0
 * only if all pass.
 */
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
import { fail, log, print, printJson, warn } from "../lib/cli/output.ts";
import { formatCheck, verifySummary } from "../lib/cli/verify_report.ts";
import { hexOffsets } from "../lib/cli/json_report.ts";
import { UsageError } from "../lib/errors.ts";
import { DEFAULT_KEY_PATH } from "../lib/config/values.ts";
import { verifyFiles, type VerifyPaths } from "../lib/setup/verify_files.ts";

export const spec: CommandSpec = {
  name: "verify",
  positionals: "[FIRMWARE]",
  summary:
    "Check that your key, config.h, yaota8266.bin and firmware image belong together and are safe to flash.",
  options: {
    key: {
      type: "string",
      arg: "FILE",
      help:
        `your signing key (default: 'key' in ota.config.json, else ${DEFAULT_KEY_PATH}); a public key works too`,
    },
    bootloader: {
      type: "string",
      arg: "FILE",
      help: "the yaota8266.bin to check (default: dist/yaota8266.bin)",
    },
    "config-h": {
      type: "string",
      arg: "FILE",
      help: "yaota8266's config.h (default: config.h in 'yaota8266' of ota.config.json)",
    },
    firmware: {
      type: "string",
      arg: "FILE",
      help: "the OTA firmware image, as FIRMWARE (default: dist/firmware-ota.bin)",
    },
    "app-offset": {
      type: "string",
      arg: "ADDR",
      help: "MAIN_APP_OFFSET (default: 'appOffset' in ota.config.json, else 0x3c000)",
    },
    json: {
      type: "boolean",
      help:
        "print one JSON object {ok, counts: {passed, failed, skipped}, checks: [{name, result, detail, " +
        "warning?}], bootloader?: {softwareTrigger, appOffset (hex), …}}",
    },
  },
  notes: [
    "A file left at its default path is skipped when it is not there; a file you name must exist.",
    "The public key is pub.key next to the private key. Other key files in that folder are used to " +
    "name the key a mismatching bootloader was built for.",
    "The bootloader line also tells whether its boot8266 has the software trigger (enters OTA " +
    "mode on the RTC magic that 'deno task trigger' writes; 'warn' when it has not: such a board " +
    "enters OTA mode only with its BOOT button) and the app offset it was built for.",
  ],
  examples: [
    "deno task verify",
    "deno task verify --bootloader ~/yaota8266/yaota8266.bin --config-h ~/yaota8266/config.h",
    "deno task verify build-GENERIC/firmware-ota.bin --json",
  ],
};

export interface VerifyArgs {
  paths: VerifyPaths;
  appOffset?: number;
  json: boolean;
  config?: string;
}

/** Validates the parsed flags; pure. @throws {UsageError} */
export function toVerifyArgs(args: ParsedArgs): VerifyArgs {
  const v = args.values;
  const [file, ...extra] = args.positionals;
  if (extra.length) {
    throw new UsageError(`one FIRMWARE only, got '${args.positionals.join("' '")}'`);
  }
  const firmware = stringOpt(v, "firmware");
  if (file !== undefined && firmware !== undefined) {
    throw new UsageError(`FIRMWARE '${file}' and --firmware '${firmware}': give one`);
  }
  return {
    paths: {
      keyPath: stringOpt(v, "key"),
      bootloader: stringOpt(v, "bootloader"),
      configH: stringOpt(v, "config-h"),
      firmware: file ?? firmware,
    },
    appOffset: appOffsetOpt(v),
    json: boolOpt(v, "json"),
    config: stringOpt(v, "config"),
  };
}

/** Parses `deno task verify` arguments; pure. @throws {UsageError} */
export function parseVerifyArgs(argv: string[]): VerifyArgs {
  return toVerifyArgs(parseCommandArgs(spec, argv));
}

export async function main(ctx: TaskContext): Promise<number | void> {
  const args = toVerifyArgs(ctx.args);
  const config = await loadConfig(args.config);
  const report = await verifyFiles(args.paths, {
    config,
    appOffset: args.appOffset,
    onWarning: warn,
  });
  if (args.json) {
    printJson(hexOffsets(report));
    return report.ok ? 0 : 1;
  }
  for (const check of report.checks) print(formatCheck(check));
  const line = verifySummary(report.checks);
  if (report.ok) log(line);
  else fail(line);
  return report.ok ? 0 : 1;
}

if (import.meta.main) runTask(spec, main);
