/**
 * `deno task flash --serial PORT`: first-time serial flash of yaota8266 and the OTA
 * firmware with esptool, after `verify` passed for the pair.
 */
import {
  appOffsetOpt,
  boolOpt,
  type CommandSpec,
  numberOpt,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli.ts";
import { loadConfig } from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";
import { type Esptool, findEsptool, formatCommand, requireEsptool } from "../lib/esptool.ts";
import { assertFlashable, DEFAULT_BAUD, flashSteps, runFlash } from "../lib/flash.ts";
import { DEFAULT_KEY_PATH, resolveAppOffset } from "../lib/values.ts";
import { bold, log, print, warn } from "../lib/output.ts";
import { formatCheck } from "../lib/verify.ts";
import { DEFAULT_BOOTLOADER, DEFAULT_FIRMWARE, verifyFiles } from "../lib/verify_files.ts";

export const spec: CommandSpec = {
  name: "flash",
  summary: "Flash yaota8266 and the OTA firmware over serial with esptool (first time only).",
  options: {
    serial: {
      type: "string",
      arg: "PORT",
      help: "serial port of the board, e.g. /dev/ttyUSB0 or COM3 (required)",
    },
    key: {
      type: "string",
      arg: "FILE",
      help: `your signing key (default: 'key' in ota.config.json, else ${DEFAULT_KEY_PATH})`,
    },
    bootloader: {
      type: "string",
      arg: "FILE",
      help: `yaota8266 image for 0x0 (default: ${DEFAULT_BOOTLOADER})`,
    },
    firmware: {
      type: "string",
      arg: "FILE",
      help: `OTA firmware image for the app offset (default: ${DEFAULT_FIRMWARE})`,
    },
    "app-offset": {
      type: "string",
      arg: "ADDR",
      help: "MAIN_APP_OFFSET (default: 'appOffset' in ota.config.json, else 0x3c000)",
    },
    erase: {
      type: "boolean",
      help: "erase the whole flash first (esptool erase_flash; wipes the MicroPython filesystem)",
    },
    baud: { type: "string", arg: "RATE", help: `baud rate for writing (default: ${DEFAULT_BAUD})` },
    "dry-run": { type: "boolean", help: "print the esptool commands, run nothing" },
  },
  notes: [
    "Before flashing it runs the checks of 'deno task verify': the bootloader must hold your " +
    "key's modulus and the firmware must be a safe OTA image for the app offset. Later " +
    "updates go over the air ('deno task deploy').",
    "esptool is found as esptool.py or esptool on PATH, or as 'python3 -m esptool' " +
    "('pip install esptool').",
  ],
  examples: [
    "deno task flash --serial /dev/ttyUSB0 --erase",
    "deno task flash --serial COM3 --bootloader yaota8266.bin --firmware firmware-ota.bin --dry-run",
  ],
};

export interface FlashArgs {
  port: string;
  key?: string;
  bootloader?: string;
  firmware?: string;
  appOffset?: number;
  erase: boolean;
  baud: number;
  dryRun: boolean;
  config?: string;
}

/** Validates the parsed flags; pure. @throws {UsageError} */
export function flashArgsFrom(args: ParsedArgs): FlashArgs {
  if (args.positionals.length) {
    throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
  }
  const v = args.values;
  const port = stringOpt(v, "serial");
  if (port === undefined || port.trim() === "") {
    throw new UsageError(
      "--serial PORT is required: the board's serial port, e.g. /dev/ttyUSB0 or COM3",
    );
  }
  return {
    port,
    key: stringOpt(v, "key"),
    bootloader: stringOpt(v, "bootloader"),
    firmware: stringOpt(v, "firmware"),
    appOffset: appOffsetOpt(v),
    erase: boolOpt(v, "erase"),
    baud: numberOpt(
      v,
      "baud",
      (n) => Number.isInteger(n) && n >= 9600 && n <= 4000000,
      "a baud rate such as 115200 or 460800",
    ) ?? DEFAULT_BAUD,
    dryRun: boolOpt(v, "dry-run"),
    config: stringOpt(v, "config"),
  };
}

/** Parses `deno task flash` arguments; pure. @throws {UsageError} */
export function parseFlashArgs(argv: string[]): FlashArgs {
  return flashArgsFrom(parseCommandArgs(spec, argv));
}

export async function main(ctx: TaskContext): Promise<void> {
  const args = flashArgsFrom(ctx.args);
  const config = await loadConfig(args.config);
  const appOffset = resolveAppOffset(args.appOffset, config);
  const paths = { key: args.key, bootloader: args.bootloader, firmware: args.firmware };

  // Check first, act second: nothing reaches the board unless the pair is right.
  const report = await verifyFiles(paths, {
    config,
    appOffset,
    require: ["key", "bootloader", "firmware"],
  });
  for (const check of report.checks) {
    if (["key", "bootloader", "firmware"].includes(check.name)) log(formatCheck(check));
  }
  assertFlashable(report);

  const steps = flashSteps({
    port: args.port,
    baud: args.baud,
    bootloader: args.bootloader ?? DEFAULT_BOOTLOADER,
    firmware: args.firmware ?? DEFAULT_FIRMWARE,
    appOffset,
    erase: args.erase,
  });

  if (args.dryRun) {
    let tool: Esptool | undefined = await findEsptool();
    if (!tool) {
      warn("esptool is not installed ('pip install esptool'); the commands would be:");
      tool = { display: ["esptool.py"], argv: ["esptool.py"] };
    }
    for (const step of steps) print(formatCommand([...tool.display, ...step.args]));
    log("dry run: nothing was flashed");
    return;
  }

  const tool = await requireEsptool();
  await runFlash(steps, tool, (step, i) => {
    log(bold(`[${i + 1}/${steps.length}] ${step.label}`));
    log(`$ ${formatCommand([...tool.display, ...step.args])}`);
  });
  log(
    `done: yaota8266 is at 0x0 and the firmware at 0x${appOffset.toString(16)}. ` +
      `From now on, update the board over the air with 'deno task deploy'.`,
  );
}

if (import.meta.main) runTask(spec, main);
