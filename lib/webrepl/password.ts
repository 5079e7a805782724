/**
 * The WebREPL password: from `--password`, else the `WEBREPL_PASSWORD` environment
 * variable, else a prompt on the terminal without echo. A flag is visible to other
 * users in `ps`, and `deno task` echoes the task's arguments on stderr, so the
 * variable or the prompt is the better way (docs/device.md, "WebREPL").
 * The password itself never appears in a message.
 */
import { InterruptedError, UsageError } from "../errors.ts";
import { log, logRaw } from "../cli/output.ts";

export const PASSWORD_ENV = "WEBREPL_PASSWORD";
/** WebREPL accepts 4 to 9 characters (`webrepl_setup`); the board keeps at most 9 bytes. */
export const MIN_PASSWORD_CHARS = 4;
export const MAX_PASSWORD_BYTES = 9;

/** For `--help`: where the flag is documented. */
export const PASSWORD_FLAG_HELP =
  "WebREPL password (visible in `ps`, and `deno task` echoes it: prefer WEBREPL_PASSWORD or the prompt)";

export interface PasswordSources {
  /** The `--password` value, if given. */
  flag?: string;
  /** The variable to read (default WEBREPL_PASSWORD; a device entry may name another). */
  envName?: string;
  /** Reads an environment variable (default `Deno.env.get`). */
  env?: (name: string) => string | undefined;
  /** Asks on the terminal without echo (default `promptHidden`). */
  prompt?: (message: string) => Promise<string>;
  /** Whether stdin is a terminal (default `Deno.stdin.isTerminal()`). */
  isTerminal?: () => boolean;
  /** The prompt text, e.g. "WebREPL password for 192.168.4.1: ". */
  message?: string;
}

/**
 * Checks the password before anything is sent: `webrepl_setup` asks for 4 to 9
 * characters, the board keeps at most 9 bytes, and a line break ends the login input.
 * @throws {UsageError} Naming `source`, never the password.
 */
export function checkPassword(password: string, source: string): string {
  const chars = [...password].length;
  const bytes = new TextEncoder().encode(password).length;
  if ([...password].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw new UsageError(
      `the WebREPL password from ${source} contains a control character (a line break ends ` +
        "WebREPL's login input)",
    );
  }
  if (chars < MIN_PASSWORD_CHARS || bytes > MAX_PASSWORD_BYTES) {
    throw new UsageError(
      `the WebREPL password from ${source} is ${chars} characters, ${bytes} bytes in UTF-8; ` +
        `WebREPL accepts ${MIN_PASSWORD_CHARS} to ${MAX_PASSWORD_BYTES} characters, ` +
        `at most ${MAX_PASSWORD_BYTES} bytes`,
    );
  }
  return password;
}

/**
 * The password from the flag, the environment or the terminal, checked.
 * @throws {UsageError} If it has the wrong length, or none is given and stdin is not
 *   a terminal.
 * @throws {InterruptedError} If Ctrl-C is pressed at the prompt.
 */
export async function resolvePassword(sources: PasswordSources = {}): Promise<string> {
  if (sources.flag !== undefined) return checkPassword(sources.flag, "--password");
  const envName = sources.envName ?? PASSWORD_ENV;
  const fromEnv = (sources.env ?? ((name) => Deno.env.get(name)))(envName);
  if (fromEnv) return checkPassword(fromEnv, envName);
  const isTerminal = sources.isTerminal ?? (() => Deno.stdin.isTerminal());
  if (!isTerminal()) {
    throw new UsageError(
      `no WebREPL password: set ${envName} (stdin is not a terminal, so there is no prompt)`,
    );
  }
  const typed = await (sources.prompt ?? promptHidden)(sources.message ?? "WebREPL password: ");
  return checkPassword(typed, "the prompt");
}

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
