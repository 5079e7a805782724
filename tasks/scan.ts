/**
 * `deno task scan RANGE... [--add] [--json]`: finds the boards of a network (running
 * their app, or waiting in OTA mode) without changing any of them, and with `--add`
 * writes them into ota.config.json.
 */
import {
  boolOpt,
  type CommandSpec,
  parseCommandArgs,
  portOpt,
  runTask,
  secondsOpt,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import { UsageError } from "../lib/errors.ts";
import { DEFAULT_DEVICE_PORT, resolveKeyPath } from "../lib/config/values.ts";
import { QUESTION_KEY_OPTION, wholeOpt } from "../lib/cli/shared_options.ts";
import { log, print, printJson, warn } from "../lib/cli/output.ts";
import { CountProgress } from "../lib/cli/count_progress.ts";
import { questionSigner } from "../lib/config/key_file.ts";
import { checkPassword, PASSWORD_ENV } from "../lib/webrepl/password.ts";
import { DEFAULT_BUILD_DIR } from "../lib/build/build_outputs.ts";
import { statusBuilds } from "../lib/deploy/status_inputs.ts";
import type { StatusReport } from "../lib/deploy/status.ts";
import { renderStatusTable } from "../lib/cli/status_report.ts";
import type { StatusTarget } from "../lib/deploy/status_probe.ts";
import {
  DEFAULT_MAX_ADDRESSES,
  MAX_ADDRESSES_LIMIT,
  parseAddressRange,
  scanAddresses,
} from "../lib/fleet/address_range.ts";
import {
  DEFAULT_SCAN_CONCURRENCY,
  DEFAULT_SCAN_TIMEOUT_MS,
  scanRange,
  type ScanReport,
} from "../lib/fleet/scan.ts";
import { addBoardsToConfig } from "../lib/fleet/config_file.ts";

export const spec: CommandSpec = {
  name: "scan",
  summary: "Find the boards of a network (app running, or in OTA mode) without changing any.",
  positionals: "RANGE...",
  options: {
    "device-port": {
      type: "string",
      arg: "PORT",
      help: `WebREPL (TCP) and OTA (UDP) port (default ${DEFAULT_DEVICE_PORT})`,
    },
    key: QUESTION_KEY_OPTION,
    password: {
      type: "string",
      arg: "P",
      help:
        `WebREPL password, to read MicroPython and the build too (or ${PASSWORD_ENV}; never prompted)`,
    },
    timeout: {
      type: "string",
      arg: "S",
      help: `time for each step at each address (default ${
        DEFAULT_SCAN_TIMEOUT_MS / 1000
      }, at most 10)`,
    },
    concurrency: {
      type: "string",
      arg: "N",
      help: `addresses asked at once (default ${DEFAULT_SCAN_CONCURRENCY}, at most 256)`,
    },
    "max-addresses": {
      type: "string",
      arg: "N",
      help:
        `refuse ranges larger than N addresses (default ${DEFAULT_MAX_ADDRESSES}, at most ${MAX_ADDRESSES_LIMIT})`,
    },
    "allow-public": { type: "boolean", help: "scan public addresses too (only your own network!)" },
    add: {
      type: "boolean",
      help: 'write the boards found into the config\'s "devices" (new ones only, as board-A-B-C-D)',
    },
    json: { type: "boolean", help: "print one JSON object on stdout" },
  },
  notes: [
    "RANGE is a CIDR block (192.168.1.0/24: its network and broadcast addresses left out), a " +
    "range (192.168.1.10-192.168.1.50 or 192.168.1.10-50) or one address. Only private " +
    "networks (10/8, 172.16/12, 192.168/16, 127/8, 169.254/16, 100.64/10) unless --allow-public.",
    "Each address is asked what `status` asks: over TCP the WebSocket handshake and WebREPL's " +
    "'Password:' prompt (with a password: the login, os.uname() and the build); over UDP, where " +
    "a key is known, the OTA-mode question (a signed packet at offset 0xFFFFFFFF that a board in " +
    'OTA mode only re-acknowledges; docs/device.md, "Asking whether a device is in OTA mode"). ' +
    "Nothing a board would act on is sent: no data it writes, no end packet, no reset.",
    '--add appends the new boards to the "devices" list as text: the other entries, their ' +
    "order and formatting stay as they were, a board already listed (same address and port) is " +
    "not added again, and the file as it was first is kept once as FILE.orig.",
    "Exit 0 when the range was scanned, whether or not boards were found.",
  ],
  examples: [
    "deno task scan 192.168.1.0/24",
    `${PASSWORD_ENV}=... deno task scan 192.168.1.10-60 --add`,
    "deno task scan 10.0.4.0/24 --json",
  ],
};

export interface ScanArgs {
  ranges: string[];
  port: number;
  key?: string;
  password?: string;
  timeoutMs: number;
  concurrency: number;
  maxAddresses: number;
  allowPublic: boolean;
  add: boolean;
  json: boolean;
  config?: string;
}

/** Pure: argv to typed options. @throws {UsageError} */
export function parseScanArgs(argv: string[]): ScanArgs {
  const { values, positionals } = parseCommandArgs(spec, argv);
  if (!positionals.length) {
    throw new UsageError("name the addresses to scan: e.g. 192.168.1.0/24 or 192.168.1.10-60");
  }
  const optional = (name: string) => stringOpt(values, name);
  return {
    ranges: positionals,
    port: portOpt(values, "device-port") ?? DEFAULT_DEVICE_PORT,
    ...(optional("key") === undefined ? {} : { key: optional("key") }),
    ...(optional("password") === undefined ? {} : { password: optional("password") }),
    timeoutMs: secondsOpt(values, "timeout", 10) ?? DEFAULT_SCAN_TIMEOUT_MS,
    concurrency: wholeOpt(values, "concurrency", 256) ?? DEFAULT_SCAN_CONCURRENCY,
    maxAddresses: wholeOpt(values, "max-addresses", MAX_ADDRESSES_LIMIT) ?? DEFAULT_MAX_ADDRESSES,
    allowPublic: boolOpt(values, "allow-public"),
    add: boolOpt(values, "add"),
    json: boolOpt(values, "json"),
    ...(optional("config") === undefined ? {} : { config: optional("config") }),
  };
}

/** The password for every address, from the flag or the environment; never a prompt. */
function scanPassword(args: ScanArgs): StatusTarget["password"] {
  const value = args.password ?? Deno.env.get(PASSWORD_ENV);
  if (!value) return { missing: `give --password or set ${PASSWORD_ENV} to read it` };
  return { value: checkPassword(value, args.password === undefined ? PASSWORD_ENV : "--password") };
}

export async function main(ctx: TaskContext): Promise<number> {
  const args = parseScanArgs(ctx.argv);
  const addresses = scanAddresses(args.ranges.map(parseAddressRange), {
    allowPublic: args.allowPublic,
    maxAddresses: args.maxAddresses,
  });
  const config = await loadConfig(args.config);
  const password = scanPassword(args);
  const signer = await questionSigner(resolveKeyPath(args.key, config), { onWarning: warn });
  const builds = await statusBuilds(config.out ?? DEFAULT_BUILD_DIR);
  const progress = new CountProgress("scan: asked");
  let found = 0;
  const started = performance.now();
  let report: ScanReport;
  try {
    report = await scanRange(addresses, {
      port: args.port,
      timeoutMs: args.timeoutMs,
      concurrency: args.concurrency,
      password,
      signer,
      ...builds,
      onAddress: (board, done, total) => {
        if (board) found++;
        progress.update(done, total, `${found} found`);
      },
    });
  } finally {
    progress.finish();
  }
  const seconds = (performance.now() - started) / 1000;
  const added = args.add
    ? await addBoardsToConfig(args.config ?? config.path ?? "ota.config.json", report.boards, {
      existing: config.devices ?? [],
      defaultPort: config.port ?? DEFAULT_DEVICE_PORT,
    })
    : undefined;
  if (args.json) {
    printJson({ ...report, seconds: Number(seconds.toFixed(2)), ...(added ? { added } : {}) });
    return 0;
  }
  const named = report.boards.map((b) => ({
    ...b,
    name: added?.entries.find((e) => e.ip === b.ip && (e.port ?? DEFAULT_DEVICE_PORT) === b.port)
      ?.name ??
      b.name,
  }));
  if (named.length) {
    print(renderStatusTable({ manifest: builds.manifest ?? null, devices: named } as StatusReport));
  }
  const running = report.boards.filter((b) => b.state === "app").length;
  print(
    `${report.scanned} addresses, port ${report.port}, in ${seconds.toFixed(1)} s: ` +
      `${report.boards.length} board${report.boards.length === 1 ? "" : "s"} ` +
      `(${running} running the app, ${report.boards.length - running} in OTA mode)` +
      (report.others.length
        ? `; ${report.others.length} other TCP server(s) on the port: ${report.others.join(", ")}`
        : ""),
  );
  if (report.otaQuestion !== true) log(`OTA mode not asked: ${report.otaQuestion.missing}`);
  if (added) {
    log(
      added.entries.length
        ? `added to ${added.file}: ${
          added.entries.map((e) => e.name).join(", ")
        } (rename them there)` +
          (added.backup ? `; the file as it was is kept as ${added.backup}` : "")
        : `${added.file}: every board found is listed already`,
    );
  } else if (report.boards.length) {
    log(`add them to the config: ${ctx.program} scan ${args.ranges.join(" ")} --add`);
  }
  return 0;
}

if (import.meta.main) runTask(spec, main);
