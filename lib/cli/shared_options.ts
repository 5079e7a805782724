/**
 * Options several tasks share, worded once: `--key` (the signing key, from the config
 * else keys/priv.key), `--only` (which boards of `--fleet`), counts such as
 * `--concurrency`, and the rules of a task that runs on one board (`--ip`) or on the
 * config's fleet (`deploy`, `status`).
 */
import { numberOpt, type OptionSpec, type ParsedValues } from "./cli.ts";
import { DEFAULT_KEY_PATH } from "../config/values.ts";
import { UsageError } from "../errors.ts";

/** `--key`: the private key that signs the firmware (sign, deploy, dashboard). */
export const KEY_OPTION = {
  type: "string",
  arg: "FILE",
  help: `private key (default: config key, else ${DEFAULT_KEY_PATH})`,
} satisfies OptionSpec;

/** `--key` of the tasks that only ask a board whether it is in OTA mode (status, trigger, scan). */
export const QUESTION_KEY_OPTION = {
  ...KEY_OPTION,
  help:
    `private key that signs the OTA-mode question (default: config key, else ${DEFAULT_KEY_PATH})`,
} satisfies OptionSpec;

/** What a task calls the boards of its fleet in its messages. */
export type BoardNoun = "device" | "board";

/** `--only NAME|TAG` of a `--fleet` task. */
export function onlyOption(noun: BoardNoun): OptionSpec {
  return {
    type: "string",
    multiple: true,
    arg: "NAME|TAG",
    help: `with --fleet: this ${noun}, or the ${noun}s with this tag`,
  };
}

/** A whole-number flag from 1 to `max` (`--concurrency N`). @throws {UsageError} */
export function wholeOpt(values: ParsedValues, name: string, max: number): number | undefined {
  return numberOpt(
    values,
    name,
    (n) => Number.isInteger(n) && n >= 1 && n <= max,
    `a whole number from 1 to ${max}`,
  );
}

/**
 * A fleet's addresses come from the config and its passwords from the environment, so
 * `--fleet` refuses `--ip` and `--password`; `--events` ends with the report, so it refuses
 * `--json`. Pure.
 * @throws {UsageError} Naming the flag to leave out.
 */
export function checkFleetFlags(
  flags: { fleet: boolean; ip?: string; password?: string; json: boolean; events: boolean },
  noun: BoardNoun,
): void {
  if (flags.fleet && flags.ip !== undefined) {
    throw new UsageError(
      `--fleet takes the addresses from the config's "devices" list: leave out --ip (choose ${noun}s with --only NAME|TAG)`,
    );
  }
  if (flags.fleet && flags.password !== undefined) {
    throw new UsageError(
      `--fleet reads each ${noun}'s WebREPL password from the environment: leave out --password`,
    );
  }
  if (flags.json && flags.events) {
    throw new UsageError(
      "--events ends with the report (the run.ended event carries the --json object): leave out --json",
    );
  }
}
