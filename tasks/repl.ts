/**
 * `deno task repl --ip ADDR`: the board's REPL in this terminal over WebREPL, as
 * `mpremote repl` and webrepl_cli.py give it. Ctrl-] leaves.
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
import { log } from "../lib/cli/output.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";
import { connectWebRepl } from "../lib/webrepl/client.ts";
import {
  PASSWORD_NOTE,
  resolveTarget,
  TARGET_OPTIONS,
  type TargetArgs,
  targetArgsFrom,
} from "../lib/cli/webrepl_target.ts";
import { runTerminal } from "../lib/cli/webrepl_terminal.ts";

export const spec: CommandSpec = {
  name: "repl",
  renamed: DEVICE_PORT_RENAMED,
  summary: "Open the board's REPL in this terminal over WebREPL (Ctrl-] leaves).",
  options: { ...TARGET_OPTIONS },
  notes: [
    "Every key goes to the board, Ctrl-C included (it stops the running program); Ctrl-] " +
    "leaves. With stdin not a terminal (a pipe or a file), each line is sent as typed, and at " +
    "the end of the input the session waits, up to --timeout, for the board to finish and show " +
    "a prompt, then leaves. The password prompt needs a terminal: from a pipe, set " +
    `${PASSWORD_ENV}.`,
    PASSWORD_NOTE,
  ],
  examples: [
    `${PASSWORD_ENV}=... deno task repl --ip 192.168.4.1`,
    `printf 'import os\\nos.listdir()\\n' | deno task repl --ip 192.168.4.1`,
  ],
};

export function toReplArgs(args: ParsedArgs): TargetArgs {
  if (args.positionals.length) {
    throw new UsageError(`repl takes no arguments, got '${args.positionals.join("' '")}'`);
  }
  return targetArgsFrom(args.values);
}

/** Pure: the repl options from `argv`. @throws {UsageError} On a bad flag or value. */
export function parseReplArgs(argv: string[]): TargetArgs {
  return toReplArgs(parseCommandArgs(spec, argv));
}

export async function main({ args }: TaskContext): Promise<number | void> {
  const opts = toReplArgs(args);
  const target = await resolveTarget(opts, await loadConfig(opts.config));
  await using client = await connectWebRepl(target);
  const interactive = Deno.stdin.isTerminal();
  log(`Connected to ${client.address}. Use Ctrl-] to leave.`);
  const encoder = new TextEncoder();
  const write = async (text: string) => {
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length;) at += await Deno.stdout.write(bytes.subarray(at));
  };
  if (interactive) Deno.stdin.setRaw(true);
  try {
    await runTerminal(client, { input: Deno.stdin.readable, write, interactive }, {
      timeoutMs: opts.timeoutMs,
    });
  } finally {
    if (interactive) Deno.stdin.setRaw(false);
  }
  if (interactive) log("");
}

if (import.meta.main) runTask(spec, main);
