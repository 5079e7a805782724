/**
 * `deno task dashboard [--http-port 8267] [--host 127.0.0.1]`: a local web page with the fleet
 * at a glance and rollouts with live progress (lib/dashboard/).
 */
import {
  type CommandSpec,
  parseCommandArgs,
  portOpt,
  runTask,
  secondsOpt,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig, type OtaConfig } from "../lib/config/config.ts";
import { UsageError } from "../lib/errors.ts";
import { resolveKeyPath } from "../lib/config/values.ts";
import { KEY_OPTION } from "../lib/cli/shared_options.ts";
import { DEFAULT_BUILD_DIR } from "../lib/build/build_outputs.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";
import { log, print, warn } from "../lib/cli/output.ts";
import { createFleetPort } from "../lib/dashboard/fleet_port.ts";
import { reportPath } from "../lib/dashboard/report_store.ts";
import {
  DEFAULT_DASHBOARD_HOST,
  DEFAULT_DASHBOARD_PORT,
  type RunningDashboard,
  serveDashboard,
} from "../lib/dashboard/serve.ts";
import { DEFAULT_REFRESH_S, MAX_REFRESH_S, MIN_REFRESH_S } from "../lib/dashboard/server.ts";
import type { FleetPort } from "../lib/dashboard/port.ts";

export const spec: CommandSpec = {
  name: "dashboard",
  renamed: { port: "http-port" },
  summary: "A local web page: the fleet at a glance, rollouts with live progress.",
  options: {
    "http-port": {
      type: "string",
      arg: "PORT",
      help: `HTTP port to serve on, 0 picks a free one (default ${DEFAULT_DASHBOARD_PORT})`,
    },
    host: {
      type: "string",
      arg: "ADDR",
      help: `address to serve on (default ${DEFAULT_DASHBOARD_HOST}: this machine only)`,
    },
    key: KEY_OPTION,
    refresh: {
      type: "string",
      arg: "S",
      help:
        `ask the boards every S seconds while a page is open (default ${DEFAULT_REFRESH_S}, ${MIN_REFRESH_S} to ${MAX_REFRESH_S})`,
    },
  },
  notes: [
    "The boards are the config's \"devices\"; the build is dist/firmware-ota.bin (the config's " +
    '"out" folder) and its manifest; kept releases are dist/releases/<build-id>/. The last ' +
    "rollout's report is kept in memory and in dist/dashboard/last-rollout.json.",
    "Safe by default: it listens on 127.0.0.1 only, and every request needs the token printed " +
    "at start (only you see it): open the address it prints, which carries it once; the page " +
    "then keeps it in a cookie it cannot read. With --host 0.0.0.0 it prints this machine's " +
    "addresses (for a phone on the LAN). Changes are POST requests from the page's own " +
    "origin; one rollout at a time.",
    `WebREPL passwords come from each device's "passwordEnv" variable, else ${PASSWORD_ENV}; ` +
    "they stay in this process and never reach the browser.",
  ],
  examples: [
    "deno task dashboard",
    "deno task dashboard --http-port 9000",
    "deno task dashboard --host 0.0.0.0   # reachable from the LAN: token required",
  ],
};

export interface DashboardArgs {
  port: number;
  host: string;
  key?: string;
  refreshMs: number;
  config?: string;
}

/** Pure: argv to typed options. @throws {UsageError} */
export function parseDashboardArgs(argv: string[]): DashboardArgs {
  const { values, positionals } = parseCommandArgs(spec, argv);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const refreshMs = secondsOpt(values, "refresh", MAX_REFRESH_S) ?? DEFAULT_REFRESH_S * 1000;
  if (refreshMs < MIN_REFRESH_S * 1000) {
    throw new UsageError(
      `--refresh must be at least ${MIN_REFRESH_S} s (each refresh logs in to every board), got '${
        stringOpt(values, "refresh")
      }'`,
    );
  }
  const host = stringOpt(values, "host") ?? DEFAULT_DASHBOARD_HOST;
  if (host.trim() === "") throw new UsageError("--host needs an address");
  return {
    port: portOpt(values, "http-port", { allowZero: true }) ?? DEFAULT_DASHBOARD_PORT,
    host,
    key: stringOpt(values, "key"),
    refreshMs,
    config: stringOpt(values, "config"),
  };
}

/** The lines printed at start: where to look (with the token), and what the token is worth. */
export function startLines(
  running: Pick<RunningDashboard, "urls" | "policy">,
  boards: number,
): string[] {
  const [first, ...others] = running.urls;
  const lines = [`dashboard: ${first}  (${boards} board${boards === 1 ? "" : "s"})`];
  for (const url of others) lines.push(`       or: ${url}`);
  lines.push(
    "The address carries this run's token: only it opens the page (a browser that opened it " +
      "keeps it in a cookie). Whoever has it can deploy to your boards: do not share it.",
  );
  if (!running.policy.loopback) {
    lines.push(
      `listening beyond this machine (${running.policy.host}): open the address from a ` +
        "device on the same network",
    );
  }
  lines.push("Ctrl-C stops it (and any rollout it runs: no new board starts).");
  return lines;
}

/** Serves until Ctrl-C (or SIGTERM). */
export async function serveUntilStopped(running: RunningDashboard): Promise<void> {
  const stop = Promise.withResolvers<void>();
  const onSignal = () => stop.resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await stop.promise;
    log("stopping the dashboard…");
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    if (Deno.build.os !== "windows") Deno.removeSignalListener("SIGTERM", onSignal);
    await running.close();
  }
}

export function portFor(args: DashboardArgs, config: OtaConfig): FleetPort {
  return createFleetPort({
    config,
    keyPath: resolveKeyPath(args.key, config),
    onWarning: (m) => warn(m),
    onLog: (line) => log(line),
  });
}

export async function main(ctx: TaskContext): Promise<void> {
  const args = parseDashboardArgs(ctx.argv);
  const config = await loadConfig(args.config);
  const port = portFor(args, config);
  const running = await serveDashboard({
    port,
    host: args.host,
    listenPort: args.port,
    refreshMs: args.refreshMs,
    reportPath: reportPath(config.out ?? DEFAULT_BUILD_DIR),
    onWarning: (m) => warn(m),
  });
  const boards = port.boards().length;
  for (const line of startLines(running, boards)) print(line);
  if (boards === 0) warn('no boards: add a "devices" list to ota.config.json');
  await serveUntilStopped(running);
}

if (import.meta.main) runTask(spec, main);
