/** `verify`'s checks as terminal lines (lib/setup/verify.ts returns them as data). */
import type { VerifyCheck } from "../setup/verify.ts";
import { green, red, yellow } from "./output.ts";

/**
 * One result line for a terminal: status, check name, detail; then the warning, if any,
 * on a line of its own unless `withWarning` is false (the caller says it its own way).
 */
export function formatCheck(check: VerifyCheck, withWarning = true): string {
  const [status, width] = check.result === "skipped"
    ? ["skip", 4]
    : check.result === "failed"
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

/**
 * The closing line: what passed, failed and was skipped, never "all passed" over skipped
 * checks. Pure.
 * @example
 * ```ts
 * const line = verifySummary([
 *   { name: "key", result: "passed", detail: "" },
 *   { name: "config.h", result: "skipped", detail: "" },
 * ]);
 * if (line !== "1 of 2 checks passed, 1 skipped (config.h: not there, not checked)") throw new Error(line);
 * ```
 */
export function verifySummary(checks: VerifyCheck[]): string {
  const named = (result: VerifyCheck["result"]) =>
    checks.filter((c) => c.result === result).map((c) => c.name);
  const [passed, failed, skipped] = [named("passed"), named("failed"), named("skipped")];
  const warned = checks.filter((c) => c.result === "passed" && c.warning).map((c) => c.name);
  const skippedPart = skipped.length
    ? `, ${skipped.length} skipped (${skipped.join(", ")}: not there, not checked)`
    : "";
  if (failed.length) {
    return `${failed.length} of ${checks.length} checks failed: ${failed.join(", ")}` +
      `; ${passed.length} passed${skippedPart}`;
  }
  const head = skipped.length === 0
    ? passed.length === 1 ? "the one check passed" : `all ${passed.length} checks passed`
    : `${passed.length} of ${checks.length} checks passed`;
  return head + skippedPart + (warned.length ? `, with a warning for ${warned.join(", ")}` : "");
}
