/** `verify`'s checks as terminal lines (lib/setup/verify.ts returns them as data). */
import type { VerifyCheck } from "../setup/verify.ts";
import { green, red, yellow } from "./output.ts";

/**
 * One result line for a terminal: status, check name, detail; then the warning, if any,
 * on a line of its own unless `withWarning` is false (the caller says it its own way).
 */
export function formatCheck(check: VerifyCheck, withWarning = true): string {
  const [status, width] = check.skipped
    ? ["skip", 4]
    : !check.ok
    ? [red("FAIL"), 4]
    : check.warning
    ? [yellow("warn"), 4]
    : [green("ok"), 2];
  const pad = " ".repeat(Math.max(1, 5 - width));
  const warning = check.warning && withWarning
    ? `\n     ${"".padEnd(11)} ${yellow(check.warning)}`
    : "";
  return `${status}${pad}${check.name.padEnd(11)} ${check.detail}${warning}`;
}
