/**
 * `deno task ls --ip ADDR [DIR]`: list a folder on the board over WebREPL (default `/`),
 * as `mpremote ls` does: size and name, folders ending in `/`.
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
import { print, printJson, terminalSafe } from "../lib/cli/output.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";
import { listRemote, type RemoteEntry } from "../lib/webrepl/remote_fs.ts";
import { connectWebRepl } from "../lib/webrepl/client.ts";
import {
  JSON_OPTION,
  PASSWORD_NOTE,
  resolveTarget,
  TARGET_OPTIONS,
  type TargetArgs,
  targetArgsFrom,
} from "../lib/cli/webrepl_target.ts";

export const spec: CommandSpec = {
  name: "ls",
  renamed: DEVICE_PORT_RENAMED,
  summary: "List a folder on a board over WebREPL.",
  positionals: "[DIR]",
  options: { ...TARGET_OPTIONS, ...JSON_OPTION },
  notes: [
    "DIR is a path on the board (default /). Each line: the size in bytes and the name; a " +
    "folder's name ends in / and its size is 0. --json: {ok, ip, port, dir, entries: " +
    '[{name, type: "file"|"dir", size}]}.',
    PASSWORD_NOTE,
  ],
  examples: [
    `${PASSWORD_ENV}=... deno task ls --ip 192.168.4.1`,
    "deno task ls --ip 192.168.4.1 lib --json",
  ],
};

export interface LsArgs extends TargetArgs {
  dir: string;
}

export function toLsArgs(args: ParsedArgs): LsArgs {
  const [dir = "/", ...extra] = args.positionals;
  if (extra.length) throw new UsageError(`one DIR only, got also '${extra.join("' '")}'`);
  if (dir === "") throw new UsageError("DIR is empty: leave it out for /");
  return { ...targetArgsFrom(args.values), dir };
}

/** Pure: the ls options from `argv`. @throws {UsageError} On a bad flag or value. */
export function parseLsArgs(argv: string[]): LsArgs {
  return toLsArgs(parseCommandArgs(spec, argv));
}

/**
 * One line per entry: the size right-aligned, then the name (a folder's with `/`), the
 * board's name made inert for the terminal (a newline in it cannot forge an entry). Pure.
 */
export function renderListing(entries: RemoteEntry[]): string {
  const width = Math.max(1, ...entries.map((e) => String(e.size).length));
  return entries.map((e) =>
    `${String(e.size).padStart(width)} ${terminalSafe(e.name)}${e.type === "dir" ? "/" : ""}`
  ).join("\n");
}

export async function main({ args }: TaskContext): Promise<number | void> {
  const opts = toLsArgs(args);
  const target = await resolveTarget(opts, await loadConfig(opts.config));
  await using client = await connectWebRepl(target);
  const entries = await listRemote(client, opts.dir);
  if (opts.json) {
    printJson({ ok: true, ip: target.host, port: target.port, dir: opts.dir, entries });
  } else if (entries.length) {
    print(renderListing(entries));
  }
}

if (import.meta.main) runTask(spec, main);
