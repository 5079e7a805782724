/**
 * The virtual device's REPL line discipline: MicroPython's event-driven pyexec, as the
 * esp8266 port runs it. Echo, `... ` continuation lines, auto-indent, backspace,
 * Ctrl-A/B/C/E, and the raw and paste modes. The WebREPL server (`webrepl_server.ts`)
 * feeds it typed text and sends what it prints; a `ReplHost` runs the code.
 */
import type { RunResult } from "../micropython/vm.ts";
import {
  CTRL_A,
  CTRL_B,
  CTRL_C,
  CTRL_D,
  CTRL_E,
  RAW_BANNER,
  REPL_PROMPT,
} from "../webrepl/protocol.ts";

export interface ReplHost {
  /** Whether the device has reset (nothing more may be sent). */
  stopped(): boolean;
  /** Runs a whole program (raw REPL, paste mode). */
  runFile(code: string): Promise<RunResult>;
  /** Runs one statement and prints the value of an expression (the `>>> ` prompt). */
  runSingle(code: string): Promise<RunResult>;
}

const ESC = "\x1b";
const PASTE_BANNER = "paste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ";

/** Output goes out "cooked": every \n as \r\n, as `mp_hal_stdout_tx_strn_cooked` does. */
function cooked(text: string): string {
  return text.replace(/\r?\n/g, "\r\n");
}

/**
 * The REPL's state lives with the device, not the connection: the mode and a half
 * typed line are still there when the next client logs in.
 */
export class Repl {
  #mode: "friendly" | "raw" | "paste" = "friendly";
  #line = "";
  /** Finished lines of a statement that needs more input (`... `). */
  #lines: string[] = [];
  /** 1 after ESC, 2 inside an ESC [ sequence (cursor keys are ignored). */
  #escape = 0;

  constructor(readonly host: ReplHost, readonly version: string) {}

  /** Feeds typed text; everything the board would print goes to `send`. */
  async input(text: string, send: (text: string) => Promise<void>): Promise<void> {
    let out = "";
    const run = async (kind: "file" | "single", code: string) => {
      await send(out);
      out = "";
      const r = kind === "file" ? await this.host.runFile(code) : await this.host.runSingle(code);
      return this.host.stopped() ? undefined : r;
    };
    for (const ch of text) {
      if (this.host.stopped()) return;
      if (this.#mode === "raw") {
        if (ch === CTRL_A) {
          this.#line = "";
          out += RAW_BANNER;
        } else if (ch === CTRL_B) {
          this.#friendly();
          out += "\r\n" + this.#banner() + REPL_PROMPT;
        } else if (ch === CTRL_C) {
          this.#line = "";
        } else if (ch === CTRL_D) {
          const code = this.#line;
          this.#line = "";
          out += "OK";
          // An empty program is a soft reset on the board; not simulated.
          if (code === "") {
            out += CTRL_D + CTRL_D + ">";
            continue;
          }
          const r = await run("file", code);
          if (!r) return;
          out += cooked(r.output) + CTRL_D + cooked(r.error ?? "") + CTRL_D + ">";
        } else {
          this.#line += ch;
        }
      } else if (this.#mode === "paste") {
        if (ch === CTRL_C) {
          this.#friendly();
          out += "\r\n" + REPL_PROMPT;
        } else if (ch === CTRL_D) {
          const code = this.#line;
          this.#friendly();
          out += "\r\n";
          const r = await run("file", code);
          if (!r) return;
          out += cooked(r.output + (r.error ?? "")) + REPL_PROMPT;
        } else if (ch === "\r") {
          this.#line += "\n";
          out += "\r\n=== ";
        } else if (ch !== "\n") {
          this.#line += ch;
          out += ch;
        }
      } else if (this.#escape) {
        this.#escape = this.#escape === 1 && ch === "[" ? 2 : /[0-9;]/.test(ch) ? this.#escape : 0;
      } else if (ch === CTRL_A) {
        this.#friendly();
        this.#mode = "raw";
        out += "\r\n" + RAW_BANNER;
      } else if (ch === CTRL_B) {
        this.#friendly();
        out += "\r\n" + this.#banner() + REPL_PROMPT;
      } else if (ch === CTRL_C) {
        this.#friendly();
        out += "\r\n" + REPL_PROMPT;
      } else if (ch === CTRL_E) {
        this.#friendly();
        this.#mode = "paste";
        out += "\r\n" + PASTE_BANNER;
      } else if (ch === "\r") {
        out += "\r\n";
        this.#lines.push(this.#line);
        const source = this.#lines.join("\n");
        if (needsMoreInput(source)) {
          this.#line = autoIndent(this.#lines);
          out += "... " + this.#line;
          continue;
        }
        this.#friendly();
        if (source.trim() !== "") {
          const r = await run("single", source);
          if (!r) return;
          out += cooked(r.output + (r.error ?? ""));
        }
        out += REPL_PROMPT;
      } else if (ch === "\b" || ch === "\x7f") {
        // In leading spaces, backspace undoes one level of indentation.
        const n = /^ +$/.test(this.#line) ? (this.#line.length - 1) % 4 + 1 : 1;
        if (this.#line) {
          this.#line = [...this.#line].slice(0, -n).join("");
          out += "\b".repeat(n) + "\x1b[K";
        }
      } else if (ch === ESC) {
        this.#escape = 1;
      } else if (ch >= " " || ch === "\t") {
        this.#line += ch;
        out += ch;
      }
      // \n and other control characters are ignored: only \r ends a line.
    }
    await send(out);
  }

  #friendly(): void {
    this.#mode = "friendly";
    this.#line = "";
    this.#lines = [];
  }

  #banner(): string {
    return `MicroPython ${this.version}; ESP module with ESP8266\r\n` +
      'Type "help()" for more information.\r\n';
  }
}

const COMPOUND = /^(?:if|while|for|try|with|def|class|async)\b|^@/;

/**
 * Whether the friendly REPL asks for another line (`... `): open brackets or a
 * triple-quoted string, a trailing backslash, or a compound statement not yet
 * ended by an empty line.
 */
function needsMoreInput(source: string): boolean {
  let depth = 0;
  let quote = "";
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if (quote) {
      if (ch === "\\") i++;
      else if (source.startsWith(quote, i)) {
        i += quote.length - 1;
        quote = "";
      } else if (ch === "\n" && quote.length === 1) quote = "";
    } else if (ch === "#") {
      while (i + 1 < source.length && source[i + 1] !== "\n") i++;
    } else if (ch === "'" || ch === '"') {
      quote = source.startsWith(ch.repeat(3), i) ? ch.repeat(3) : ch;
      i += quote.length - 1;
    } else if ("([{".includes(ch)) depth++;
    else if (")]}".includes(ch)) depth--;
  }
  if (depth > 0 || quote.length === 3) return true;
  if (source.endsWith("\\")) return true;
  return COMPOUND.test(source) && !source.endsWith("\n");
}

/**
 * The indentation the board types for the next line (MICROPY_REPL_AUTO_INDENT): the
 * last line's, one level more after a colon, none after two blank lines.
 */
function autoIndent(lines: string[]): string {
  const last = lines.at(-1) ?? "";
  const blank = (l: string | undefined) => l !== undefined && l.trim() === "";
  if (blank(last) && lines.length > 2 && blank(lines.at(-2))) return "";
  const levels = Math.floor((last.length - last.trimStart().length) / 4) +
    (last.trimEnd().endsWith(":") ? 1 : 0);
  return "    ".repeat(levels);
}
