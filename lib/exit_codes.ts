/**
 * Every exit code a task can end with, and what decides it: one table, read by
 * `cli.ts` (errors), `fleet.ts` (a fleet's outcome), `inspect` and the README's table.
 * A script (or CI) can tell "fix the image" from "try again later" without parsing
 * text; `--json` carries the same distinction as `kind`. Pure.
 */
import {
  BootCheckError,
  CannedFileError,
  DeviceUnreachableError,
  InterruptedError,
  KeyMismatchError,
  OtaError,
  UnsafeImageError,
  UsageError,
} from "./errors.ts";

export const EXIT = {
  /** Done. */
  ok: 0,
  /** An expected failure not listed below: the message says what to do. */
  failed: 1,
  /** Bad arguments or option values. */
  usage: 2,
  /** The image was refused before anything was sent: fix it (or `--force`). */
  unsafeImage: 3,
  /** The device did not answer: check the address and Wi-Fi, then retry. */
  unreachable: 4,
  /** The device answers, but not for this key: wrong key or wrong bootloader. */
  keyMismatch: 5,
  /** The image was sent, but the device did not boot it (or came back with the old one). */
  bootCheck: 6,
  /** `--fleet`: some devices were updated, some failed (the report says which). */
  fleetSomeFailed: 10,
  /** `--fleet`: no device was updated. */
  fleetAllFailed: 11,
  /** `status --check`: a board is offline, unreadable or not on the current build. */
  statusCheck: 12,
  /** Stopped by Ctrl-C (128 + SIGINT, as shells report it). */
  interrupted: 130,
} as const;

export type ExitCode = typeof EXIT[keyof typeof EXIT];

/** `--json` `kind` of a fleet that did not fully succeed (devices keep their own kinds). */
export const FLEET_KIND = {
  someFailed: "SomeDevicesFailed",
  allFailed: "AllDevicesFailed",
} as const;

/** `--json` `kind` of a `status --check` that found a board not as it should be. */
export const STATUS_CHECK_KIND = "StatusCheckFailed";

export interface ExitCodeRow {
  code: ExitCode;
  meaning: string;
  /** The `kind`s `--json` reports with this code. */
  kinds: string[];
}

/** The table as the README shows it, in code order. */
export const EXIT_CODE_TABLE: readonly ExitCodeRow[] = [
  { code: EXIT.ok, meaning: "success", kinds: [] },
  {
    code: EXIT.failed,
    meaning: "any other expected failure; the message says what to do",
    kinds: ["ConfigError", "KeyError", "FileError", "ToolMissingError", "…"],
  },
  { code: EXIT.usage, meaning: "bad arguments", kinds: [UsageError.name] },
  {
    code: EXIT.unsafeImage,
    meaning: "the image was refused before anything was sent (fix it, or `--force`)",
    kinds: [UnsafeImageError.name, CannedFileError.name],
  },
  {
    code: EXIT.unreachable,
    meaning: "the device did not answer (address, Wi-Fi, OTA mode?); retrying may succeed",
    kinds: [DeviceUnreachableError.name, "OtaModeTimeoutError"],
  },
  {
    code: EXIT.keyMismatch,
    meaning:
      "the key does not match: the device answers, but not for it (or, for `flash`, the bootloader holds another)",
    kinds: [KeyMismatchError.name],
  },
  {
    code: EXIT.bootCheck,
    meaning: "the image was sent but the device did not boot it",
    kinds: [BootCheckError.name, "UpdateNotAppliedError"],
  },
  {
    code: EXIT.fleetSomeFailed,
    meaning: "`--fleet`: some devices failed, the others were updated",
    kinds: [FLEET_KIND.someFailed],
  },
  {
    code: EXIT.fleetAllFailed,
    meaning: "`--fleet`: every device failed",
    kinds: [FLEET_KIND.allFailed],
  },
  {
    code: EXIT.statusCheck,
    meaning: "`status --check`: a board is offline, unreadable or not on the current build",
    kinds: [STATUS_CHECK_KIND],
  },
  { code: EXIT.interrupted, meaning: "interrupted (Ctrl-C)", kinds: [InterruptedError.name] },
];

/**
 * The exit code for an error a task let through: by its class (subclasses share
 * their parent's code), `failed` for any other `OtaError` and for bugs.
 * @example
 * ```ts
 * import { EXIT, exitCodeOf } from "./exit_codes.ts";
 * import { UnsafeImageError } from "./errors.ts";
 * if (exitCodeOf(new UnsafeImageError("x")) !== EXIT.unsafeImage) throw new Error();
 * ```
 */
export function exitCodeOf(e: unknown): ExitCode {
  if (!(e instanceof OtaError)) return EXIT.failed;
  if (e instanceof UsageError) return EXIT.usage;
  if (e instanceof InterruptedError) return EXIT.interrupted;
  if (e instanceof UnsafeImageError || e instanceof CannedFileError) return EXIT.unsafeImage;
  if (e instanceof DeviceUnreachableError) return EXIT.unreachable;
  if (e instanceof KeyMismatchError) return EXIT.keyMismatch;
  if (e instanceof BootCheckError) return EXIT.bootCheck;
  return EXIT.failed;
}

/**
 * A fleet's exit code from its rows: `ok` if all succeeded, `interrupted` if Ctrl-C
 * stopped it, `fleetAllFailed` if every device was tried and failed, else
 * `fleetSomeFailed` (a rollout that stopped leaves devices "not attempted": not failed).
 */
export function fleetExitCode(
  devices: readonly { ok: boolean; kind?: string; result?: string }[],
): ExitCode {
  if (devices.every((d) => d.ok)) return EXIT.ok;
  if (devices.some((d) => d.kind === InterruptedError.name)) return EXIT.interrupted;
  const allFailed = devices.every((d) => !d.ok && d.result !== "not-attempted");
  return allFailed ? EXIT.fleetAllFailed : EXIT.fleetSomeFailed;
}
