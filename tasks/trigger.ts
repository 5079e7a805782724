/**
 * `deno task trigger --ip ADDR`: reboot a board running MicroPython into yaota8266's
 * OTA server over WebREPL (`lib/trigger.ts`).
 */
import { suggest } from "../lib/cli/hint.ts";
import {
  boolOpt,
  type CommandSpec,
  DEVICE_PORT_RENAMED,
  parseCommandArgs,
  type ParsedArgs,
  portOpt,
  runTask,
  secondsOpt,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import { UsageError } from "../lib/errors.ts";
import { questionSigner } from "../lib/config/key_file.ts";
import { askOtaMode } from "../lib/transfer/ota_probe.ts";
import { resolveKeyPath } from "../lib/config/values.ts";
import { QUESTION_KEY_OPTION } from "../lib/cli/shared_options.ts";
import { deviceAddressProblem } from "../lib/config/device_address.ts";
import {
  formatSeconds,
  log,
  logRaw,
  print,
  printJson,
  stderrIsTerminal,
  terminalSafe,
  warn,
} from "../lib/cli/output.ts";
import { Countdown } from "../lib/cli/countdown.ts";
import { PASSWORD_ENV } from "../lib/webrepl/password.ts";
import { JSON_OPTION, PASSWORD_NOTE, TARGET_OPTIONS } from "../lib/cli/webrepl_target.ts";
import { askPassword } from "../lib/cli/prompt.ts";
import { resolveAddress } from "../lib/webrepl/target.ts";
import { DEFAULT_WATCH_MS, enterOtaMode } from "../lib/webrepl/trigger.ts";
import { DEFAULT_TIMEOUT_MS } from "../lib/webrepl/client.ts";

/** Each step waits at most this long: the device's idle reboot (60 s) ten times over. */
const MAX_STEP_TIMEOUT_S = 600;

export const spec: CommandSpec = {
  name: "trigger",
  renamed: DEVICE_PORT_RENAMED,
  summary: "Reboot a board running MicroPython into the yaota8266 OTA server, over WebREPL.",
  options: {
    ip: TARGET_OPTIONS.ip,
    "device-port": TARGET_OPTIONS["device-port"],
    password: TARGET_OPTIONS.password,
    timeout: {
      type: "string",
      arg: "SECONDS",
      help: `time allowed for each step (default ${
        DEFAULT_TIMEOUT_MS / 1000
      }, at most ${MAX_STEP_TIMEOUT_S})`,
    },
    watch: {
      type: "string",
      arg: "SECONDS",
      help: `after the reset, watch this long for the app coming back (default ${
        DEFAULT_WATCH_MS / 1000
      }; 0: don't)`,
    },
    key: QUESTION_KEY_OPTION,
    ...JSON_OPTION,
  },
  notes: [
    PASSWORD_NOTE,
    "The board runs `import ota; ota.start()` (the frozen templates/ota.py); on firmware " +
    "without that module the RTC magic 'yaotaota' is written and machine.reset() called " +
    "directly. One login attempt is made.",
    "After the reset the board's WebREPL port is watched (--watch): a board whose bootloader " +
    "has no RTC check (upstream yaota8266) comes back in its app within seconds, and that is " +
    "reported as an error naming the ways out (the BOOT button, or a bootloader built by " +
    "'deno task build-bootloader').",
    "Only a board that answers the OTA-mode question after the watch (a signed UDP packet " +
    "that changes nothing) is reported in OTA mode; one that does not is an error (exit 1). " +
    "Without a usable key the question is not asked, and the result says OTA mode is not " +
    "confirmed. --json: {ok, ip, port, method, versionBefore, uname, watchedSeconds, otaMode: " +
    '"confirmed" | "not asked"}.',
  ],
  examples: [
    `${PASSWORD_ENV}=... deno task trigger --ip 192.168.4.1`,
    "deno task trigger --ip 192.168.1.50 --json",
  ],
};

export interface TriggerArgs {
  ip?: string;
  port?: number;
  password?: string;
  timeoutMs: number;
  /** How long to watch for the app after the reset; 0 skips the watch. */
  watchMs: number;
  json: boolean;
  config?: string;
  key?: string;
}

/** Parsed arguments to typed options. Pure. @throws {UsageError} */
export function toTriggerArgs({ values }: ParsedArgs): TriggerArgs {
  const port = portOpt(values, "device-port");
  const timeoutMs = secondsOpt(values, "timeout", MAX_STEP_TIMEOUT_S);
  const watchMs = secondsOpt(values, "watch", 60, { allowZero: true });
  const password = stringOpt(values, "password");
  const ip = stringOpt(values, "ip");
  const ipProblem = ip === undefined ? undefined : deviceAddressProblem(ip);
  if (ipProblem) throw new UsageError(`--ip ${ipProblem}`);
  const config = stringOpt(values, "config");
  const key = stringOpt(values, "key");
  return {
    ...(key === undefined ? {} : { key }),
    ...(ip === undefined ? {} : { ip }),
    ...(port === undefined ? {} : { port }),
    ...(password === undefined ? {} : { password }),
    ...(config === undefined ? {} : { config }),
    timeoutMs: timeoutMs ?? DEFAULT_TIMEOUT_MS,
    watchMs: watchMs ?? DEFAULT_WATCH_MS,
    json: boolOpt(values, "json"),
  };
}

/** Pure: the trigger options from `argv`. @throws {UsageError} On a bad flag or value. */
export function parseTriggerArgs(argv: string[]): TriggerArgs {
  return toTriggerArgs(parseCommandArgs(spec, argv));
}

/** On a terminal, the watch counts down on one line (cleared when it ends); else nothing. */
function watchCountdown(): { start(label: string, ms: number): void; stop(): void } {
  if (!stderrIsTerminal()) return { start: () => {}, stop: () => {} };
  let shown = false;
  const countdown = new Countdown((line) => {
    shown = true;
    logRaw(`\r\x1b[2K${line}`);
  });
  return {
    start: (label, ms) => countdown.start(label, ms),
    stop: () => {
      countdown.stop();
      if (shown) logRaw("\r\x1b[2K");
      shown = false;
    },
  };
}

export async function main({ args, invocation }: TaskContext): Promise<number | void> {
  const opts = toTriggerArgs(args);
  const config = await loadConfig(opts.config);
  const { host, port } = resolveAddress(opts, config);
  const password = await askPassword(opts.password, `${host}:${port}`);
  const question = await otaQuestion(host, port, resolveKeyPath(opts.key, config));
  log(`connecting to WebREPL at ${host}:${port}`);
  const countdown = watchCountdown();
  const report = await enterOtaMode({ host, port, password, timeoutMs: opts.timeoutMs }, {
    onStep: (line) => {
      countdown.stop();
      log(terminalSafe(line, Infinity));
    },
    onWatch: (ms) => countdown.start("watching for the app", ms),
    watchMs: opts.watchMs,
    ...("ask" in question ? { askOtaMode: question.ask } : {}),
  }).finally(() => countdown.stop());
  if (opts.json) {
    printJson({
      ok: true,
      ip: host,
      port,
      method: report.method,
      versionBefore: report.before.version,
      uname: report.before,
      watchedSeconds: report.watchedMs / 1000,
      otaMode: report.otaModeConfirmed ? "confirmed" : "not asked",
    });
  } else if (report.otaModeConfirmed) {
    print(
      `${report.address}: in OTA mode via ${report.method} (it answered the OTA-mode question; ` +
        `was running MicroPython ${terminalSafe(report.before.version)}). ` +
        `Send the update within 60 s: ${suggest(invocation, "deploy", `--ip ${host}`)}`,
    );
  } else if (report.watchedMs > 0) {
    print(
      `${report.address}: reset via ${report.method} (was running MicroPython ` +
        `${terminalSafe(report.before.version)}); its app stayed away for ${
          formatSeconds(report.watchedMs / 1000)
        }, but OTA mode is not confirmed: ${
          "missing" in question ? question.missing : "not asked"
        } (with the key, the board is asked)`,
    );
  } else {
    print(
      `${report.address}: reset via ${report.method} (was running MicroPython ` +
        `${
          terminalSafe(report.before.version)
        }); not watched (--watch 0): a board whose bootloader has no RTC ` +
        "check is back in its app",
    );
  }
}

/** The OTA-mode question signed with `keyPath`, or why it cannot be asked. */
async function otaQuestion(
  host: string,
  port: number,
  keyPath: string,
): Promise<{ ask: () => Promise<boolean> } | { missing: string }> {
  const signer = await questionSigner(keyPath, { onWarning: warn });
  if ("missing" in signer) return { missing: `no key to ask with (${signer.missing})` };
  return { ask: () => askOtaMode(host, port, signer, { tries: 5, waitMs: 400 }) };
}

if (import.meta.main) runTask(spec, main);
