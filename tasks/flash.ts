/**
 * `deno task flash [--port PORT]`: first-time serial flash of yaota8266 and the OTA
 * firmware with esptool, after `verify` passed for the pair.
 */
import {
  appOffsetOpt,
  boolOpt,
  type CommandSpec,
  noPositionals,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import { UsageError } from "../lib/errors.ts";
import { esptoolDialect, findEsptool, requireEsptool } from "../lib/setup/esptool.ts";
import {
  assertFlashable,
  DEFAULT_BAUD,
  describeSerial,
  flashSteps,
  runFlash,
  serialSettings,
  triggerWarning,
} from "../lib/setup/flash.ts";
import { DEFAULT_KEY_PATH, parseBaud, resolveAppOffset } from "../lib/config/values.ts";
import { bold, log, logRaw, print, warn } from "../lib/cli/output.ts";
import { shellQuote } from "../lib/_shell.ts";
import { formatCheck } from "../lib/cli/verify_report.ts";
import { DEFAULT_BOOTLOADER, DEFAULT_FIRMWARE, verifyFiles } from "../lib/setup/verify_files.ts";

export const spec: CommandSpec = {
  name: "flash",
  summary: "Flash yaota8266 and the OTA firmware over serial with esptool (first time only).",
  options: {
    port: {
      type: "string",
      short: "p",
      arg: "PORT",
      help: "serial port of the board, e.g. /dev/ttyUSB0 or COM3 (default: config serial.port, " +
        "else esptool's: ESPTOOL_PORT, else the port it finds)",
    },
    serial: { type: "string", arg: "PORT", help: "the same as --port" },
    baud: {
      type: "string",
      short: "b",
      arg: "RATE",
      help:
        `baud rate for writing (default: config serial.baud, else ESPTOOL_BAUD, else ${DEFAULT_BAUD})`,
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
      help: "erase the whole flash first (esptool erase-flash; wipes the MicroPython filesystem)",
    },
    "dry-run": { type: "boolean", help: "print the esptool commands, run nothing" },
  },
  notes: [
    "Before flashing it runs the checks of 'deno task verify': the bootloader must hold your " +
    "key's modulus and be built for the app offset, and the firmware must be a safe OTA image " +
    "for it. It warns before writing a bootloader without the software trigger (RTC magic): " +
    "such a board enters OTA mode only with its BOOT button. Later updates go over the air " +
    "('deno task deploy').",
    "esptool is found as 'esptool' (v5) or 'esptool.py' on PATH, or as 'python3 -m esptool' " +
    "('pip install esptool'); its version decides the spelling (v5: write-flash --flash-size, " +
    "v4: write_flash --flash_size), so it prints no deprecation warnings. --port and --baud are " +
    "passed only when given (flag or config; the baud rate defaults to " +
    `${DEFAULT_BAUD}), so esptool's own ESPTOOL_PORT and ESPTOOL_BAUD work.`,
  ],
  examples: [
    "deno task flash --port /dev/ttyUSB0 --erase",
    "ESPTOOL_PORT=/dev/ttyUSB0 deno task flash",
    "deno task flash -p COM3 --bootloader yaota8266.bin --firmware firmware-ota.bin --dry-run",
  ],
};

export interface FlashArgs {
  port?: string;
  baud?: number;
  keyPath?: string;
  bootloader?: string;
  firmware?: string;
  appOffset?: number;
  erase: boolean;
  dryRun: boolean;
  config?: string;
}

/** Validates the parsed flags; pure. @throws {UsageError} */
export function toFlashArgs(args: ParsedArgs): FlashArgs {
  noPositionals(args);
  const v = args.values;
  const port = stringOpt(v, "port");
  const serial = stringOpt(v, "serial");
  if (port !== undefined && serial !== undefined && port !== serial) {
    throw new UsageError(`--port '${port}' and --serial '${serial}' name two ports: give one`);
  }
  const chosen = port ?? serial;
  if (chosen !== undefined && chosen.trim() === "") {
    throw new UsageError(
      `--${
        port !== undefined ? "port" : "serial"
      } expects a serial port such as /dev/ttyUSB0 or COM3, got ''`,
    );
  }
  const baud = stringOpt(v, "baud");
  return {
    ...(chosen === undefined ? {} : { port: chosen }),
    ...(baud === undefined ? {} : { baud: parseBaud(baud, { flag: "baud" }) }),
    keyPath: stringOpt(v, "key"),
    bootloader: stringOpt(v, "bootloader"),
    firmware: stringOpt(v, "firmware"),
    appOffset: appOffsetOpt(v),
    erase: boolOpt(v, "erase"),
    dryRun: boolOpt(v, "dry-run"),
    config: stringOpt(v, "config"),
  };
}

/** Parses `deno task flash` arguments; pure. @throws {UsageError} */
export function parseFlashArgs(argv: string[]): FlashArgs {
  return toFlashArgs(parseCommandArgs(spec, argv));
}

export async function main(ctx: TaskContext): Promise<number | void> {
  const args = toFlashArgs(ctx.args);
  const config = await loadConfig(args.config);
  const appOffset = resolveAppOffset(args.appOffset, config);
  const paths = { keyPath: args.keyPath, bootloader: args.bootloader, firmware: args.firmware };

  // Check first, act second: nothing reaches the board unless the pair is right.
  const report = await verifyFiles(paths, {
    config,
    appOffset,
    require: ["key", "bootloader", "firmware"],
    onWarning: warn,
  });
  for (const check of report.checks) {
    if (["key", "bootloader", "firmware"].includes(check.name)) log(formatCheck(check, false));
  }
  assertFlashable(report);
  const noTrigger = triggerWarning(report, args.bootloader ?? DEFAULT_BOOTLOADER);
  if (noTrigger) warn(noTrigger);

  const serial = serialSettings(args, { ...config.serial, file: config.path }, {
    ESPTOOL_PORT: Deno.env.get("ESPTOOL_PORT"),
    ESPTOOL_BAUD: Deno.env.get("ESPTOOL_BAUD"),
  });
  const plan = {
    port: serial.port,
    baud: serial.baud,
    bootloader: args.bootloader ?? DEFAULT_BOOTLOADER,
    firmware: args.firmware ?? DEFAULT_FIRMWARE,
    appOffset,
    erase: args.erase,
  };

  if (args.dryRun) {
    const tool = await findEsptool();
    if (!tool) warn("esptool is not installed ('pip install esptool'); the commands would be:");
    // Without one, the current esptool's spelling.
    const dialect = tool ? esptoolDialect(tool.version) : "v5";
    for (const step of flashSteps({ ...plan, dialect })) {
      print(shellQuote([...(tool?.display ?? ["esptool"]), ...step.args]));
    }
    log("dry run: nothing was flashed");
    return;
  }

  const tool = await requireEsptool();
  const steps = flashSteps({ ...plan, dialect: esptoolDialect(tool.version) });
  log(
    `${shellQuote(tool.display)} ${tool.version ?? "(version unknown: v4 spelling)"}; ` +
      describeSerial(serial),
  );
  await runFlash(steps, tool, {
    onStep: (step, i) => {
      log(bold(`[${i + 1}/${steps.length}] ${step.label}`));
      log(`$ ${shellQuote([...tool.display, ...step.args])}`);
    },
    onOutput: logRaw,
  });
  log(
    `done: yaota8266 is at 0x0 and the firmware at 0x${appOffset.toString(16)}. ` +
      `From now on, update the board over the air with 'deno task deploy'.`,
  );
}

if (import.meta.main) runTask(spec, main);
