/**
 * One argument helper for every task: the same `--help`, the same error style, the
 * same exit codes (the table in `exit_codes.ts`), whether a task runs as
 * `deno task NAME` or as `yaota NAME`.
 */
import { parseArgs } from "node:util";
import { ContainerRuntimeError, OtaError, UsageError } from "../errors.ts";
import { EXIT, exitCodeOf } from "../exit_codes.ts";
import { bold, fail, log, print, printJson, setInvocation, warn } from "./output.ts";
import { parseAppOffset, parseFlashSize, parsePort, parseSeconds } from "../config/values.ts";
import { setTraceSink, trace, VERBOSE_ENV, verboseWanted } from "../trace.ts";
import { stderrTraceSink } from "./trace_sink.ts";
import { didYouMean } from "../_suggest.ts";
import { applyRenames, withOldNames } from "./renamed_flags.ts";
export { DEVICE_PORT_RENAMED } from "./renamed_flags.ts";
import { type Invocation, type Program, withInvocation } from "./hint.ts";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** Placeholder shown in help, e.g. "ADDR". */
  arg?: string;
  help: string;
}

export interface CommandSpec {
  /** The task name as typed after `deno task`. */
  name: string;
  summary: string;
  /** Positional arguments as shown in the usage line, e.g. "[FILE]". */
  positionals?: string;
  options: Record<string, OptionSpec>;
  /** Extra paragraphs for `--help`. */
  notes?: string[];
  /** The repository's own tooling (`deno task compile`): not a `yaota` command. */
  repositoryOnly?: boolean;
  /**
   * Old flag names still accepted, each with its new name (`{ port: "device-port" }`):
   * parsed as the new one, with one warning; `--help` lists them after the notes.
   */
  renamed?: Record<string, string>;
  examples?: string[];
}

export type ParsedValues = Record<string, string | boolean | string[] | undefined>;

export interface ParsedArgs {
  values: ParsedValues;
  positionals: string[];
  help: boolean;
  /** One line per old flag name used (see `CommandSpec.renamed`), for the task to warn with. */
  warnings?: string[];
}

const COMMON: Record<string, OptionSpec> = {
  config: {
    type: "string",
    arg: "FILE",
    help: "configuration file (default: YAOTA_CONFIG, else ./ota.config.json, else " +
      "~/.config/yaota/config.json)",
  },
  verbose: {
    type: "boolean",
    help: `timestamped lines on stderr: what the task decided and why (or ${VERBOSE_ENV}=1)`,
  },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** `--name`, `--name=…` or `-x` as the option it names, if `options` has it. */
function optionOf(token: string, options: Record<string, OptionSpec>): string | undefined {
  if (token.startsWith("--")) {
    const name = token.slice(2).split("=")[0]!;
    return name in options ? name : undefined;
  }
  if (/^-[A-Za-z]$/.test(token)) {
    return Object.entries(options).find(([, o]) => o.short === token[1])?.[0];
  }
  return undefined;
}

/**
 * Joins a value option to a value that starts with a dash (`--port -1` → `--port=-1`),
 * so that the value's own check answers, not the parser; names an option left without
 * its value (`--port --json`). @throws {UsageError}
 */
function attachValues(argv: string[], options: Record<string, OptionSpec>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const name = optionOf(token, options);
    if (name === undefined || options[name]!.type !== "string" || token.includes("=")) {
      out.push(token);
      continue;
    }
    const next = argv[i + 1];
    if (next === undefined) throw new UsageError(`--${name} needs a value`);
    if (next.startsWith("-") && next.length > 1) {
      if (!/^-\.?\d/.test(next)) {
        throw new UsageError(`--${name} needs a value, got the option '${next}'`);
      }
      out.push(`--${name}=${next}`);
      i++;
      continue;
    }
    out.push(token);
  }
  return out;
}

/** The parser's own wording, in ours. */
function parserMessage(message: string): string {
  const unknown = /^Unknown option '([^']*)'/.exec(message);
  if (unknown) return `unknown option '${unknown[1]}'`;
  const flag = /^Option '(?:-\w, )?(--[\w-]+)[^']*' does not take an argument/.exec(message);
  if (flag) return `${flag[1]} takes no value (it is a switch: leave out '=…')`;
  return message.replace(/\. To specify a positional.*$/s, "");
}

/** Parses `argv` against `spec`. Pure; throws `UsageError` on anything unknown or malformed. */
export function parseCommandArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const options = withOldNames({ ...spec.options, ...COMMON }, spec.renamed);
  const config: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> =
    {};
  for (const [name, o] of Object.entries(options)) {
    config[name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  const args = attachValues(argv, options);
  let parsed: { values: ParsedValues; positionals: string[] };
  try {
    parsed = parseArgs({
      args,
      options: config,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    }) as { values: ParsedValues; positionals: string[] };
  } catch (e) {
    const message = parserMessage(e instanceof Error ? e.message : String(e));
    const unknown = /^unknown option '--([^'=]+)/.exec(message);
    const names = Object.keys(spec.options).concat(Object.keys(COMMON)).map((n) => `--${n}`);
    throw new UsageError(
      message + (unknown ? didYouMean(`--${unknown[1]}`, names) : ""),
    );
  }
  const values = { ...parsed.values };
  const warnings = applyRenames(spec.name, spec.renamed, values);
  return {
    values,
    positionals: parsed.positionals,
    help: values.help === true,
    ...(warnings.length ? { warnings } : {}),
  };
}

/** The `--help` text: the same whichever way the task was started. */
export function renderHelp(spec: CommandSpec): string {
  const options = { ...spec.options, ...COMMON };
  const tail = `${spec.name} [options]${spec.positionals ? " " + spec.positionals : ""}`;
  const lines = [
    `${spec.summary}`,
    "",
    ...(spec.repositoryOnly
      ? [`Usage: deno task ${tail}`]
      : [`Usage: yaota ${tail}`, `       deno task ${tail}`]),
    "",
    "Options:",
  ];
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.arg ? " " + o.arg : ""}`;
    return [flag, o.help + (o.multiple ? " (repeatable)" : "")] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  for (const [flag, help] of rows) lines.push(`  ${flag.padEnd(width)}${help}`);
  for (const note of spec.notes ?? []) lines.push("", note);
  const renamed = Object.entries(spec.renamed ?? {});
  if (renamed.length) {
    lines.push(
      "",
      `Old names still accepted, with a warning: ${
        renamed.map(([old, now]) => `--${old} (now --${now})`).join(", ")
      }.`,
    );
  }
  if (spec.examples?.length) {
    lines.push("", "Examples:");
    for (const ex of spec.examples) lines.push(`  ${ex}`);
  }
  return lines.join("\n");
}

/** `yaota help`: every task with its one-line summary. */
export function renderTaskList(specs: readonly CommandSpec[]): string {
  const width = Math.max(...specs.map((s) => s.name.length)) + 2;
  return [
    "yaota: OTA updates for MicroPython on ESP8266 boards running the yaota8266 bootloader.",
    "",
    "Usage: yaota TASK [options]",
    "       deno task TASK [options]   (in a checkout of the repository)",
    "",
    "Tasks:",
    ...specs.map((s) => `  ${s.name.padEnd(width)}${s.summary}`),
    "",
    "Run 'yaota TASK --help' for a task's options, 'yaota --version' for the version.",
  ].join("\n");
}

/** Value accessors that turn a wrong type into a `UsageError` naming the flag. */
export function stringOpt(values: ParsedValues, name: string): string | undefined {
  const v = values[name];
  if (v === undefined || typeof v === "string") return v;
  throw new UsageError(`--${name} needs a value`);
}

export function listOpt(values: ParsedValues, name: string): string[] {
  const v = values[name];
  if (v === undefined) return [];
  if (Array.isArray(v)) return v;
  if (typeof v === "string") return [v];
  throw new UsageError(`--${name} needs a value`);
}

/** For a task that takes no positional arguments. @throws {UsageError} Naming the first one. */
export function noPositionals(args: ParsedArgs): void {
  if (args.positionals.length) {
    throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
  }
}

export function boolOpt(values: ParsedValues, name: string): boolean {
  return values[name] === true;
}

export function numberOpt(
  values: ParsedValues,
  name: string,
  check: (n: number) => boolean = Number.isFinite,
  expected = "a number",
): number | undefined {
  const text = stringOpt(values, name);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === "" || !check(n)) {
    throw new UsageError(`--${name} expects ${expected}, got '${text}'`);
  }
  return n;
}

/** `--app-offset` (or `name`): see `parseAppOffset`, the one check for every source. */
export function appOffsetOpt(values: ParsedValues, name = "app-offset"): number | undefined {
  const text = stringOpt(values, name);
  return text === undefined ? undefined : parseAppOffset(text, { flag: name });
}

/** `--flash-size`: see `parseFlashSize`. */
export function flashSizeOpt(values: ParsedValues, name = "flash-size"): number | undefined {
  const text = stringOpt(values, name);
  return text === undefined ? undefined : parseFlashSize(text, { flag: name });
}

/** `--port`: see `parsePort`. */
export function portOpt(
  values: ParsedValues,
  name = "port",
  options: { allowZero?: boolean } = {},
): number | undefined {
  const text = stringOpt(values, name);
  return text === undefined ? undefined : parsePort(text, { flag: name }, options);
}

/** A time flag in seconds, at most `max`; returned in milliseconds. See `parseSeconds`. */
export function secondsOpt(
  values: ParsedValues,
  name: string,
  max: number,
  options: { allowZero?: boolean } = {},
): number | undefined {
  const text = stringOpt(values, name);
  return text === undefined ? undefined : parseSeconds(text, { flag: name }, max, options);
}

export type { Invocation, Program } from "./hint.ts";

export interface TaskContext {
  args: ParsedArgs;
  /** The raw arguments after the task name, for tasks that parse them themselves. */
  argv: string[];
  /** True when the task was asked for `--json`: errors are reported as JSON too. */
  json: boolean;
  /** `deno task` or `yaota`: the prefix of a command a message suggests. */
  program: Program;
  /** How this run was started, for `suggest` (lib/cli/hint.ts). */
  invocation: Invocation;
}

/** A task's body: returns its exit code (default 0) or throws a typed error. */
export type TaskMain = (ctx: TaskContext) => Promise<number | void>;

/** What every `tasks/*.ts` exports, so `yaota NAME` can run it as `deno task NAME` does. */
export interface TaskModule {
  spec: CommandSpec;
  main: TaskMain;
}

export interface RunOptions {
  program?: Program;
}

/**
 * Runs a task's `main` and maps its outcome to output and an exit code.
 * `main` returns the exit code (default 0). Errors get the code of their kind
 * (`exit_codes.ts`): one red line (or `{ok:false, kind, error}` with `--json`);
 * anything that is not an `OtaError` keeps its stack trace.
 */
export async function runTask(
  spec: CommandSpec,
  main: TaskMain,
  argv: string[] = Deno.args,
  options: RunOptions = {},
): Promise<never> {
  const program = options.program ?? "deno task";
  let json = argv.includes("--json");
  let code: number;
  try {
    const args = parseCommandArgs(spec, argv);
    json = args.values.json === true;
    if (args.help) {
      print(renderHelp(spec));
      Deno.exit(EXIT.ok);
    }
    // The help names both ways to run a task; every other line names the one typed.
    setInvocation({ program, task: spec.name, argv });
    for (const w of args.warnings ?? []) warn(w);
    startTrace(spec, args.values.verbose);
    const invocation = { program, task: spec.name, argv };
    code = (await main({ args, argv, json, program, invocation })) ?? EXIT.ok;
  } catch (e) {
    code = reportError(spec, e, json, program, argv);
  }
  Deno.exit(code);
}

/** `--verbose` or `YAOTA_VERBOSE=1`: the trace sink for the rest of the process. */
function startTrace(spec: CommandSpec, flag: ParsedValues[string]): void {
  const wanted = verboseWanted(
    typeof flag === "boolean" ? flag : undefined,
    Deno.env.get(VERBOSE_ENV),
  );
  if (!wanted) return;
  setTraceSink(stderrTraceSink());
  // Never the arguments themselves: one of them may be a password.
  trace(spec.name, `deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}`);
}

/** Prints an error the way every task does and returns the exit code. */
export function reportError(
  spec: CommandSpec,
  e: unknown,
  json: boolean,
  program: Program = "deno task",
  argv: readonly string[] = [],
): number {
  const inv: Invocation = { program, task: spec.name, argv };
  trace(spec.name, () => {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause : undefined;
    return `ends with ${e instanceof Error ? e.name : typeof e}` +
      (cause ? ` (cause: ${cause.name}: ${cause.message})` : "");
  });
  if (e instanceof UsageError) {
    const message = withInvocation(e.message, inv);
    fail(`${spec.name}: ${message}`);
    log(`Run '${program} ${spec.name} --help' for the options.`);
    if (json) printJson({ ok: false, kind: e.name, error: message });
    return exitCodeOf(e);
  }
  if (e instanceof OtaError) {
    // A failed build's report quotes its last lines, one per line.
    const message = withInvocation(e.message, inv);
    fail(message, { lines: e instanceof ContainerRuntimeError });
    if (json) printJson({ ok: false, ...e.details, kind: e.name, error: message });
    return exitCodeOf(e);
  }
  log(bold("unexpected error (a bug: please report it with the lines below)"));
  log(e instanceof Error ? (e.stack ?? e.message) : String(e));
  if (json) printJson({ ok: false, kind: "InternalError", error: String(e) });
  return exitCodeOf(e);
}
