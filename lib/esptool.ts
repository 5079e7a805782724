/**
 * Espressif's esptool, the serial flasher: finding it and running it with live output.
 * It comes as `esptool.py` (pip before v5), `esptool` (v5, distro packages) or only as a
 * Python module (`python3 -m esptool`).
 */
import $ from "dax";
import { delimiter, join } from "node:path";
import { OtaError, ToolMissingError } from "./errors.ts";
import { logRaw } from "./output.ts";
import { trace } from "./trace.ts";

export interface Esptool {
  /** The command as a user would type it, for messages and `--dry-run`. */
  display: string[];
  /** The command to run (absolute path where one was found). */
  argv: string[];
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

const NAMES = ["esptool.py", "esptool"];
const INSTALL_HINT = "Install it with 'pip install esptool' (or 'pipx install esptool'), " +
  "then check that 'esptool.py version' or 'esptool version' runs.";

async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && (Deno.build.os === "windows" || ((info.mode ?? 0) & 0o111) !== 0);
  } catch {
    return false;
  }
}

/**
 * The first `esptool.py` or `esptool` on PATH (directory by directory, so a stand-in
 * put first on PATH wins over an installed one), else `python3 -m esptool` if Python
 * can import it; undefined if none is there. Needs --allow-env, --allow-read, --allow-run.
 */
export async function findEsptool(path = Deno.env.get("PATH") ?? ""): Promise<Esptool | undefined> {
  const exts = Deno.build.os === "windows"
    ? ["", ...(Deno.env.get("PATHEXT") ?? ".EXE;.CMD;.BAT").split(";")]
    : [""];
  for (const dir of path.split(delimiter).filter(Boolean)) {
    for (const name of NAMES) {
      for (const ext of exts) {
        const full = join(dir, name + ext);
        if (await isExecutable(full)) return { display: [name], argv: [full] };
      }
    }
  }
  for (const python of ["python3", "python"]) {
    const found = await $.which(python);
    if (!found) continue;
    const probe = await $`${found} -c ${"import esptool"}`.quiet().noThrow();
    if (probe.code === 0) {
      return { display: [python, "-m", "esptool"], argv: [found, "-m", "esptool"] };
    }
  }
  return undefined;
}

/** Like `findEsptool`, but says how to install it when it is missing. @throws {ToolMissingError} */
export async function requireEsptool(): Promise<Esptool> {
  const tool = await findEsptool();
  if (!tool) {
    throw new ToolMissingError(
      `esptool is not installed: no esptool.py or esptool on PATH, and 'python3 -m esptool' ` +
        `cannot import it. ${INSTALL_HINT}`,
    );
  }
  return tool;
}

/** The command line as one shell-quoted string, for `--dry-run` and messages. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
    .join(" ");
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
 * Runs esptool with `args`, its output shown live on stderr (it is progress, not a
 * result). `step` names what the run does, for the error message.
 * @throws {EsptoolError} If esptool exits with a non-zero code.
 */
export async function runEsptool(tool: Esptool, args: string[], step: string): Promise<void> {
  const tail = new Tail();
  const writer = {
    writeSync(bytes: Uint8Array): number {
      logRaw(tail.add(bytes));
      return bytes.length;
    },
  };
  trace("esptool", () => `${step}: ${formatCommand([...tool.argv, ...args])}`);
  const result = await $`${[...tool.argv, ...args]}`.stdout(writer).stderr(
    writer,
  ).noThrow();
  if (result.code !== 0) {
    const lines = tail.lines();
    throw new EsptoolError(
      `esptool failed while ${step} (exit code ${result.code}): ${
        formatCommand([...tool.display, ...args])
      }` +
        (lines.length ? `\nits last output:\n  ${lines.join("\n  ")}` : "\nit printed nothing") +
        `\nCheck the --serial port and the cable; if it cannot connect, hold the board's BOOT (GPIO0) ` +
        `button while resetting it, or try a lower --baud.`,
      result.code,
      lines,
    );
  }
}
