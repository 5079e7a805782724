/**
 * `deno task get --ip ADDR REMOTE [FILE]`: copy a file from the board with WebREPL's file
 * protocol (FILE `-`: to stdout).
 */
import {
  boolOpt,
  type CommandSpec,
  DEVICE_PORT_RENAMED,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { join } from "node:path";
import { loadConfig } from "../lib/config/config.ts";
import { UsageError } from "../lib/errors.ts";
import { writeFileAtomically } from "../lib/_fs.ts";
import {
  formatBytes,
  logRaw,
  print,
  printJson,
  stderrIsTerminal,
  writeAllSync,
} from "../lib/cli/output.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";
import { baseName } from "../lib/webrepl/remote_fs.ts";
import { connectWebRepl } from "../lib/webrepl/client.ts";
import {
  JSON_OPTION,
  PASSWORD_NOTE,
  resolveTarget,
  TARGET_OPTIONS,
  type TargetArgs,
  targetArgsFrom,
} from "../lib/cli/webrepl_target.ts";
import { getFromBoard } from "../lib/webrepl/tools.ts";
import { checkGetDestination } from "../lib/webrepl/local_file.ts";
import { checkRemoteName } from "../lib/webrepl/file_records.ts";

export const spec: CommandSpec = {
  name: "get",
  renamed: DEVICE_PORT_RENAMED,
  summary: "Copy a file from a board over WebREPL.",
  positionals: "REMOTE [FILE]",
  options: {
    ...TARGET_OPTIONS,
    ...JSON_OPTION,
    force: { type: "boolean", help: "replace an existing local FILE" },
  },
  notes: [
    "REMOTE is a path on the board. FILE defaults to REMOTE's name in the current folder; an " +
    "existing folder gets that name inside it; - writes the bytes to stdout. An existing FILE " +
    "is not replaced without --force (checked before connecting). FILE is written only once " +
    "the whole file has arrived (and its size matches what the board reports); a board that " +
    "sends more than it announced is stopped. The whole copy may take 2 × --timeout plus " +
    "1 s per KiB. " +
    "--json: {ok, ip, port, remote, local, bytes, seconds}.",
    PASSWORD_NOTE,
  ],
  examples: [
    `${PASSWORD_ENV}=... deno task get --ip 192.168.4.1 boot.py`,
    "deno task get --ip 192.168.4.1 lib/app.py backup/ --json",
    "deno task get --ip 192.168.4.1 main.py -",
  ],
};

export interface GetArgs extends TargetArgs {
  remote: string;
  /** Replace an existing local file. */
  force: boolean;
  /** The local path as given ("-" for stdout); undefined: REMOTE's name. */
  local?: string;
}

export function toGetArgs(args: ParsedArgs): GetArgs {
  const [remote, local, ...extra] = args.positionals;
  if (remote === undefined || remote === "") {
    throw new UsageError("name the file to copy: get REMOTE [FILE]");
  }
  if (extra.length) throw new UsageError(`REMOTE and FILE only, got also '${extra.join("' '")}'`);
  const target = targetArgsFrom(args.values);
  if (local === "-" && target.json) {
    throw new UsageError("--json and FILE '-' both write to stdout: give a FILE");
  }
  const problem = checkRemoteName(remote);
  if (problem) throw new UsageError(problem);
  return {
    ...target,
    remote,
    force: boolOpt(args.values, "force"),
    ...(local === undefined ? {} : { local }),
  };
}

/** Pure: the get options from `argv`. @throws {UsageError} On a bad flag or value. */
export function parseGetArgs(argv: string[]): GetArgs {
  return toGetArgs(parseCommandArgs(spec, argv));
}

/** Where the file goes: FILE, or REMOTE's name in FILE if it is a folder, or in the cwd. */
async function localPath(remote: string, local: string | undefined): Promise<string> {
  if (local === undefined) return baseName(remote);
  try {
    if ((await Deno.stat(local)).isDirectory) return join(local, baseName(remote));
  } catch { /* a new file */ }
  return local;
}

export async function main({ args }: TaskContext): Promise<number | void> {
  const opts = toGetArgs(args);
  const target = await resolveTarget(opts, await loadConfig(opts.config));
  const local = opts.local === "-" ? "-" : await localPath(opts.remote, opts.local);
  // Check first: nothing is fetched that could not be written.
  if (local !== "-") await checkGetDestination(local, opts.force);
  const started = Date.now();
  await using client = await connectWebRepl(target);
  const progress = stderrIsTerminal()
    ? (done: number, size: number | undefined) =>
      logRaw(`\r${formatBytes(done)} of ${formatBytes(size ?? 0)} received`)
    : undefined;
  const data = await getFromBoard(client, opts.remote, progress ? { onProgress: progress } : {});
  if (progress) logRaw("\r\x1b[K");
  const seconds = (Date.now() - started) / 1000;
  if (local === "-") {
    writeAllSync("stdout", data);
    return;
  }
  await writeFileAtomically(local, data);
  if (opts.json) {
    printJson({
      ok: true,
      ip: target.host,
      port: target.port,
      remote: opts.remote,
      local,
      bytes: data.length,
      seconds,
    });
  } else {
    print(
      `${opts.remote} on ${client.address} → ${local} (${data.length} bytes, ${
        seconds.toFixed(1)
      } s)`,
    );
  }
}

if (import.meta.main) runTask(spec, main);
