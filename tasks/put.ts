/**
 * `deno task put --ip ADDR FILE[:REMOTE]`: copy a file to the board with WebREPL's file
 * protocol; `--fleet` copies it to every board of ota.config.json's "devices".
 */
import {
  boolOpt,
  type CommandSpec,
  DEVICE_PORT_RENAMED,
  listOpt,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import { UsageError } from "../lib/errors.ts";
import { DEFAULT_CONCURRENCY, fleetExitCode, selectDevices } from "../lib/deploy/fleet.ts";
import { fleetPasswords, putFleet, renderFleetPut } from "../lib/deploy/fleet_put.ts";
import {
  fail,
  formatBytes,
  log,
  logRaw,
  print,
  printJson,
  stderrIsTerminal,
  terminalSafe,
} from "../lib/cli/output.ts";
import { EXIT } from "../lib/exit_codes.ts";
import { terminalSafeDeep } from "../lib/cli/terminal_text.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";
import { askPassword } from "../lib/cli/prompt.ts";
import { onlyOption, wholeOpt } from "../lib/cli/shared_options.ts";
import { connectWebRepl } from "../lib/webrepl/client.ts";
import { DEFAULT_DEVICE_PORT } from "../lib/config/values.ts";
import {
  JSON_OPTION,
  PASSWORD_NOTE,
  resolveTarget,
  TARGET_OPTIONS,
  type TargetArgs,
  targetArgsFrom,
} from "../lib/cli/webrepl_target.ts";
import { parsePutSpec, PUT_TEMP_NAME, putToBoard } from "../lib/webrepl/tools.ts";
import { readForPut } from "../lib/webrepl/local_file.ts";
import { nameCharsProblem } from "../lib/webrepl/file_records.ts";
import { MAX_FILE_BYTES } from "../lib/webrepl/file_transfer.ts";

export const spec: CommandSpec = {
  name: "put",
  renamed: DEVICE_PORT_RENAMED,
  summary: "Copy a file to a board (or every board of the fleet) over WebREPL.",
  positionals: "FILE[:REMOTE] | - REMOTE",
  options: {
    ...TARGET_OPTIONS,
    ...JSON_OPTION,
    fleet: {
      type: "boolean",
      help: 'copy it to every device in the config\'s "devices" list, N at a time',
    },
    only: onlyOption("device"),
    concurrency: {
      type: "string",
      arg: "N",
      help: `with --fleet: boards written at once (default ${DEFAULT_CONCURRENCY})`,
    },
  },
  notes: [
    "REMOTE is a path on the board (default: FILE's name in the board's current folder, / " +
    "after boot). A REMOTE that ends in / or is a folder on the board gets FILE's name inside it. " +
    "The folder must exist. An existing file is replaced, safely: the bytes go to " +
    `'${PUT_TEMP_NAME}' in the same folder, and only once the board reports the whole size is ` +
    "it renamed over REMOTE, so a failed or interrupted put leaves REMOTE as it was (in a " +
    "folder too deep for that name the file is written in place, and a failure says so). FILE " +
    `is a regular file of at most ${MAX_FILE_BYTES} bytes; - REMOTE reads stdin. ` +
    "--json: {ok, ip, port, local, remote, bytes, seconds}.",
    '--fleet: each device\'s password comes from the variable its "passwordEnv" names; the ' +
    `others share --password, else ${PASSWORD_ENV}, else the prompt. The exit code is 0 only ` +
    "if every board got the file; --json: {ok, local, devices: [{name, ip, port, ok, remote, " +
    "bytes, seconds, error, kind}], failed}.",
    PASSWORD_NOTE,
  ],
  examples: [
    `${PASSWORD_ENV}=... deno task put --ip 192.168.4.1 main.py`,
    "deno task put --ip 192.168.4.1 build/app.py:lib/app.py --json",
    "deno task put --fleet --only sensor config.json",
    "deno task put --ip 192.168.4.1 - config.json   # the file's bytes from stdin",
  ],
};

export interface PutArgs extends TargetArgs {
  local: string;
  remote?: string;
  fleet: boolean;
  only: string[];
  concurrency?: number;
}

export function toPutArgs(args: ParsedArgs): PutArgs {
  const [spec, ...extra] = args.positionals;
  if (spec === undefined) throw new UsageError("name the file to copy: put FILE[:REMOTE]");
  // `put - REMOTE`: stdin to REMOTE (a leading '-:' would read as an option).
  const stdinTo = spec === "-" && extra.length === 1 ? extra.shift() : undefined;
  if (extra.length) throw new UsageError(`one FILE[:REMOTE] only, got also '${extra.join("' '")}'`);
  const { local, remote } = stdinTo === undefined
    ? parsePutSpec(spec)
    : { local: "-", remote: stdinTo };
  if (local === "-" && !remote) {
    throw new UsageError("put - reads stdin: name the board's file, e.g. put - main.py");
  }
  const problem = remote === undefined ? undefined : nameCharsProblem(remote);
  if (problem) throw new UsageError(problem);
  const fleet = boolOpt(args.values, "fleet");
  const only = listOpt(args.values, "only");
  const concurrency = wholeOpt(args.values, "concurrency", 64);
  if (!fleet && (only.length > 0 || concurrency !== undefined)) {
    throw new UsageError("--only and --concurrency go with --fleet");
  }
  const target = targetArgsFrom(args.values);
  if (fleet && (target.ip !== undefined || target.port !== undefined)) {
    throw new UsageError(
      '--fleet takes the addresses from the config\'s "devices" list: leave out --ip and ' +
        "--device-port (choose devices with --only NAME|TAG)",
    );
  }
  return {
    ...target,
    local,
    ...(remote === undefined ? {} : { remote }),
    fleet,
    only,
    ...(concurrency === undefined ? {} : { concurrency }),
  };
}

/** Pure: the put options from `argv`. @throws {UsageError} On a bad flag or value. */
export function parsePutArgs(argv: string[]): PutArgs {
  return toPutArgs(parseCommandArgs(spec, argv));
}

export async function main({ args }: TaskContext): Promise<number | void> {
  const opts = toPutArgs(args);
  const config = await loadConfig(opts.config);
  if (opts.fleet) return await fleetMain(opts, config);
  const target = await resolveTarget(opts, config);
  const data = await readForPut(opts.local, { stdin: () => Deno.stdin.readable });
  const started = Date.now();
  await using client = await connectWebRepl(target);
  const progress = stderrIsTerminal()
    ? (done: number, size: number | undefined) =>
      logRaw(`\r${formatBytes(done)} of ${formatBytes(size ?? 0)} sent`)
    : undefined;
  // Ctrl-C: say what the board holds now (put's temporary name keeps its file whole).
  let ifStopped = "nothing was written on the board";
  const onSigint = () => {
    fail(`interrupted (Ctrl-C) during the put: ${ifStopped}`);
    Deno.exit(EXIT.interrupted);
  };
  Deno.addSignalListener("SIGINT", onSigint);
  let remote: string;
  try {
    remote = await putToBoard(client, opts.local, data, opts.remote, {
      ...(progress ? { onProgress: progress } : {}),
      onWriting: (note) => (ifStopped = note),
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
  if (progress) logRaw("\r\x1b[K");
  const seconds = (Date.now() - started) / 1000;
  if (opts.json) {
    printJson({
      ok: true,
      ip: target.host,
      port: target.port,
      local: opts.local,
      remote,
      bytes: data.length,
      seconds,
    });
  } else {
    print(
      `${opts.local} → ${remote} on ${client.address} (${data.length} bytes, ${
        seconds.toFixed(1)
      } s)`,
    );
  }
  return 0;
}

async function fleetMain(
  opts: PutArgs,
  config: Awaited<ReturnType<typeof loadConfig>>,
): Promise<number> {
  const devices = selectDevices(config.devices, opts.only, DEFAULT_DEVICE_PORT);
  const data = await readForPut(opts.local, { stdin: () => Deno.stdin.readable });
  const passwords = await fleetPasswords(devices, () => askPassword(opts.password, "the fleet"));
  log(`copying '${opts.local}' (${data.length} bytes) to ${devices.length} board(s)`);
  const report = await putFleet(devices, {
    local: opts.local,
    data,
    ...(opts.remote === undefined ? {} : { remote: opts.remote }),
    passwords,
    timeoutMs: opts.timeoutMs,
    concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
    connect: connectWebRepl,
    onFinish: (row) =>
      log(terminalSafe(`${row.name}: ${row.ok ? "done" : `failed: ${row.error}`}`, Infinity)),
  });
  if (opts.json) printJson(report);
  else print(renderFleetPut(terminalSafeDeep(report)));
  return fleetExitCode({ devices: report.devices });
}

if (import.meta.main) runTask(spec, main);
