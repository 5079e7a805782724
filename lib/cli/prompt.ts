/**
 * Asking the person at the terminal: a password without echo, on stderr and stdin.
 * `askPassword` is how the tasks get a board's WebREPL password (lib/webrepl/password.ts)
 * with it.
 */
import { InterruptedError } from "../errors.ts";
import { log, logRaw } from "./output.ts";
import { resolvePassword } from "../webrepl/password.ts";

/**
 * Reads a line from the terminal without echo (raw mode). Backspace edits,
 * Ctrl-C aborts. Requires a terminal on stdin.
 * @throws {InterruptedError} On Ctrl-C or Ctrl-D.
 */
export async function promptHidden(message: string): Promise<string> {
  logRaw(message);
  const bytes: number[] = [];
  const buffer = new Uint8Array(64);
  Deno.stdin.setRaw(true);
  try {
    while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) throw new InterruptedError("no password entered (end of input)");
      for (const b of buffer.subarray(0, n)) {
        if (b === 0x03 || b === 0x04) throw new InterruptedError("no password entered");
        if (b === 0x0d || b === 0x0a) return new TextDecoder().decode(new Uint8Array(bytes));
        if (b === 0x7f || b === 0x08) {
          // Remove one character: its UTF-8 continuation bytes, then its lead byte.
          while (((bytes.at(-1) ?? 0) & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else if (b >= 0x20) {
          bytes.push(b);
        }
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    log();
  }
}

/** The prompt `resolvePassword` uses in a task: this terminal, if stdin is one. */
export const terminalPrompt = {
  prompt: promptHidden,
  isTerminal: (): boolean => Deno.stdin.isTerminal(),
};

/**
 * A board's WebREPL password: `flag` (--password), else WEBREPL_PASSWORD, else a prompt
 * without echo on this terminal naming `board` ("192.168.4.1:8266", "the fleet").
 * @throws {UsageError} If it has the wrong length, or none is given and there is no terminal.
 * @throws {InterruptedError} If the prompt is given up (Ctrl-C).
 */
export function askPassword(flag: string | undefined, board: string): Promise<string> {
  return resolvePassword({
    ...terminalPrompt,
    ...(flag === undefined ? {} : { flag }),
    message: `WebREPL password for ${board}: `,
  });
}
