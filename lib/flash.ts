/**
 * First-time serial flash of a yaota8266 device (docs/device.md, "Flash layout"): optional
 * `erase_flash`, then `write_flash -fm dio --flash_size=detect 0x0 yaota8266.bin`, then
 * the same with the OTA firmware at `MAIN_APP_OFFSET`. Only after `verify` passed for
 * the pair: the bootloader holds the user's key, the image is a safe OTA image.
 */
import { FileError, KeyError, KeyMismatchError, UnsafeImageError } from "./errors.ts";
import { NO_TRIGGER_CONSEQUENCE } from "./bootloader_image.ts";
import { type Esptool, runEsptool } from "./esptool.ts";
import type { VerifyReport } from "./verify.ts";
import { formatHex } from "./_bytes.ts";

export const DEFAULT_BAUD = 230400;

export interface FlashPlan {
  /** Serial port, e.g. /dev/ttyUSB0 or COM3. */
  port: string;
  baud: number;
  /** Paths as the user gave them; esptool runs in the same directory. */
  bootloader: string;
  firmware: string;
  appOffset: number;
  /** Erase the whole flash first (also wipes the MicroPython filesystem). */
  erase: boolean;
}

export interface FlashStep {
  /** What the step does, for progress lines and errors: "writing yaota8266.bin at 0x0". */
  label: string;
  /** esptool's arguments (without the esptool command itself). */
  args: string[];
}

/**
 * The esptool runs, in order; pure.
 * @example
 * ```ts
 * import { flashSteps } from "./flash.ts";
 * const steps = flashSteps({
 *   port: "/dev/ttyUSB0", baud: 230400, bootloader: "yaota8266.bin",
 *   firmware: "firmware-ota.bin", appOffset: 0x3c000, erase: false,
 * });
 * if (steps[1]?.args.at(-2) !== "0x3c000") throw new Error();
 * ```
 */
export function flashSteps(plan: FlashPlan): FlashStep[] {
  const write = (offset: number, file: string): FlashStep => ({
    label: `writing ${file} at ${formatHex(offset)}`,
    args: [
      "--port",
      plan.port,
      "--baud",
      String(plan.baud),
      "write_flash",
      "-fm",
      "dio",
      "--flash_size=detect",
      formatHex(offset),
      file,
    ],
  });
  return [
    ...(plan.erase
      ? [{ label: "erasing the flash", args: ["--port", plan.port, "erase_flash"] }]
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
    !c.ok && (c.name === "key" || c.name === "bootloader" || c.name === "firmware")
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

/**
 * Runs the steps one after the other; stops at the first failure.
 * @throws {EsptoolError} If a run fails.
 */
export async function runFlash(
  steps: FlashStep[],
  tool: Esptool,
  onStep: (step: FlashStep, index: number) => void = () => {},
): Promise<void> {
  for (const [i, step] of steps.entries()) {
    onStep(step, i);
    await runEsptool(tool, step.args, step.label);
  }
}
