/**
 * First-time serial flash of a yaota8266 device (docs/device.md, "Flash layout"): optional
 * erase, then yaota8266.bin at 0x0 (`write-flash --flash-mode dio --flash-size detect`),
 * then the OTA firmware at `MAIN_APP_OFFSET`, spelled for the esptool found (v4:
 * `write_flash -fm dio --flash_size=detect`). Only after `verify` passed for the pair:
 * the bootloader holds the user's key, the image is a safe OTA image.
 */
import { FileError, KeyError, KeyMismatchError, UnsafeImageError } from "../errors.ts";
import { NO_TRIGGER_CONSEQUENCE } from "../format/bootloader_image.ts";
import { type Esptool, type EsptoolDialect, runEsptool } from "./esptool.ts";
import type { VerifyReport } from "./verify.ts";
import { formatHex } from "../_bytes.ts";

/** The writing rate when nothing names one: twice esptool's own 115200, reliable on CH340s. */
export const DEFAULT_BAUD = 230400;

export interface FlashPlan {
  /** Serial port, e.g. /dev/ttyUSB0 or COM3; absent: esptool's ESPTOOL_PORT or its own search. */
  port?: string;
  /** Absent: esptool's ESPTOOL_BAUD or its own default. */
  baud?: number;
  /** Paths as the user gave them; esptool runs in the same directory. */
  bootloader: string;
  firmware: string;
  appOffset: number;
  /** Erase the whole flash first (also wipes the MicroPython filesystem). */
  erase: boolean;
  /** The spelling the esptool found wants (`esptoolDialect`). */
  dialect: EsptoolDialect;
}

export interface FlashStep {
  /** What the step does, for progress lines and errors: "writing yaota8266.bin at 0x0". */
  label: string;
  /** esptool's arguments (without the esptool command itself). */
  args: string[];
}

/** Where the port and baud rate come from, for the log line before flashing. */
export interface SerialSettings {
  port?: string;
  baud?: number;
  /** "--port", "ota.config.json: serial.port", "ESPTOOL_PORT" or "esptool" (it searches). */
  portFrom: string;
  baudFrom: string;
}

/**
 * The port and baud rate to pass: a flag's, else (unless esptool's own ESPTOOL_PORT /
 * ESPTOOL_BAUD is set, which then wins, so we pass nothing) the config's, else for the
 * baud rate our default. No port is ever made up: without one esptool searches. Pure.
 * @example
 * ```ts
 * import { serialSettings } from "./flash.ts";
 * const s = serialSettings({}, { port: "/dev/ttyUSB1" }, { ESPTOOL_PORT: "/dev/ttyUSB0" });
 * if (s.port !== undefined || s.portFrom !== "ESPTOOL_PORT") throw new Error();
 * ```
 */
export function serialSettings(
  flags: { port?: string; baud?: number },
  config: { port?: string; baud?: number; file?: string },
  env: { ESPTOOL_PORT?: string; ESPTOOL_BAUD?: string },
): SerialSettings {
  const file = config.file ?? "ota.config.json";
  const port = flags.port !== undefined
    ? { port: flags.port, portFrom: "--port" }
    : env.ESPTOOL_PORT
    ? { portFrom: "ESPTOOL_PORT" }
    : config.port !== undefined
    ? { port: config.port, portFrom: `${file}: serial.port` }
    : { portFrom: "esptool" };
  const baud = flags.baud !== undefined
    ? { baud: flags.baud, baudFrom: "--baud" }
    : env.ESPTOOL_BAUD
    ? { baudFrom: "ESPTOOL_BAUD" }
    : config.baud !== undefined
    ? { baud: config.baud, baudFrom: `${file}: serial.baud` }
    : { baud: DEFAULT_BAUD, baudFrom: "default" };
  return { ...port, ...baud };
}

/** "port /dev/ttyUSB0 (--port), baud 230400 (default)", for the log line. Pure. */
export function describeSerial(s: SerialSettings): string {
  const one = (name: string, value: string | number | undefined, from: string) =>
    value !== undefined
      ? `${name} ${value} (${from})`
      : from.startsWith("ESPTOOL_")
      ? `${name} from ${from} (esptool reads it)`
      : `${name}: none given, esptool searches for the board`;
  return `${one("port", s.port, s.portFrom)}, ${one("baud", s.baud, s.baudFrom)}`;
}

/**
 * The esptool runs, in order; pure.
 * @example
 * ```ts
 * import { flashSteps } from "./flash.ts";
 * const steps = flashSteps({
 *   port: "/dev/ttyUSB0", baud: 230400, bootloader: "yaota8266.bin",
 *   firmware: "firmware-ota.bin", appOffset: 0x3c000, erase: false, dialect: "v5",
 * });
 * if (steps[1]?.args.at(-2) !== "0x3c000") throw new Error();
 * ```
 */
export function flashSteps(plan: FlashPlan): FlashStep[] {
  const v5 = plan.dialect === "v5";
  const port = plan.port === undefined ? [] : ["--port", plan.port];
  const baud = plan.baud === undefined ? [] : ["--baud", String(plan.baud)];
  const writeOptions = v5
    ? ["write-flash", "--flash-mode", "dio", "--flash-size", "detect"]
    : ["write_flash", "-fm", "dio", "--flash_size=detect"];
  const write = (offset: number, file: string): FlashStep => ({
    label: `writing ${file} at ${formatHex(offset)}`,
    args: [...port, ...baud, ...writeOptions, formatHex(offset), file],
  });
  return [
    ...(plan.erase
      ? [{ label: "erasing the flash", args: [...port, v5 ? "erase-flash" : "erase_flash"] }]
      : []),
    write(0, plan.bootloader),
    write(plan.appOffset, plan.firmware),
  ];
}

/**
 * Refuses a flash that `verify` did not pass: a key that cannot be read, a bootloader
 * built for another key or app offset, a file that is not what it should be (the two
 * swapped), an image that would not boot at the app offset.
 * @throws {KeyError} {KeyMismatchError} {FileError} {UnsafeImageError}
 */
export function assertFlashable(report: VerifyReport): void {
  const failed = report.checks.filter((c) =>
    c.result === "failed" && (c.name === "key" || c.name === "bootloader" || c.name === "firmware")
  );
  const first = failed[0];
  if (!first) return;
  const message = "refusing to flash: " + failed.map((c) => `${c.name}: ${c.detail}`).join("; ");
  if (first.name === "key") throw new KeyError(message);
  if (first.problem === "file") throw new FileError(message);
  if (first.name === "bootloader" && first.problem === "key") throw new KeyMismatchError(message);
  throw new UnsafeImageError(message);
}

/**
 * The warning to give before writing a bootloader without the software trigger
 * (docs/device.md, "Entering OTA mode"), or undefined when it has it (or none was read).
 */
export function triggerWarning(report: VerifyReport, bootloader: string): string | undefined {
  if (!report.bootloader || report.bootloader.softwareTrigger) return undefined;
  return `${bootloader} has no software trigger (its boot8266 does not check the RTC magic): ` +
    `${NO_TRIGGER_CONSEQUENCE}. 'deno task build-bootloader' builds one that has it.`;
}

/** What `runFlash` reports as it goes; the task shows it on stderr. */
export interface FlashReporter {
  /** A step starts (its index among the steps). */
  onStep?: (step: FlashStep, index: number) => void;
  /** esptool's own output, as it arrives. */
  onOutput?: (text: string) => void;
}

/**
 * Runs the steps one after the other; stops at the first failure.
 * @throws {EsptoolError} If a run fails.
 */
export async function runFlash(
  steps: FlashStep[],
  tool: Esptool,
  report: FlashReporter = {},
): Promise<void> {
  for (const [i, step] of steps.entries()) {
    report.onStep?.(step, i);
    await runEsptool(tool, step.args, step.label, report.onOutput);
  }
}
