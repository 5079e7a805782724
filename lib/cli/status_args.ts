/** `deno task status`'s command line as typed options (`toStatusArgs`). */
import {
  boolOpt,
  listOpt,
  numberOpt,
  type ParsedArgs,
  portOpt,
  secondsOpt,
  stringOpt,
} from "./cli.ts";
import { UsageError } from "../errors.ts";
import { checkFleetFlags, wholeOpt } from "./shared_options.ts";
import { DEFAULT_STATUS_CONCURRENCY, DEFAULT_STATUS_TIMEOUT_MS } from "../deploy/status_probe.ts";

/** A WebREPL step may wait this long at most. */
export const MAX_STATUS_TIMEOUT_S = 60;
/** --watch: rounds at most this often and at least once a day. */
export const MIN_WATCH_S = 5;
export const MAX_WATCH_S = 86400;

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
  concurrency: number;
  check: boolean;
  /** --watch: ms between rounds. */
  watchMs?: number;
  rounds?: number;
  config?: string;
}

/** Parsed arguments to typed options. Pure. @throws {UsageError} */
export function toStatusArgs({ values, positionals }: ParsedArgs): StatusArgs {
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const fleet = boolOpt(values, "fleet");
  const only = listOpt(values, "only");
  const ip = stringOpt(values, "ip");
  const password = stringOpt(values, "password");
  if (!fleet && only.length) throw new UsageError("--only goes with --fleet");
  const json = boolOpt(values, "json");
  const events = boolOpt(values, "events");
  checkFleetFlags({ fleet, ip, password, json, events }, "board");
  const watchMs = secondsOpt(values, "watch", MAX_WATCH_S);
  if (watchMs !== undefined && watchMs < MIN_WATCH_S * 1000) {
    throw new UsageError(`--watch expects at least ${MIN_WATCH_S} seconds between rounds`);
  }
  if (watchMs !== undefined && json) {
    throw new UsageError("--watch prints changes as they come: use --events, not --json");
  }
  const rounds = numberOpt(
    values,
    "rounds",
    (n) => Number.isInteger(n) && n >= 1,
    "a whole number ≥ 1",
  );
  if (rounds !== undefined && watchMs === undefined) {
    throw new UsageError("--rounds goes with --watch");
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
    concurrency: wholeOpt(values, "concurrency", 256) ?? DEFAULT_STATUS_CONCURRENCY,
    check: boolOpt(values, "check"),
    ...(watchMs === undefined ? {} : { watchMs }),
    ...(rounds === undefined ? {} : { rounds }),
    ...(stringOpt(values, "config") === undefined ? {} : { config: stringOpt(values, "config") }),
  };
}
