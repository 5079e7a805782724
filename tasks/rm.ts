/**
 * `deno task rm --ip ADDR PATH`: remove a file (or an empty folder) on the board over
 * WebREPL, as `mpremote rm` does.
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
import { log, printJson } from "../lib/cli/output.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";
import { removeRemote } from "../lib/webrepl/remote_fs.ts";
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
  name: "rm",
  renamed: DEVICE_PORT_RENAMED,
  summary: "Remove a file, or an empty folder, on a board over WebREPL.",
  positionals: "PATH",
  options: { ...TARGET_OPTIONS, ...JSON_OPTION },
  notes: [
    "PATH is a path on the board. A missing PATH, or a folder that is not empty, is an error " +
    "(exit 1) that names the board's OSError.",
    PASSWORD_NOTE,
  ],
  examples: [`${PASSWORD_ENV}=... deno task rm --ip 192.168.4.1 old_main.py`],
};

export interface RmArgs extends TargetArgs {
  path: string;
}

export function toRmArgs(args: ParsedArgs): RmArgs {
  const [path, ...extra] = args.positionals;
  if (path === undefined || path === "") {
    throw new UsageError("name the file to remove: rm --ip ADDR PATH");
  }
  if (extra.length) throw new UsageError(`one PATH only, got also '${extra.join("' '")}'`);
  return { ...targetArgsFrom(args.values), path };
}

/** Pure: the rm options from `argv`. @throws {UsageError} On a bad flag or no PATH. */
export function parseRmArgs(argv: string[]): RmArgs {
  return toRmArgs(parseCommandArgs(spec, argv));
}

export async function main({ args }: TaskContext): Promise<number | void> {
  const opts = toRmArgs(args);
  const target = await resolveTarget(opts, await loadConfig(opts.config));
  await using client = await connectWebRepl(target);
  const kind = await removeRemote(client, opts.path);
  if (opts.json) {
    printJson({ ok: true, ip: target.host, port: target.port, path: opts.path, type: kind });
  } else {
    log(`removed ${kind === "dir" ? "folder" : "file"} '${opts.path}' on ${client.address}`);
  }
}

if (import.meta.main) runTask(spec, main);
