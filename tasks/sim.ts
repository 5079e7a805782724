/**
 * `deno task sim`: a virtual yaota8266 device on UDP (and, when its app runs, WebREPL on
 * TCP at the same port number). Every rule of docs/device.md, seeded impairments, a flash
 * image file, and the events as lines or JSON.
 */
import {
  appOffsetOpt,
  boolOpt,
  type CommandSpec,
  flashSizeOpt,
  listOpt,
  numberOpt,
  parseCommandArgs,
  type ParsedArgs,
  portOpt,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig, type OtaConfig } from "../lib/config/config.ts";
import type { DeviceEvent } from "../lib/sim/device.ts";
import { PROFILES } from "../lib/sim/device_profile.ts";
import { UsageError } from "../lib/errors.ts";
import { DEFAULT_DEVICE_PORT, resolveAppOffset, resolvePort } from "../lib/config/values.ts";
import { loadPublicKey } from "../lib/config/key_file.ts";
import { formatHex } from "../lib/_bytes.ts";
import { bold, green, log, printJson, red, warn, yellow } from "../lib/cli/output.ts";
import { markFlashDump, openFlashDump } from "../lib/sim/flash_dump.ts";
import { startVirtualDevice } from "../lib/sim/virtual_device.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";

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

/** Parses the command line. Pure. @throws {UsageError} */
export function parseSimArgs(argv: string[]): SimArgs {
  return toSimArgs(parseCommandArgs(spec, argv));
}

function describe(e: DeviceEvent): string | undefined {
  switch (e.type) {
    case "session-restart":
      return yellow(
        `session restarted (no packet for PKT_WAIT_MS); ${e.staleBytes} stale bytes kept in the buffer`,
      );
    case "flash-write":
      return e.belowApp
        ? red(
          bold(
            `FLASH WRITE AT ${
              formatHex(e.address)
            }, BELOW THE APP: the OTA server is overwritten (bootloaderOverwritten)`,
          ),
        )
        : undefined;
    case "reboot":
      return `rebooting (${e.reason})`;
    case "boot":
      return e.mode === "app"
        ? green(`boot: the app passed boot8266's check and runs`)
        : e.boot === "ota-requested"
        ? "boot: RTC magic found, OTA mode"
        : yellow(
          `boot: ${e.boot === "fail" ? "the app failed boot8266's check" : "no app"}: OTA mode`,
        );
    default:
      return undefined;
  }
}

/** What the device does now, for the banner: OTA mode or its app (and WebREPL or not). Pure. */
export function modeLine(mode: string, webrepl: boolean): string {
  if (mode === "ota") return "in OTA mode (the OTA server answers on UDP)";
  if (mode === "app") {
    return webrepl
      ? "running its app (WebREPL on TCP; UDP closed)"
      : "running its app (UDP closed; no WebREPL: give --webrepl-password)";
  }
  return "rebooting";
}

/** `--device NAME`: the listening address, key and password its config entry names. */
function asDevice(args: SimArgs, config: OtaConfig): SimArgs {
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

export async function main(ctx: TaskContext): Promise<number | void> {
  const config = await loadConfig(toSimArgs(ctx.args).config);
  const args = asDevice(toSimArgs(ctx.args), config);
  const keyPath = args.keyPath ?? config.key;
  if (!keyPath) {
    throw new UsageError("name the key the device was built for: --key FILE or --pubkey FILE");
  }
  const key = await loadPublicKey(keyPath, { onWarning: warn });
  const appOffset = resolveAppOffset(args.appOffset, config);
  if (args.force && !args.flash) throw new UsageError("--force goes with --flash FILE");
  if (appOffset >= args.flashSize) {
    throw new UsageError(
      `the app offset ${formatHex(appOffset)} is beyond the end of the flash (${
        formatHex(args.flashSize)
      } bytes): give a larger --flash-size or a smaller --app-offset`,
    );
  }
  const dump = args.flash
    ? await openFlashDump(args.flash, args.flashSize, args.force)
    : { flash: new Uint8Array(args.flashSize).fill(0xff), state: "new" as const };
  const password = args.webreplPassword ?? Deno.env.get(PASSWORD_ENV);
  let finished: (() => void) | undefined;
  const done = new Promise<void>((r) => (finished = r));
  let failure: unknown;
  const device = await startVirtualDevice({
    host: args.host,
    port: args.port,
    modulus: key.modulus,
    flash: dump.flash,
    flashFile: args.flash,
    listenOptions: { portOption: "--listen-port", hostOption: "--host" },
    onError: (e) => {
      failure = e;
      finished?.();
    },
    appOffset,
    profile: {
      ...PROFILES[args.profile]!,
      ...(args.rebootMs === undefined ? {} : { rebootMs: args.rebootMs }),
    },
    rxq: args.rxq,
    mtu: args.mtu,
    pktWaitMs: args.pktWaitMs,
    idleRebootMs: args.idleRebootMs,
    start: args.boot ? "boot" : "ota",
    rtcTrigger: args.rtcTrigger,
    link: {
      loss: args.loss,
      dup: args.dup,
      reorder: args.reorder,
      delayMs: args.delayMs,
      seed: args.seed,
      outage: args.outage,
      loseReplies: args.loseReplies,
    },
    webrepl: password !== undefined ? { password } : undefined,
    onConsole: args.json ? undefined : (line) => log(`app: ${line}`),
    onEvent: (e) => {
      if (args.json) {
        if (e.type === "boot") {
          printJson({
            event: "reboot",
            boot: e.boot,
            mode: e.mode,
            bootloaderOverwritten: e.bootloaderOverwritten,
            appValid: device.model.appIsValid(),
          });
        } else if (e.type === "packet") {
          printJson({
            event: "packet",
            at: Math.round(e.at * 10) / 10,
            seq: e.seq,
            offset: e.offset,
            len: e.len,
            outcome: e.outcome,
          });
        } else if (e.type === "flash-write") {
          printJson({ event: "flash-write", address: e.address, belowApp: e.belowApp });
        } else if (e.type === "session-restart") {
          printJson({ event: "session-restart", staleBytes: e.staleBytes });
        }
      }
      const line = describe(e);
      if (line) log(line);
      if (e.type === "boot" && args.once) finished?.();
    },
  });
  if (args.flash) {
    await markFlashDump(args.flash, args.flashSize);
    if (dump.state === "forced") {
      warn(`--force: ${args.flash} (${dump.was}) is replaced by the flash`);
    }
  }
  if (args.json) printJson({ event: "listening", port: device.port, host: args.host });
  log(
    `virtual yaota8266 on ${args.host}:${device.port}, ${
      modeLine(device.model.mode, password !== undefined)
    }; ` +
      `key ${key.fingerprint}, app offset ${formatHex(appOffset)}, profile ${args.profile}` +
      (args.rtcTrigger ? "" : ", no RTC trigger (upstream boot8266)") +
      (args.flash ? `, flash ${args.flash}` : ""),
  );
  const onSignal = () => finished?.();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  await done;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  await device.close();
  if (failure !== undefined) throw failure;
  if (args.json) {
    printJson({ event: "exit", bootloaderOverwritten: device.model.bootloaderOverwritten });
  }
  return device.model.bootloaderOverwritten ? 1 : 0;
}

if (import.meta.main) runTask(spec, main);
