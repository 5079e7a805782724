/**
 * `deno task sim`'s options (its --help), its command line as typed options
 * (`toSimArgs`, given the device profiles there are), and `--device NAME` from the config.
 */
import {
  appOffsetOpt,
  boolOpt,
  type CommandSpec,
  flashSizeOpt,
  listOpt,
  numberOpt,
  type ParsedArgs,
  portOpt,
  stringOpt,
} from "./cli.ts";
import type { OtaConfig } from "../config/config.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_DEVICE_PORT, resolvePort } from "../config/values.ts";
import { PASSWORD_ENV } from "../webrepl/password.ts";

export const spec: CommandSpec = {
  name: "sim",
  renamed: { port: "listen-port" },
  summary: "Run a virtual yaota8266 device: the OTA server on UDP, its app's WebREPL on TCP.",
  options: {
    host: { type: "string", arg: "ADDR", help: "address to listen on (default 127.0.0.1)" },
    device: {
      type: "string",
      arg: "NAME",
      help: 'be this board of the config\'s "devices": listen on its ip and port, built for ' +
        "its key (or the config's), WebREPL password from its passwordEnv variable",
    },
    "listen-port": {
      type: "string",
      arg: "PORT",
      help:
        `UDP (OTA) and TCP (WebREPL) port to listen on, 0 picks a free one (default ${DEFAULT_DEVICE_PORT})`,
    },
    key: {
      type: "string",
      arg: "FILE",
      help: "the key the device was built for (private or public)",
    },
    pubkey: { type: "string", arg: "FILE", help: "same, as a public key" },
    flash: {
      type: "string",
      arg: "FILE",
      help: "flash dump file: created, or reused if sim wrote it (marked by FILE.sim.json); " +
        "written as the device writes",
    },
    force: {
      type: "boolean",
      help: "with --flash: use and overwrite a FILE that sim did not write",
    },
    "flash-size": { type: "string", arg: "SIZE", help: "flash size (default 1M)" },
    "app-offset": { type: "string", arg: "ADDR", help: "MAIN_APP_OFFSET (default 0x3c000)" },
    profile: {
      type: "string",
      arg: "NAME",
      help: "instant (no per-packet costs; 1 s reboot), esp8266 (a real board's costs; 1.5 s) " +
        "or esp8266-quiet (its bootloader built with --quiet-log)",
    },
    loss: { type: "string", arg: "P", help: "probability a datagram is lost, each way" },
    dup: { type: "string", arg: "P", help: "probability a datagram is duplicated" },
    reorder: {
      type: "string",
      arg: "P",
      help: "probability a datagram is delayed past later ones",
    },
    "delay-ms": { type: "string", arg: "MS", help: "one-way delay, each way" },
    "jitter-ms": {
      type: "string",
      arg: "MS",
      help: "mean extra delay, each way: exponential, a held-up datagram holding up those " +
        "behind it (default 0)",
    },
    mtu: {
      type: "string",
      arg: "N",
      help: "largest datagram delivered whole (default 1472, a 1500-byte MTU)",
    },
    rxq: { type: "string", arg: "N", help: "receive-queue places (default 4)" },
    seed: { type: "string", arg: "S", help: "seed of the impairments (default 1)" },
    "outage-after": {
      type: "string",
      arg: "BYTES",
      help: "start a link outage when this many bytes are confirmed",
    },
    "outage-ms": { type: "string", arg: "MS", help: "length of that outage" },
    "lose-reply": {
      type: "string",
      arg: "OFF:LEN",
      multiple: true,
      help: "lose the replies to this request (test hook)",
    },
    "pkt-wait-ms": {
      type: "string",
      arg: "MS",
      help: "the session timer PKT_WAIT_MS (default 10000)",
    },
    "idle-reboot-ms": { type: "string", arg: "MS", help: "IDLE_REBOOT_MS (default 60000)" },
    "reboot-ms": {
      type: "string",
      arg: "MS",
      help: "how long a reboot keeps the device silent (default: the profile's, 1000 or 1500)",
    },
    boot: {
      type: "boolean",
      help:
        "power on through boot8266's check (runs the app in flash if valid) instead of OTA mode",
    },
    "rtc-trigger": {
      type: "boolean",
      help: "boot8266 honours the RTC magic of ota.start() (default on; --no-rtc-trigger: " +
        "upstream yaota8266, the app reboots into itself)",
    },
    "webrepl-password": {
      type: "string",
      arg: "P",
      help: `enable the app's WebREPL (or set ${PASSWORD_ENV})`,
    },
    once: {
      type: "boolean",
      help: "exit once the first reboot is over (the app runs, or OTA mode again)",
    },
    json: { type: "boolean", help: "events as JSON lines on stdout" },
    priority: {
      type: "string",
      arg: "NICE",
      help: "the device process's nice value, -20 to 19 (below 0 needs root or CAP_SYS_NICE): " +
        "a board is not slowed by a busy computer, its model here is unless raised above the load",
    },
    realtime: {
      type: "boolean",
      help: "run the device process in the real-time class (Linux SCHED_FIFO, needs root or " +
        "CAP_SYS_NICE): its timing then owes nothing to what else runs (else --priority stays)",
    },
  },
  notes: [
    'With --json it prints {"event":"listening","port":P} when ready and {"event":"reboot","boot":"ok"|"fail",...} ' +
    "when the device reboots. A flush below the app offset (the OTA server's own sector) is reported as " +
    '"bootloaderOverwritten" and in red.',
  ],
  examples: [
    "deno task sim --key keys/pub.key --listen-port 0 --json --once",
    "deno task sim --key keys/pub.key --profile esp8266 --loss 0.01 --delay-ms 5",
  ],
};

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
  jitterMs: number;
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
  /** `--priority NICE`: the process's nice value, if asked for. */
  priority?: number;
  /** `--realtime`: the real-time scheduling class, where the system allows it. */
  realtime: boolean;
  config?: string;
  /** `--device NAME`: host, port, key and password from the config's entry. */
  device?: string;
}

/** Parsed arguments to typed options. Pure. @throws {UsageError} */
export function toSimArgs(
  { values, positionals }: ParsedArgs,
  profiles: readonly string[],
): SimArgs {
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const p = (name: string) =>
    numberOpt(values, name, (n) => n >= 0 && n <= 1, "a probability from 0 to 1") ?? 0;
  const whole = (name: string, min: number) =>
    numberOpt(values, name, (n) => Number.isInteger(n) && n >= min, `a whole number ≥ ${min}`);
  const profile = stringOpt(values, "profile") ?? "instant";
  if (!profiles.includes(profile)) {
    throw new UsageError(`--profile expects ${profiles.join(" or ")}, got '${profile}'`);
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
    jitterMs: numberOpt(values, "jitter-ms", (n) => n >= 0, "milliseconds") ?? 0,
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
    priority: numberOpt(
      values,
      "priority",
      (n) => Number.isInteger(n) && n >= -20 && n <= 19,
      "a whole number from -20 to 19",
    ),
    realtime: boolOpt(values, "realtime"),
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
