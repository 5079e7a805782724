/**
 * Flags that changed their name: the old one is still parsed, as the new one, with one
 * warning (README, "Names"). `--port` is a serial device, as in esptool and mpremote, so
 * the tasks that meant a network port by it now say `--device-port`, `--listen-port` or
 * `--http-port`.
 */
import { UsageError } from "../errors.ts";
import type { OptionSpec, ParsedValues } from "./cli.ts";

/** `--port` in the tasks that talk to a board over the network: now `--device-port`. */
export const DEVICE_PORT_RENAMED: Record<string, string> = { port: "device-port" };

/** Why an old name was given up. */
function renameReason(old: string): string {
  return old === "port" ? " (--port names a serial device, as in flash, esptool and mpremote)" : "";
}

/** `options` with each old name added, typed as the option it now is (no short form). Pure. */
export function withOldNames(
  options: Record<string, OptionSpec>,
  renamed: Record<string, string> = {},
): Record<string, OptionSpec> {
  const out = { ...options };
  for (const [old, now] of Object.entries(renamed)) {
    const target = options[now];
    if (target) out[old] = { ...target, short: undefined };
  }
  return out;
}

/**
 * Moves each old name's value in `values` to its new name; returns one warning per old name
 * used. Both names given is an error.
 * @throws {UsageError}
 */
export function applyRenames(
  task: string,
  renamed: Record<string, string> = {},
  values: ParsedValues,
): string[] {
  const warnings: string[] = [];
  for (const [old, now] of Object.entries(renamed)) {
    if (values[old] === undefined) continue;
    if (values[now] !== undefined) {
      throw new UsageError(`--${old} is the old name of --${now}: give --${now} only`);
    }
    values[now] = values[old];
    delete values[old];
    warnings.push(
      `--${old} is now --${now} in ${task}${renameReason(old)}; ` +
        `the old name still works in this version`,
    );
  }
  return warnings;
}
