/**
 * `deno task status [--ip ADDR | --fleet [--only NAME|TAG]...] [--json] [--events]`: what
 * each board runs and whether it needs the current build. Asks, changes nothing.
 */
import {
  boolOpt,
  type CommandSpec,
  DEVICE_PORT_RENAMED,
  listOpt,
  parseCommandArgs,
  portOpt,
  runTask,
  secondsOpt,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig, type OtaConfig } from "../lib/config/config.ts";
import { UsageError } from "../lib/errors.ts";
import { type FleetDevice, selectDevices } from "../lib/deploy/fleet.ts";
import { DEFAULT_DEVICE_PORT } from "../lib/config/values.ts";
import { log, print, printJson, warn } from "../lib/cli/output.ts";
import { PASSWORD_ENV, PASSWORD_FLAG_HELP, resolvePassword } from "../lib/webrepl/password.ts";
import { DEFAULT_KEY_PATH } from "../lib/config/values.ts";
import { DEFAULT_BUILD_DIR, MANIFEST_FILE } from "../lib/build/build_outputs.ts";
import { passwordFromEnv, statusBuilds, statusTargets } from "../lib/deploy/status_inputs.ts";
import {
  renderStatusHeading,
  renderStatusSummary,
  renderStatusTable,
} from "../lib/deploy/status.ts";
import {
  DEFAULT_STATUS_TIMEOUT_MS,
  probeFleet,
  type StatusTarget,
} from "../lib/deploy/status_probe.ts";
import {
  errorOf,
  type EventSink,
  exitCodeOf,
  jsonLinesSink,
  NO_EVENTS,
} from "../lib/deploy/events.ts";
import { join } from "node:path";

/** A WebREPL step may wait this long at most. */
const MAX_STATUS_TIMEOUT_S = 60;

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
    only: {
      type: "string",
      multiple: true,
      arg: "NAME|TAG",
      help: "with --fleet: this board, or the boards with this tag",
    },
    key: {
      type: "string",
      arg: "FILE",
      help:
        `private key that signs the OTA-mode question (default: config key, else ${DEFAULT_KEY_PATH})`,
    },
    password: { type: "string", arg: "P", help: `with --ip: ${PASSWORD_FLAG_HELP}` },
    timeout: {
      type: "string",
      arg: "S",
      help: `time allowed for each WebREPL step (default ${
        DEFAULT_STATUS_TIMEOUT_MS / 1000
      }, at most ${MAX_STATUS_TIMEOUT_S})`,
    },
    json: { type: "boolean", help: "print one JSON object on stdout" },
    events: {
      type: "boolean",
      help: "JSON lines on stdout, one per event (see the README); the table goes to stderr",
    },
  },
  notes: [
    "Every board is asked at once, each step with a timeout: over WebREPL (TCP) it logs in and " +
    "reads os.uname() and `import ota; ota.BUILD, ota.VERSION` (firmware without them is an " +
    "'unknown build'); over UDP it asks the OTA server whether the board is in OTA mode with a " +
    "signed packet at offset 0xFFFFFFFF, which a board in a fresh OTA session only acknowledges " +
    '(docs/device.md, "Asking whether a device is in OTA mode"). Nothing is written, nothing reset.',
    "'vs dist' compares the board's build with dist/manifest.json's: up to date (same id), older " +
    "or newer (by build time, known for the builds kept in dist/releases/), or unknown. The last " +
    "column names the kept release a board runs.",
    `Passwords: with --ip, --password, else ${PASSWORD_ENV}, else a prompt; with --fleet, each ` +
    `board's "passwordEnv" variable, else ${PASSWORD_ENV}. A board without one is still asked ` +
    "whether it runs its app or is in OTA mode. Exit 0 when every board was asked, whatever they answered.",
  ],
  examples: [
    `${PASSWORD_ENV}=... deno task status --ip 192.168.1.20`,
    "deno task status --fleet --only sensor",
    "deno task status --fleet --json",
  ],
};

export interface StatusArgs {
  ip?: string;
  port?: number;
  fleet: boolean;
  only: string[];
  key?: string;
  password?: string;
  timeoutMs: number;
  json: boolean;
  events: boolean;
  config?: string;
}

/** Pure: argv to typed options. @throws {UsageError} */
export function parseStatusArgs(argv: string[]): StatusArgs {
  const { values, positionals } = parseCommandArgs(spec, argv);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const fleet = boolOpt(values, "fleet");
  const only = listOpt(values, "only");
  const ip = stringOpt(values, "ip");
  const password = stringOpt(values, "password");
  if (!fleet && only.length) throw new UsageError("--only goes with --fleet");
  if (fleet && ip !== undefined) {
    throw new UsageError(
      '--fleet takes the addresses from the config\'s "devices" list: leave out --ip (choose boards with --only NAME|TAG)',
    );
  }
  if (fleet && password !== undefined) {
    throw new UsageError(
      "--fleet reads each board's WebREPL password from the environment: leave out --password",
    );
  }
  const json = boolOpt(values, "json");
  const events = boolOpt(values, "events");
  if (json && events) {
    throw new UsageError(
      "--events ends with the report (the run.ended event carries the --json object): leave out --json",
    );
  }
  return {
    ...(ip === undefined ? {} : { ip }),
    ...(portOpt(values, "device-port") === undefined
      ? {}
      : { port: portOpt(values, "device-port") }),
    fleet,
    only,
    ...(stringOpt(values, "key") === undefined ? {} : { key: stringOpt(values, "key") }),
    ...(password === undefined ? {} : { password }),
    timeoutMs: secondsOpt(values, "timeout", MAX_STATUS_TIMEOUT_S) ?? DEFAULT_STATUS_TIMEOUT_MS,
    json,
    events,
    ...(stringOpt(values, "config") === undefined ? {} : { config: stringOpt(values, "config") }),
  };
}

/** The boards to ask: `--ip`, the config's `ip`, or the fleet. */
function chooseBoards(args: StatusArgs, config: OtaConfig): FleetDevice[] {
  const port = args.port ?? config.port ?? DEFAULT_DEVICE_PORT;
  if (args.fleet) return selectDevices(config.devices, args.only, port);
  const host = args.ip ?? config.ip;
  if (!host) {
    throw new UsageError(
      'name the board: --ip ADDR (or "ip" in ota.config.json), or --fleet for the config\'s "devices"',
    );
  }
  return [{ name: host, ip: host, port }];
}

/** A board's password, or why there is none. Never in a message. */
async function passwordFor(
  args: StatusArgs,
  device: FleetDevice,
): Promise<StatusTarget["password"]> {
  if (!args.fleet) {
    try {
      return {
        value: await resolvePassword({
          ...(args.password === undefined ? {} : { flag: args.password }),
          message: `WebREPL password for ${device.ip}:${device.port}: `,
        }),
      };
    } catch (e) {
      // Without a password (and no terminal to ask on) the board is still asked the rest.
      if (e instanceof UsageError && args.password === undefined) return { missing: e.message };
      throw e;
    }
  }
  return passwordFromEnv(device, (name) => Deno.env.get(name));
}

export async function main(ctx: TaskContext): Promise<number> {
  const args = parseStatusArgs(ctx.argv);
  const events: EventSink = args.events ? jsonLinesSink((line) => print(line)) : NO_EVENTS;
  try {
    return await run(args, events);
  } catch (e) {
    events.emit({ type: "run.ended", ok: false, exitCode: exitCodeOf(e), ...errorOf(e) });
    throw e;
  }
}

async function run(args: StatusArgs, events: EventSink): Promise<number> {
  const config = await loadConfig(args.config);
  const boards = chooseBoards(args, config);
  const out = config.out ?? DEFAULT_BUILD_DIR;
  const builds = await statusBuilds(out);
  events.emit({ type: "run.started", command: "status", devices: boards.map((b) => b.name) });
  const targets = await statusTargets(boards, {
    keyPath: (device) => device.key ?? args.key ?? config.key ?? DEFAULT_KEY_PATH,
    password: (device) => passwordFor(args, device),
    onWarning: warn,
  });
  const report = await probeFleet(targets, { timeoutMs: args.timeoutMs, ...builds, events });
  const write = args.events ? (line: string) => log(line) : (line: string) => print(line);
  if (args.json) printJson(report);
  else {
    write(renderStatusHeading(report, join(out, MANIFEST_FILE)));
    write(renderStatusTable(report));
    write(renderStatusSummary(report));
  }
  events.emit({ type: "run.ended", ok: true, exitCode: 0, report });
  return 0;
}

if (import.meta.main) runTask(spec, main);
