/** `deno task sim`'s command line as typed options, and `--device NAME` from the config. */
import {
  appOffsetOpt,
  boolOpt,
  flashSizeOpt,
  listOpt,
  numberOpt,
  type ParsedArgs,
  portOpt,
  stringOpt,
} from "../cli/cli.ts";
import type { OtaConfig } from "../config/config.ts";
import { PROFILES } from "./device_profile.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_DEVICE_PORT, resolvePort } from "../config/values.ts";

export interface SimArgs {
  host: string;
  port: number;
  keyPath?: string;
  flash?: string;
  force: boolean;
  flashSize: number;
  appOffset?: number;
  profile: string;
  loss: number;
  dup: number;
  reorder: number;
  delayMs: number;
  mtu: number;
  rxq: number;
  seed: number;
  outage?: { afterBytes: number; ms: number };
  loseReplies: string[];
  pktWaitMs?: number;
  idleRebootMs?: number;
  rebootMs?: number;
  boot: boolean;
  rtcTrigger: boolean;
  webreplPassword?: string;
  once: boolean;
  json: boolean;
  config?: string;
  /** `--device NAME`: host, port, key and password from the config's entry. */
  device?: string;
}

/** Parsed arguments to typed options. Pure. @throws {UsageError} */
export function toSimArgs({ values, positionals }: ParsedArgs): SimArgs {
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const p = (name: string) =>
    numberOpt(values, name, (n) => n >= 0 && n <= 1, "a probability from 0 to 1") ?? 0;
  const whole = (name: string, min: number) =>
    numberOpt(values, name, (n) => Number.isInteger(n) && n >= min, `a whole number ≥ ${min}`);
  const profile = stringOpt(values, "profile") ?? "instant";
  if (!PROFILES[profile]) {
    throw new UsageError(
      `--profile expects ${Object.keys(PROFILES).join(" or ")}, got '${profile}'`,
    );
  }
  const outageAfter = whole("outage-after", 1);
  const outageMs = whole("outage-ms", 1);
  if ((outageAfter === undefined) !== (outageMs === undefined)) {
    throw new UsageError("--outage-after and --outage-ms go together");
  }
  const keyPath = stringOpt(values, "key") ?? stringOpt(values, "pubkey");
  const device = stringOpt(values, "device");
  if (device !== undefined && (values.host !== undefined || values["listen-port"] !== undefined)) {
    throw new UsageError(
      "--device takes the address and port from the config: leave out --host and --listen-port",
    );
  }
  for (const r of listOpt(values, "lose-reply")) {
    if (!/^\d+:\d+$/.test(r)) throw new UsageError(`--lose-reply expects OFFSET:LEN, got '${r}'`);
  }
  return {
    host: stringOpt(values, "host") ?? "127.0.0.1",
    port: portOpt(values, "listen-port", { allowZero: true }) ?? DEFAULT_DEVICE_PORT,
    keyPath,
    flash: stringOpt(values, "flash"),
    force: boolOpt(values, "force"),
    flashSize: flashSizeOpt(values) ?? 0x100000,
    appOffset: appOffsetOpt(values),
    profile,
    loss: p("loss"),
    dup: p("dup"),
    reorder: p("reorder"),
    delayMs: numberOpt(values, "delay-ms", (n) => n >= 0, "milliseconds") ?? 0,
    mtu: whole("mtu", 64) ?? 1472,
    rxq: whole("rxq", 1) ?? 4,
    seed: whole("seed", 0) ?? 1,
    outage: outageAfter !== undefined ? { afterBytes: outageAfter, ms: outageMs! } : undefined,
    loseReplies: listOpt(values, "lose-reply"),
    pktWaitMs: whole("pkt-wait-ms", 1),
    idleRebootMs: whole("idle-reboot-ms", 1),
    rebootMs: whole("reboot-ms", 1),
    boot: boolOpt(values, "boot"),
    rtcTrigger: values["rtc-trigger"] !== false,
    webreplPassword: stringOpt(values, "webrepl-password"),
    once: boolOpt(values, "once"),
    json: boolOpt(values, "json"),
    config: stringOpt(values, "config"),
    ...(device === undefined ? {} : { device }),
  };
}

/** `--device NAME`: the listening address, key and password its config entry names. */
export function asDevice(args: SimArgs, config: OtaConfig): SimArgs {
  if (args.device === undefined) return args;
  const entry = config.devices?.find((d) => d.name === args.device);
  if (!entry) {
    const names = (config.devices ?? []).map((d) => d.name);
    throw new UsageError(
      `no device '${args.device}' in ${config.path ?? "the config"}` +
        (names.length ? ` (it has ${names.join(", ")})` : ` (it has no "devices")`),
    );
  }
  const password = args.webreplPassword ??
    (entry.passwordEnv ? Deno.env.get(entry.passwordEnv) : undefined);
  return {
    ...args,
    host: entry.ip,
    port: resolvePort(entry.port, config),
    keyPath: args.keyPath ?? entry.key ?? config.key,
    ...(password === undefined ? {} : { webreplPassword: password }),
  };
}
