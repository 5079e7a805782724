/** Command lines as text a person can paste into a POSIX shell. Pure. */

const SAFE_ARG = /^[\w@%+=:,./-]+$/;

/**
 * Quotes an argument vector for display, so that a shell splits it back into the same
 * arguments: plain words as they are, anything else in single quotes.
 * @example
 * ```ts
 * import { shellQuote } from "./_shell.ts";
 * if (shellQuote(["make", "it's here", "A=b"]) !== "make 'it'\\''s here' A=b") throw new Error();
 * ```
 */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => SAFE_ARG.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
}
