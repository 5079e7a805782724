/**
 * Espressif's esptool, the serial flasher: finding it, learning its major version, and
 * running it with live output. v5 is the `esptool` command (pip), and wants kebab-case
 * (`write-flash`, `--flash-size`): it still takes v4's `esptool.py` and snake_case but
 * prints a deprecation warning for each. v4 is `esptool.py` (pip) or `esptool` (Debian),
 * and knows only snake_case. Some setups have only the module (`python3 -m esptool`).
 */
import $ from "dax";
import { delimiter, join } from "node:path";
import { OtaError, ToolMissingError } from "../errors.ts";
import { shellQuote } from "../_shell.ts";
import { trace } from "../trace.ts";

export interface Esptool {
  /** The command as a user would type it, for messages and `--dry-run`. */
  display: string[];
  /** The command to run (absolute path where one was found). */
  argv: string[];
  /** What `esptool version` said, e.g. "4.7.0"; absent if it could not be learnt. */
  version?: string;
}

/** Which spelling of commands and options an esptool wants. */
export type EsptoolDialect = "v4" | "v5";

/**
 * v5 for esptool 5 and later; v4 otherwise, also when the version is unknown: v4's
 * spelling works on every version (v5 only warns), v5's fails on v4. Pure.
 */
export function esptoolDialect(version: string | undefined): EsptoolDialect {
  const major = Number(version?.split(".")[0]);
  return Number.isInteger(major) && major >= 5 ? "v5" : "v4";
}

/**
 * The version in `esptool version` output: its banner (`esptool.py v4.7.0`, `esptool
 * v5.1.0`) or the bare number the command prints after it. Pure.
 * @example
 * ```ts
 * import { parseEsptoolVersion } from "./esptool.ts";
 * if (parseEsptoolVersion("esptool v5.0.2\n5.0.2\n") !== "5.0.2") throw new Error();
 * ```
 */
export function parseEsptoolVersion(output: string): string | undefined {
  const banner = /^esptool(?:\.py)? v(\d+\.\d+(?:\.\d+)?\S*)/m.exec(output);
  if (banner) return banner[1];
  return /^(\d+\.\d+(?:\.\d+)?\S*)\s*$/m.exec(output)?.[1];
}

/** esptool ran but failed: a wrong port, no bootloader mode, a bad cable. */
export class EsptoolError extends OtaError {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly outputTail: string[],
  ) {
    super(message);
  }
}

/** In order of preference: v5's command, then v4's (which v5 still installs, deprecated). */
const NAMES = ["esptool", "esptool.py"];
const INSTALL_HINT = "Install it with 'pip install esptool' (or 'pipx install esptool'), " +
  "then check that 'esptool version' runs.";

async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && (Deno.build.os === "windows" || ((info.mode ?? 0) & 0o111) !== 0);
  } catch {
    return false;
  }
}

/** Runs `esptool version` (it does not touch a port) and returns the version it names. */
async function probeVersion(argv: string[]): Promise<string | undefined> {
  const r = await $`${[...argv, "version"]}`.stdin("null").stdout("piped").stderr("piped")
    .noThrow().timeout(20_000);
  return r.code === 0 ? parseEsptoolVersion(r.stdout + "\n" + r.stderr) : undefined;
}

/**
 * The `esptool` command on PATH, else `esptool.py`, else `python3 -m esptool` if Python
 * can import it, with its version; undefined if none is there. Needs --allow-env,
 * --allow-read, --allow-run.
 */
export async function findEsptool(path = Deno.env.get("PATH") ?? ""): Promise<Esptool | undefined> {
  const exts = Deno.build.os === "windows"
    ? ["", ...(Deno.env.get("PATHEXT") ?? ".EXE;.CMD;.BAT").split(";")]
    : [""];
  const dirs = path.split(delimiter).filter(Boolean);
  for (const name of NAMES) {
    for (const dir of dirs) {
      for (const ext of exts) {
        const full = join(dir, name + ext);
        if (!(await isExecutable(full))) continue;
        const version = await probeVersion([full]);
        return { display: [name], argv: [full], ...(version ? { version } : {}) };
      }
    }
  }
  for (const python of ["python3", "python"]) {
    const found = await $.which(python);
    if (!found) continue;
    const probe = await $`${found} -c ${"import esptool"}`.quiet().noThrow();
    if (probe.code === 0) {
      const version = await probeVersion([found, "-m", "esptool"]);
      return {
        display: [python, "-m", "esptool"],
        argv: [found, "-m", "esptool"],
        ...(version ? { version } : {}),
      };
    }
  }
  return undefined;
}

/** Like `findEsptool`, but says how to install it when it is missing. @throws {ToolMissingError} */
export async function requireEsptool(): Promise<Esptool> {
  const tool = await findEsptool();
  if (!tool) {
    throw new ToolMissingError(
      `esptool is not installed: no esptool or esptool.py on PATH, and 'python3 -m esptool' ` +
        `cannot import it. ${INSTALL_HINT}`,
    );
  }
  return tool;
}

const TAIL_LINES = 12;

/** Keeps the last lines of a stream, treating `\r` (esptool's progress redraws) as a line end. */
class Tail {
  #decoder = new TextDecoder();
  #text = "";
  add(bytes: Uint8Array): string {
    const text = this.#decoder.decode(bytes, { stream: true });
    this.#text = (this.#text + text).slice(-8192);
    return text;
  }
  lines(): string[] {
    return this.#text.split(/\r\n|\r|\n/).map((l) => l.trimEnd()).filter(Boolean).slice(
      -TAIL_LINES,
    );
  }
}

/**
 * Runs esptool with `args`, its output handed to `onOutput` as it arrives (the task shows
 * it live on stderr: it is progress, not a result). `step` names what the run does, for
 * the error message.
 * @throws {EsptoolError} If esptool exits with a non-zero code.
 */
export async function runEsptool(
  tool: Esptool,
  args: string[],
  step: string,
  onOutput: (text: string) => void = () => {},
): Promise<void> {
  const tail = new Tail();
  const writer = {
    writeSync(bytes: Uint8Array): number {
      onOutput(tail.add(bytes));
      return bytes.length;
    },
  };
  trace("esptool", () => `${step}: ${shellQuote([...tool.argv, ...args])}`);
  const result = await $`${[...tool.argv, ...args]}`.stdout(writer).stderr(
    writer,
  ).noThrow();
  if (result.code !== 0) {
    const lines = tail.lines();
    throw new EsptoolError(
      `esptool failed while ${step} (exit code ${result.code}): ${
        shellQuote([...tool.display, ...args])
      }` +
        (lines.length ? `\nits last output:\n  ${lines.join("\n  ")}` : "\nit printed nothing") +
        `\nCheck the serial port (--port, or ESPTOOL_PORT) and the cable; if it cannot connect, hold the board's BOOT (GPIO0) ` +
        `button while resetting it, or try a lower --baud.`,
      result.code,
      lines,
    );
  }
}
