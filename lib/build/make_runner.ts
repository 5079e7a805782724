/**
 * What `build-ota` and `build-bootloader` share after each has planned its file edits:
 * the make commands as command lines for the runtime (a container, or this machine),
 * the dry run's listing, the runtime check, and running the commands with every line in
 * the build log. Nothing here writes to the terminal: a build reports through a
 * `BuildReporter`, which the task renders (lib/cli/build_report.ts).
 */
import {
  BuildLog,
  checkRuntime,
  type CommandLine,
  commandLine,
  currentUser,
  type Probe,
  type Runner,
  type Runtime,
  streamingRunner,
} from "./container.ts";
import { shellQuote } from "../_shell.ts";
import type { InspectReport } from "../format/inspect.ts";

/** How a build reports as it goes. Every member is optional: a library caller may listen to none. */
export interface BuildReporter {
  /** A line saying what the build did or found ("copied …", "$ make"). */
  onLine?: (line: string) => void;
  /** The build commands' own output as it arrives, in arbitrary pieces. */
  onOutput?: (text: string) => void;
  /** Something to know or fix (a toolchain not on PATH, a kept previous build). */
  onWarning?: (message: string) => void;
  /** The inspection of an image the build refused, shown before the error. */
  onInspection?: (report: InspectReport, file: string) => void;
}

/** The seams a build runs through (tests replace them). */
export interface BuildDeps {
  runner: Runner;
  /** Returns warnings to pass on; throws when the build cannot start. */
  checkRuntime: (runtime: Runtime, image: string) => Promise<string[]>;
  now: () => Date;
  /** Runs a short command quietly (the compiler's version, the image's digest). */
  probe?: Probe;
}

export const defaultBuildDeps: BuildDeps = {
  runner: streamingRunner,
  checkRuntime,
  now: () => new Date(),
};

/** The make commands of one build, and where they run. */
export interface MakePlan {
  runtime: Runtime;
  /** The container image (unused for `native`). */
  image: string;
  /** As make sees them, e.g. `["make", "ota"]`: they name each step in an error. */
  commands: string[][];
  /** The command lines that run them, one per command. */
  lines: CommandLine[];
  /** The build log: every command and all of its output. */
  logPath: string;
}

/**
 * The command lines for `commands`, run in `workdir` with `mount` bind-mounted (as the
 * calling user) in a container, or in `workdir` on this machine for `native`. Pure but for
 * reading the calling user's ids.
 */
export function planMake(settings: {
  runtime: Runtime;
  image: string;
  mount: string;
  workdir: string;
  commands: string[][];
  logPath: string;
}): MakePlan {
  const container = {
    runtime: settings.runtime,
    image: settings.image,
    mount: settings.mount,
    user: currentUser(),
  };
  return {
    runtime: settings.runtime,
    image: settings.image,
    commands: settings.commands,
    lines: settings.commands.map((c) => commandLine(container, settings.workdir, c)),
    logPath: settings.logPath,
  };
}

/**
 * The dry run's listing: the file changes, each command as it would run, what would be
 * collected, and that nothing was changed. Pure.
 * @example
 * ```ts
 * import { dryRunListing, planMake } from "./make_runner.ts";
 * const plan = planMake({
 *   runtime: "native",
 *   image: "",
 *   mount: "/src/yaota8266",
 *   workdir: "/src/yaota8266",
 *   commands: [["make"]],
 *   logPath: "dist/bootloader-build.log",
 * });
 * const lines = dryRunListing(["would write config.h"], plan, "would collect yaota8266.bin");
 * if (lines[1] !== "would run in /src/yaota8266: make") throw new Error(lines[1]);
 * ```
 */
export function dryRunListing(changes: string[], plan: MakePlan, collect: string): string[] {
  return [
    ...changes,
    ...plan.lines.map((l) => `would run${l.cwd ? ` in ${l.cwd}` : ""}: ${shellQuote(l.argv)}`),
    collect,
    "dry run: nothing was changed",
  ];
}

/**
 * Checks that the runtime can start the build, before anything is changed; its warnings
 * go to `report.onWarning`.
 * @throws {ToolMissingError | ContainerRuntimeError} See `checkRuntime`.
 */
export async function checkMakeRuntime(
  plan: MakePlan,
  deps: BuildDeps,
  report: BuildReporter,
): Promise<void> {
  for (const warning of await deps.checkRuntime(plan.runtime, plan.image)) {
    report.onWarning?.(warning);
  }
}

/**
 * Runs the commands in order, each announced as `$ …` and written with all of its output
 * into the build log (created or emptied first).
 * @throws {ContainerRuntimeError} At the first command that fails (with its last lines).
 */
export async function runMake(
  plan: MakePlan,
  deps: BuildDeps,
  report: BuildReporter,
): Promise<void> {
  using log = await BuildLog.create(plan.logPath);
  const where = plan.runtime === "native"
    ? "on this machine (--runtime native)"
    : `in ${plan.runtime} image ${plan.image}`;
  for (const [i, line] of plan.lines.entries()) {
    report.onLine?.(`$ ${shellQuote(line.argv)}`);
    await deps.runner(line.argv, {
      cwd: line.cwd,
      log,
      label: plan.commands[i]!.join(" "),
      where,
      onOutput: report.onOutput,
    });
  }
}
