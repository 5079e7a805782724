/**
 * Runs build commands in a container (docker, podman) or on the host (native): the
 * argument vector as a pure function, the preflight checks that turn "docker is not
 * there", "its daemon is down" and "the image is missing" into errors a person can act
 * on, and a runner that hands the output on as it comes, tees it into a log file and keeps
 * the last lines for the error message.
 */
import $ from "dax";
import { ContainerRuntimeError, ToolMissingError } from "../errors.ts";
import { shellQuote } from "../_shell.ts";
import { trace } from "../trace.ts";

export type Runtime = "docker" | "podman" | "native";
export const RUNTIMES: readonly Runtime[] = ["docker", "podman", "native"];
export const DEFAULT_IMAGE = "larsks/esp-open-sdk";
/** The image docker/Dockerfile makes (docs/build-image.md): not on a registry. */
export const OWN_IMAGE = "yaota/esp8266-build";
/** How many lines of output a failed command's error shows. */
export const TAIL_LINES = 30;

export interface ContainerSettings {
  runtime: Runtime;
  /** Container image; unused for `native`. */
  image: string;
  /** Host folder bind-mounted at the same path inside the container. */
  mount: string;
  /** Run as this user, so the files the build writes stay the caller's. */
  user?: { uid: number; gid: number };
}

export interface CommandLine {
  argv: string[];
  /** Where the host process starts: the workdir for `native`, unset for containers. */
  cwd?: string;
}

/**
 * The argument vector that runs `command` in `workdir`:
 * `docker run --rm -v TREE:TREE -w WORKDIR -u UID:GID IMAGE CMD…`, or CMD itself for
 * `native`. Pure.
 * @example
 * ```ts
 * import { commandLine } from "./container.ts";
 * const line = commandLine(
 *   { runtime: "docker", image: "larsks/esp-open-sdk", mount: "/src/mp", user: { uid: 1000, gid: 1000 } },
 *   "/src/mp/ports/esp8266",
 *   ["make", "ota"],
 * );
 * if (line.argv.join(" ") !== "docker run --rm -v /src/mp:/src/mp -w /src/mp/ports/esp8266 -u 1000:1000 larsks/esp-open-sdk make ota") throw new Error();
 * ```
 */
export function commandLine(
  settings: ContainerSettings,
  workdir: string,
  command: readonly string[],
): CommandLine {
  if (settings.runtime === "native") return { argv: [...command], cwd: workdir };
  const argv = [settings.runtime, "run", "--rm"];
  // Rootless podman maps the container's users to subordinate ids; keep-id maps the
  // caller to itself, so `-u UID:GID` writes files the caller owns, as with docker.
  if (settings.runtime === "podman") argv.push("--userns=keep-id");
  argv.push("-v", `${settings.mount}:${settings.mount}`, "-w", workdir);
  if (settings.user) argv.push("-u", `${settings.user.uid}:${settings.user.gid}`);
  argv.push(settings.image, ...command);
  return { argv };
}

/** The calling user, or undefined where Deno has no uid (Windows). */
export function currentUser(): { uid: number; gid: number } | undefined {
  const uid = Deno.uid();
  const gid = Deno.gid();
  return uid === null || gid === null ? undefined : { uid, gid };
}

/** Keeps the last `max` lines of a stream that arrives in arbitrary pieces. Pure. */
export class LineTail {
  #lines: string[] = [];
  #partial = "";
  constructor(readonly max = TAIL_LINES) {}

  push(text: string): void {
    const parts = (this.#partial + text).split(/\r?\n/);
    this.#partial = parts.pop() ?? "";
    this.#lines.push(...parts);
    if (this.#lines.length > this.max) this.#lines.splice(0, this.#lines.length - this.max);
  }

  lines(): string[] {
    const all = this.#partial ? [...this.#lines, this.#partial] : [...this.#lines];
    return all.slice(-this.max);
  }
}

/** A quiet command's outcome, for the probes. */
export interface ProbeResult {
  code: number;
  output: string;
}

/** Runs a short command quietly; the seam the preflight checks use. */
export type Probe = (argv: string[]) => Promise<ProbeResult>;

/** Finds an executable on PATH; undefined when absent. */
export type Which = (name: string) => Promise<string | undefined>;

export const daxProbe: Probe = async (argv) => {
  const r = await $`${argv}`.stdin("null").captureCombined().quiet().noThrow();
  return { code: r.code, output: r.combined };
};

export const daxWhich: Which = (name) => $.which(name);

const DAEMON_DOWN =
  /Cannot connect to the Docker daemon|Is the docker daemon running|error during connect|docker\.sock.*(no such file|connection refused)/i;
const SOCKET_DENIED = /permission denied.*(docker\.sock|daemon socket)/i;

/**
 * Checks, before anything is changed, that the build can start: the runtime is
 * installed, its daemon answers and the image is there (or, for `native`, `make` is).
 * @returns Warnings for the user: a native build without the toolchain on PATH may still work.
 * @throws {ToolMissingError} If the runtime (or `make`) is not on PATH.
 * @throws {ContainerRuntimeError} If the daemon is not running or the image is missing.
 */
export async function checkRuntime(
  runtime: Runtime,
  image: string,
  probe: Probe = daxProbe,
  which: Which = daxWhich,
): Promise<string[]> {
  if (runtime === "native") {
    if (!await which("make")) {
      throw new ToolMissingError(
        "'make' is not installed (not on PATH). Install it with the ESP8266 toolchain " +
          "(esp-open-sdk), or build in a container with --runtime docker.",
      );
    }
    if (!await which("xtensa-lx106-elf-gcc")) {
      return [
        "xtensa-lx106-elf-gcc is not on PATH: unless the Makefile finds the toolchain " +
        "itself, the build will fail. Put esp-open-sdk's xtensa-lx106-elf/bin on PATH, " +
        "or use --runtime docker.",
      ];
    }
    return [];
  }
  if (!await which(runtime)) {
    throw new ToolMissingError(
      runtime === "docker"
        ? "docker is not installed (no 'docker' on PATH). Install Docker " +
          "(https://docs.docker.com/engine/install/), or use --runtime podman, or " +
          "--runtime native with the esp-open-sdk toolchain on PATH."
        : "podman is not installed (no 'podman' on PATH). Install it " +
          "(https://podman.io/docs/installation), or use --runtime docker or --runtime native.",
    );
  }
  const r = await probe([runtime, "image", "inspect", "--format", "{{.Id}}", image]);
  trace("build", () =>
    `${runtime} image inspect ${image}: exit code ${r.code}` +
    (r.code === 0 ? ` (image ${r.output.trim().slice(0, 19)})` : ""));
  if (r.code === 0) return [];
  const said = lastLine(r.output);
  if (SOCKET_DENIED.test(r.output)) {
    throw new ContainerRuntimeError(
      `${runtime} may not talk to its daemon (${said}). Add yourself to the 'docker' group ` +
        `('sudo usermod -aG docker $USER', then log in again) and run again.`,
      r.code,
      r.output.split("\n").slice(-TAIL_LINES),
    );
  }
  if (DAEMON_DOWN.test(r.output)) {
    throw new ContainerRuntimeError(
      `the ${runtime} daemon is not running (${said}). Start it ` +
        `('sudo systemctl start ${runtime}', or open Docker Desktop) and run again.`,
      r.code,
      r.output.split("\n").slice(-TAIL_LINES),
    );
  }
  throw new ContainerRuntimeError(
    image === OWN_IMAGE
      ? `the image '${image}' is not on this machine: make it from docker/Dockerfile ` +
        "(docs/build-image.md), then run again"
      : `the image '${image}' is not on this machine. Pull it first: ${runtime} pull ${image}` +
        ` (or make the project's own, ${OWN_IMAGE}, from docker/Dockerfile: docs/build-image.md)`,
    r.code,
    r.output.split("\n").slice(-TAIL_LINES),
  );
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)?.trim() || "no output";
}

/** The build log: every command line and all of its output, in one file. */
export class BuildLog {
  #file: Deno.FsFile;
  #encoder = new TextEncoder();
  private constructor(readonly path: string, file: Deno.FsFile) {
    this.#file = file;
  }

  /** Creates (or empties) the log at `path`. */
  static async create(path: string): Promise<BuildLog> {
    return new BuildLog(path, await Deno.open(path, { write: true, create: true, truncate: true }));
  }

  write(data: Uint8Array | string): void {
    const bytes = typeof data === "string" ? this.#encoder.encode(data) : data;
    let at = 0;
    while (at < bytes.length) at += this.#file.writeSync(bytes.subarray(at));
  }

  close(): void {
    this.#file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export interface RunOptions {
  cwd?: string;
  log?: BuildLog;
  /** Names the step in an error, e.g. "make ota". */
  label: string;
  /** Where the command runs, for the error, e.g. "in docker image larsks/esp-open-sdk". */
  where?: string;
  /** The command's output as it arrives (the task shows it live on stderr). */
  onOutput?: (text: string) => void;
}

/** Runs a command to completion; the seam the build pipelines use. */
export type Runner = (argv: string[], options: RunOptions) => Promise<void>;

/**
 * Runs `argv` with its output streaming live to `onOutput` and into the log; a non-zero
 * exit becomes a `ContainerRuntimeError` with the exit code, the last 30 lines and
 * where the full log is.
 * @throws {ContainerRuntimeError} If the command fails.
 */
export const streamingRunner: Runner = async (argv, options) => {
  const tail = new LineTail();
  const decoder = new TextDecoder();
  options.log?.write(`$ ${shellQuote(argv)}\n`);
  const tee = {
    writeSync(bytes: Uint8Array): number {
      const text = decoder.decode(bytes, { stream: true });
      options.onOutput?.(text);
      tail.push(text);
      options.log?.write(bytes);
      return bytes.length;
    },
  };
  let builder = $`${argv}`.stdin("null").stdout(tee).stderr(tee).noThrow();
  if (options.cwd) builder = builder.cwd(options.cwd);
  trace(
    "build",
    `running '${options.label}'${options.cwd ? ` in ${options.cwd}` : ""}: ${shellQuote(argv)}`,
  );
  const started = performance.now();
  const { code } = await builder;
  trace(
    "build",
    () =>
      `'${options.label}' exited with code ${code} after ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s`,
  );
  options.log?.write(`[exit code ${code}]\n`);
  if (code !== 0) throw commandFailed(code, tail.lines(), options);
};

/** The error for a failed build command: what failed, its last lines, where the log is. */
export function commandFailed(
  code: number,
  tail: string[],
  options: Pick<RunOptions, "label" | "where" | "log">,
): ContainerRuntimeError {
  const lines = [
    `'${options.label}' failed with exit code ${code}${options.where ? ` ${options.where}` : ""}.`,
  ];
  if (tail.length) {
    lines.push(`Its last ${tail.length} lines:`, ...tail.map((l) => `  | ${l}`));
  }
  if (options.log) lines.push(`The full output is in ${options.log.path}.`);
  return new ContainerRuntimeError(lines.join("\n"), code, tail);
}
