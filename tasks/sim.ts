/**
 * `deno task sim`: a virtual yaota8266 device on UDP (and, when its app runs, WebREPL on
 * TCP at the same port number). Every rule of docs/device.md, seeded impairments, a flash
 * image file, and the events as lines or JSON.
 */
import { parseCommandArgs, runTask, type TaskContext } from "../lib/cli/cli.ts";
import { asDevice, type SimArgs, spec, toSimArgs } from "../lib/cli/sim_args.ts";
import { loadConfig } from "../lib/config/config.ts";
import type { DeviceEvent } from "../lib/sim/device.ts";
import { PROFILES } from "../lib/sim/device_profile.ts";
import { UsageError } from "../lib/errors.ts";
import { resolveAppOffset } from "../lib/config/values.ts";
import { loadPublicKey } from "../lib/config/key_file.ts";
import { formatHex } from "../lib/_bytes.ts";
import { round } from "../lib/_units.ts";
import { bold, green, log, printJson, red, warn, yellow } from "../lib/cli/output.ts";
import { markFlashDump, openFlashDump } from "../lib/sim/flash_dump.ts";
import { startVirtualDevice } from "../lib/sim/virtual_device.ts";
import { setProcessPriority, setRealtime } from "../lib/sim/process_priority.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";

export { type SimArgs, spec, toSimArgs };

/** Parses the command line. Pure. @throws {UsageError} */
export function parseSimArgs(argv: string[]): SimArgs {
  return toSimArgs(parseCommandArgs(spec, argv), Object.keys(PROFILES));
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

export async function main(ctx: TaskContext): Promise<number | void> {
  const parsed = toSimArgs(ctx.args, Object.keys(PROFILES));
  const config = await loadConfig(parsed.config);
  const args = asDevice(parsed, config);
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
  // Before the device's threads start (they inherit it).
  const priority = args.priority === undefined ? undefined : setProcessPriority(args.priority);
  if (priority && !priority.ok) {
    warn(
      `--priority ${args.priority}: ${priority.reason}; the device runs at nice ${priority.nice}`,
    );
  }
  const realtime = args.realtime ? setRealtime() : undefined;
  if (realtime && !realtime.ok) {
    warn(`--realtime: ${realtime.reason}; the device stays in the ordinary class`);
  }
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
      jitterMs: args.jitterMs,
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
            at: round(e.at),
            seq: e.seq,
            offset: e.offset,
            len: e.len,
            outcome: e.outcome,
            ...(e.nested ? { nested: true } : {}),
            ...(e.arrived !== undefined
              ? { arrived: round(e.arrived), started: round(e.started!) }
              : {}),
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
  if (args.json) {
    printJson({
      event: "listening",
      port: device.port,
      host: args.host,
      ...(priority ? { nice: priority.nice } : {}),
      ...(realtime ? { realtime: realtime.ok } : {}),
    });
  }
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
