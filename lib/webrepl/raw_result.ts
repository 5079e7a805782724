/**
 * Reading the raw REPL's answer to a program as it arrives, pure: after `OK` the board
 * sends the output, `\x04`, the error text, `\x04`, `>` (docs/device.md, "WebREPL"). Each
 * piece of text is looked at once, so a program that prints megabytes costs time in
 * proportion (no re-scan of what came before), and only the error's tail is kept.
 * Also: which code the raw REPL cannot carry ("WebREPL", "Interrupt").
 */
import { UsageError } from "../errors.ts";
import { CTRL_D } from "./protocol.ts";

/** The most of an error text kept (its last part, which names the exception). */
export const MAX_ERROR_CHARS = 64 * 1024;

/** The raw REPL's control characters, which end or cancel a program being typed. */
const RAW_CONTROLS: Record<string, string> = {
  "\x01": "Ctrl-A (\\x01, restarts the raw REPL)",
  "\x02": "Ctrl-B (\\x02, leaves the raw REPL)",
  "\x03": "Ctrl-C (\\x03, cancels the program typed so far)",
  "\x04": "Ctrl-D (\\x04, ends the program: only the part before it would run)",
};

/**
 * Refuses code the raw REPL would cut short: its control characters cannot be sent as
 * part of a program. Pure.
 * @throws {UsageError} Naming the character and its position, and the way to write it.
 */
export function checkRawCode(code: string): void {
  // deno-lint-ignore no-control-regex
  const at = code.search(/[\x01-\x04]/);
  if (at < 0) return;
  const what = RAW_CONTROLS[code[at]!]!;
  throw new UsageError(
    `the code holds ${what} at character ${at + 1}: the raw REPL cannot carry it. ` +
      `Write it as an escape inside a string literal, e.g. '\\x0${code.charCodeAt(at)}'`,
  );
}

/** Splits the raw REPL's answer into output and error as the pieces come. */
export class RawResultReader {
  #part: "output" | "error" | "prompt" | "done" = "output";
  /** A `\r` at the end of the last piece of output, held until we know if `\n` follows. */
  #heldCr = false;
  #error = "";

  /** True once the closing `>` has come. */
  get done(): boolean {
    return this.#part === "done";
  }

  /** The error text so far (`\r\n` as `\n`; at most `MAX_ERROR_CHARS`, its end). */
  get error(): string {
    return this.#error.replace(/\r\n/g, "\n");
  }

  /** Takes the next piece of text; returns the new output in it (`\r\n` as `\n`). */
  push(text: string): string {
    let output = "";
    let rest = text;
    while (rest !== "" && this.#part !== "done") {
      if (this.#part === "prompt") {
        // After the second Ctrl-D the board sends '>' (anything else: take the answer as ended).
        this.#part = "done";
        break;
      }
      const end = rest.indexOf(CTRL_D);
      const piece = end < 0 ? rest : rest.slice(0, end);
      rest = end < 0 ? "" : rest.slice(end + 1);
      if (this.#part === "output") {
        output += this.#output(piece, end >= 0);
        if (end >= 0) this.#part = "error";
      } else {
        this.#error = (this.#error + piece).slice(-MAX_ERROR_CHARS);
        if (end >= 0) this.#part = "prompt";
      }
    }
    return output;
  }

  #output(piece: string, last: boolean): string {
    let text = (this.#heldCr ? "\r" : "") + piece;
    this.#heldCr = !last && text.endsWith("\r");
    if (this.#heldCr) text = text.slice(0, -1);
    return text.replace(/\r\n/g, "\n");
  }
}
