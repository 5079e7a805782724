/**
 * `deno task status [--ip ADDR | --fleet [--only NAME|TAG]...] [--json] [--events]`: what
 * each board runs and whether it needs the current build. Asks, changes nothing.
 */
import {
  type CommandSpec,
  DEVICE_PORT_RENAMED,
  parseCommandArgs,
  runTask,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import { log, print, printJson, warn } from "../lib/cli/output.ts";
import { PASSWORD_ENV, PASSWORD_FLAG_HELP } from "../lib/webrepl/password.ts";
import { resolveKeyPath } from "../lib/config/values.ts";
import { onlyOption, QUESTION_KEY_OPTION } from "../lib/cli/shared_options.ts";
import { DEFAULT_BUILD_DIR, MANIFEST_FILE } from "../lib/build/build_outputs.ts";
import {
  statusBoards,
  statusBuilds,
  statusPassword,
  statusTargets,
} from "../lib/deploy/status_inputs.ts";
import {
  renderStatusHeading,
  renderStatusSummary,
  renderStatusTable,
} from "../lib/cli/status_report.ts";
import type { StatusReport } from "../lib/deploy/status.ts";
import { checkStatus, renderCheck } from "../lib/deploy/status_check.ts";
import { runStatus } from "../lib/deploy/status_run.ts";
import { MAX_STATUS_TIMEOUT_S, type StatusArgs, toStatusArgs } from "../lib/cli/status_args.ts";
import { CountProgress } from "../lib/cli/count_progress.ts";
import { terminalSafe } from "../lib/cli/terminal_text.ts";
import { EXIT, STATUS_CHECK_KIND } from "../lib/exit_codes.ts";
import {
  DEFAULT_STATUS_CONCURRENCY,
  DEFAULT_STATUS_TIMEOUT_MS,
} from "../lib/deploy/status_probe.ts";
import { endingRun, type EventSink, jsonLinesSink, NO_EVENTS } from "../lib/deploy/events.ts";
import { join } from "node:path";

export const spec: CommandSpec = {
  name: "status",
  renamed: DEVICE_PORT_RENAMED,
  summary:
    "What each board runs: online or in OTA mode, MicroPython, build id, and whether it needs dist's build.",
  options: {
    ip: { type: "string", arg: "ADDR", help: "one board (default: config ip)" },
    "device-port": {
      type: "string",
      arg: "PORT",
      help: "its port, WebREPL (TCP) and OTA (UDP) (default 8266)",
    },
    fleet: { type: "boolean", help: 'every board in the config\'s "devices" list' },
    only: onlyOption("board"),
    key: QUESTION_KEY_OPTION,
    password: { type: "string", arg: "P", help: `with --ip: ${PASSWORD_FLAG_HELP}` },
    timeout: {
      type: "string",
      arg: "S",
      help: `time allowed for each WebREPL step (default ${
        DEFAULT_STATUS_TIMEOUT_MS / 1000
      }, at most ${MAX_STATUS_TIMEOUT_S})`,
    },
    concurrency: {
      type: "string",
      arg: "N",
      help: `boards asked at once (default ${DEFAULT_STATUS_CONCURRENCY}, at most 256)`,
    },
    check: {
      type: "boolean",
      help:
        `exit ${EXIT.statusCheck} unless every board runs its app, is read over WebREPL and is on dist's build`,
    },
    watch: {
      type: "string",
      arg: "S",
      help: "ask again every S seconds (5 to 86400) and print only what changed; Ctrl-C ends",
    },
    rounds: { type: "string", arg: "N", help: "with --watch: stop after N rounds" },
    json: { type: "boolean", help: "print one JSON object on stdout" },
    events: {
      type: "boolean",
      help: "JSON lines on stdout, one per event (see the README); the table goes to stderr",
    },
  },
  notes: [
    `The boards are asked ${DEFAULT_STATUS_CONCURRENCY} at a time (--concurrency), each step ` +
    "with a timeout: over WebREPL (TCP) it logs in and " +
    "reads os.uname() and `import ota; ota.BUILD, ota.VERSION` (firmware without them is an " +
    "'unknown build'); over UDP it asks the OTA server whether the board is in OTA mode with a " +
    "signed packet at offset 0xFFFFFFFF, which a board in a fresh OTA session only acknowledges " +
    '(docs/device.md, "Asking whether a device is in OTA mode"). Nothing is written, nothing reset.',
    "'vs dist' compares the board's build with dist/manifest.json's: up to date (same id), older " +
    "or newer (by build time, known for the builds kept in dist/releases/), or unknown. The last " +
    "column names the kept release a board runs.",
    `Passwords: with --ip, --password, else ${PASSWORD_ENV}, else a prompt; with --fleet, each ` +
    `board's "passwordEnv" variable, else ${PASSWORD_ENV}. A board without one is still asked ` +
    "whether it runs its app or is in OTA mode. A port that accepts TCP but gives no WebREPL " +
    "handshake and prompt is 'no WebREPL answer', never 'app'.",
    `Exit 0 when every board was asked, whatever they answered; with --check, ${EXIT.statusCheck} ` +
    "when a board is offline, without a WebREPL answer, in OTA mode, not read (no or wrong " +
    "password) or not on dist's build (a cron job or CI alerts on it).",
    "--watch S prints the table once, then a line per change (a board went offline, came back, " +
    "changed build); with --events, a status.change event per change. With --check it exits as " +
    "the last round says.",
  ],
  examples: [
    `${PASSWORD_ENV}=... deno task status --ip 192.168.1.20`,
    "deno task status --fleet --only sensor",
    "deno task status --fleet --json",
    "deno task status --fleet --check --watch 60 --events",
  ],
};

export type { StatusArgs };

/** Pure: argv to typed options. @throws {UsageError} */
export function parseStatusArgs(argv: string[]): StatusArgs {
  return toStatusArgs(parseCommandArgs(spec, argv));
}

export async function main(ctx: TaskContext): Promise<number> {
  const args = parseStatusArgs(ctx.argv);
  const events: EventSink = args.events ? jsonLinesSink((line) => print(line)) : NO_EVENTS;
  // Ctrl-C ends a --watch (its last report is the result), not the process.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  if (args.watchMs !== undefined) Deno.addSignalListener("SIGINT", onSignal);
  try {
    return await endingRun(events, (events) => run(args, events, stop.signal));
  } finally {
    if (args.watchMs !== undefined) Deno.removeSignalListener("SIGINT", onSignal);
  }
}

async function run(args: StatusArgs, events: EventSink, signal: AbortSignal): Promise<number> {
  const config = await loadConfig(args.config);
  const boards = statusBoards(args, config);
  const out = config.out ?? DEFAULT_BUILD_DIR;
  const builds = await statusBuilds(out);
  const write = args.events ? (line: string) => log(line) : (line: string) => print(line);
  const manifestPath = join(out, MANIFEST_FILE);
  const manifestExists = await Deno.stat(manifestPath).then(() => true, () => false);
  const { report, problems, exitCode } = await runStatus({
    names: boards.map((b) => b.name),
    targets: () =>
      statusTargets(boards, {
        keyPath: (device) => device.key ?? resolveKeyPath(args.key, config),
        password: (device) => statusPassword(args, device),
        onWarning: warn,
      }),
    probe: { timeoutMs: args.timeoutMs, concurrency: args.concurrency, ...builds },
    check: args.check,
    ...(args.watchMs === undefined ? {} : {
      watch: {
        intervalMs: args.watchMs,
        ...(args.rounds === undefined ? {} : { rounds: args.rounds }),
        signal,
      },
    }),
    events,
    progress: () => {
      const progress = new CountProgress("status: asked");
      let answered = 0;
      return {
        onBoard: (row, done, total) => {
          if (row.state === "app" || row.state === "ota") answered++;
          progress.update(done, total, `${answered} answering`);
        },
        finish: () => progress.finish(),
      };
    },
    onReport: (report) => {
      if (args.json) printJson(args.check ? withCheck(report) : report);
      else {
        write(renderStatusHeading(report, manifestPath, manifestExists));
        write(renderStatusTable(report));
        write(renderStatusSummary(report));
      }
    },
    onChange: (c) => write(`${new Date().toISOString()} ${terminalSafe(c.text)}`),
  });
  if (args.check && !args.json) {
    const shown = problems.map((p) => ({
      device: terminalSafe(p.device),
      problem: terminalSafe(p.problem),
    }));
    write(renderCheck(report, shown, EXIT.statusCheck));
  }
  return exitCode;
}

/** `--json --check`: the report, `ok`, the `kind` of a failed check and its problems. */
function withCheck(report: StatusReport) {
  const check = checkStatus(report);
  return {
    ok: check.length === 0,
    ...(check.length ? { kind: STATUS_CHECK_KIND } : {}),
    ...report,
    check,
  };
}

if (import.meta.main) runTask(spec, main);
