/**
 * `deno task exec --ip ADDR 'code'`: run MicroPython code on the board over WebREPL and
 * print what it prints, as `mpremote exec` does. An exception: its traceback on stderr,
 * exit code 1.
 */
import {
  type CommandSpec,
  DEVICE_PORT_RENAMED,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import { UsageError } from "../lib/errors.ts";
import { logRaw, printJson } from "../lib/cli/output.ts";
import { terminalLines } from "../lib/cli/terminal_text.ts";
import { connectWebRepl } from "../lib/webrepl/client.ts";
import {
  JSON_OPTION,
  PASSWORD_NOTE,
  resolveTarget,
  TARGET_OPTIONS,
  type TargetArgs,
  targetArgsFrom,
} from "../lib/cli/webrepl_target.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";
import { checkRawCode } from "../lib/webrepl/raw_result.ts";

export const spec: CommandSpec = {
  name: "exec",
  renamed: DEVICE_PORT_RENAMED,
  summary: "Run MicroPython code on a board over WebREPL and print its output.",
  positionals: "CODE",
  options: { ...TARGET_OPTIONS, ...JSON_OPTION },
  notes: [
    "CODE may hold several lines; it runs in the board's raw REPL, so names it defines stay " +
    "defined until the board resets. If it raises, the traceback goes to stderr and the exit " +
    "code is 1 (--json: ok false, with the exception's last line). Output is shown as it " +
    "arrives. --timeout is the longest silence allowed while the code runs (a program that " +
    "keeps printing is never cut off); after it the code is stopped with Ctrl-C and the exit " +
    "code is 1. CODE cannot hold the raw REPL's Ctrl-A to Ctrl-D (\\x01 to \\x04): write " +
    "them as escapes inside a string.",
    PASSWORD_NOTE,
  ],
  examples: [
    `${PASSWORD_ENV}=... deno task exec --ip 192.168.4.1 "import os; print(os.uname())"`,
    'deno task exec --ip 192.168.4.1 --json "print(1 + 1)"',
  ],
};

export interface ExecArgs extends TargetArgs {
  code: string;
}

export function toExecArgs(args: ParsedArgs): ExecArgs {
  const [code, ...extra] = args.positionals;
  if (code === undefined) throw new UsageError("give the code to run: exec --ip ADDR 'CODE'");
  if (extra.length) {
    throw new UsageError(`one CODE argument only (quote it), got also '${extra.join("' '")}'`);
  }
  checkRawCode(code);
  return { ...targetArgsFrom(args.values), code };
}

/** Pure: the exec options from `argv`. @throws {UsageError} On a bad flag or no CODE. */
export function parseExecArgs(argv: string[]): ExecArgs {
  return toExecArgs(parseCommandArgs(spec, argv));
}

/** The exception's last line, e.g. "ZeroDivisionError: divide by zero". */
export function exceptionLine(traceback: string): string {
  return traceback.trimEnd().split("\n").at(-1) ?? traceback;
}

export async function main({ args }: TaskContext): Promise<number | void> {
  const opts = toExecArgs(args);
  const target = await resolveTarget(opts, await loadConfig(opts.config));
  await using client = await connectWebRepl(target);
  const encoder = new TextEncoder();
  // Shown as it arrives; --json needs it whole.
  const stream = (text: string) => {
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
  };
  const result = await client.exec(opts.code, opts.json ? {} : { onOutput: stream });
  if (opts.json) {
    printJson({
      ok: result.error === undefined,
      ip: target.host,
      port: target.port,
      output: result.output,
      ...(result.error === undefined
        ? {}
        : { kind: "RemoteException", error: exceptionLine(result.error), traceback: result.error }),
    });
  } else {
    // The program's output streamed as it printed it; the board's traceback is our report.
    if (result.error !== undefined) logRaw(terminalLines(result.error.replace(/\n?$/, "\n")));
  }
  return result.error === undefined ? 0 : 1;
}

if (import.meta.main) runTask(spec, main);
