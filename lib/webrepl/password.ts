/**
 * The WebREPL password: from `--password`, else the `WEBREPL_PASSWORD` environment
 * variable, else a prompt on the terminal without echo (the caller's: a task passes
 * lib/cli/prompt.ts's). A flag is visible to other users in `ps`, and `deno task` echoes
 * the task's arguments on stderr, so the variable or the prompt is the better way
 * (docs/device.md, "WebREPL"). The password itself never appears in a message.
 */
import { UsageError } from "../errors.ts";

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
  /** Asks on the terminal without echo; absent: there is no one to ask. */
  prompt?: (message: string) => Promise<string>;
  /** Whether there is a terminal to prompt on (default: whether `prompt` is given). */
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
 * The password from the flag, the environment or the prompt, checked.
 * @throws {UsageError} If it has the wrong length, or none is given and there is no
 *   terminal to prompt on.
 * @throws {InterruptedError} If the prompt is given up (Ctrl-C).
 * @example
 * ```ts
 * import { resolvePassword } from "./password.ts";
 * const password = await resolvePassword({ env: (name) => name === "KITCHEN_PW" ? "s3cret" : undefined, envName: "KITCHEN_PW" });
 * if (password !== "s3cret") throw new Error();
 * ```
 */
export async function resolvePassword(sources: PasswordSources = {}): Promise<string> {
  if (sources.flag !== undefined) return checkPassword(sources.flag, "--password");
  const envName = sources.envName ?? PASSWORD_ENV;
  const fromEnv = (sources.env ?? ((name) => Deno.env.get(name)))(envName);
  if (fromEnv) return checkPassword(fromEnv, envName);
  const prompt = sources.prompt;
  if (!prompt || !(sources.isTerminal?.() ?? true)) {
    throw new UsageError(
      `no WebREPL password: set ${envName} (stdin is not a terminal, so there is no prompt)`,
    );
  }
  const typed = await prompt(sources.message ?? "WebREPL password: ");
  return checkPassword(typed, "the prompt");
}
