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
import { log, logRaw, writeAllSync } from "../lib/cli/output.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";
import { connectWebRepl } from "../lib/webrepl/client.ts";
import {
  PASSWORD_NOTE,
  resolveTarget,
  TARGET_OPTIONS,
  type TargetArgs,
  targetArgsFrom,
} from "../lib/cli/webrepl_target.ts";
import { runTerminal, sharedInput } from "../lib/cli/webrepl_terminal.ts";

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
    "A soft reboot (Ctrl-D at the prompt) may end WebREPL's link to the REPL while the " +
    "connection stays open: when the board then stays silent with no new prompt for " +
    "3 s, repl says so and offers to reconnect (Enter), or, from a pipe, exits 1.",
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
  let client = await connectWebRepl(target);
  const interactive = Deno.stdin.isTerminal();
  log(`Connected to ${client.address}. Use Ctrl-] to leave.`);
  const encoder = new TextEncoder();
  // The board's own terminal output, as it is (a closed pipe ends only the output).
  const write = (text: string) => Promise.resolve(writeAllSync("stdout", encoder.encode(text)));
  // One reader for every session: a reconnect reads on where the last session stopped.
  const input = sharedInput(Deno.stdin.readable);
  if (interactive) Deno.stdin.setRaw(true);
  try {
    while (true) {
      const end = await runTerminal(client, { input, write, interactive, notice: logRaw }, {
        timeoutMs: opts.timeoutMs,
      });
      if (end !== "reconnect") break;
      await client.close();
      logRaw(`[connecting to ${client.address} again]\r\n`);
      client = await connectWebRepl(target);
      logRaw(`[connected to ${client.address}. Use Ctrl-] to leave.]\r\n`);
    }
  } finally {
    if (interactive) Deno.stdin.setRaw(false);
    await client.close();
  }
  if (interactive) log("");
}

if (import.meta.main) runTask(spec, main);
