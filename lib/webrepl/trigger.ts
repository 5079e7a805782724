/**
 * Rebooting a running board into yaota8266's OTA server over WebREPL (yaota8266
 * docs/device.md, "Entering OTA mode"): `import ota; ota.start()` (the frozen
 * `templates/ota.py`), or, on firmware without that module, the same two steps
 * typed directly: RTC user memory := `yaotaota`, then `machine.reset()`.
 */
import { sleep } from "../_sleep.ts";
import { OtaError, WebReplError } from "../errors.ts";
import { formatSeconds } from "../_units.ts";
import { CONNECT_PROBE_MS, tcpPortOpen } from "../transfer/tcp_probe.ts";
import { type ExecResult, WebReplClient, type WebReplOptions } from "./client.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";

/** The RTC user memory magic that makes the patched boot8266 enter OTA mode. */
export const OTA_MAGIC = "yaotaota";

/**
 * How long `trigger` watches for the app after the reset. A board whose boot8266 ignores
 * the magic is back in its app after boot8266's 3 s button wait (GPIO_WAIT_MS), the
 * boot and the Wi-Fi reconnect: some 5 to 10 s. One that took it stays in OTA mode for
 * the OTA server's 60 s idle reboot (IDLE_REBOOT_MS).
 */
export const DEFAULT_WATCH_MS = 12000;
/** Between two looks at the WebREPL port while watching. */
const WATCH_POLL_MS = 250;

/**
 * The board went back to its app after `ota.start()` instead of entering the OTA server:
 * its boot8266 most likely lacks the RTC check (upstream yaota8266 has none).
 */
export class TriggerIgnoredError extends OtaError {}

/**
 * The app stayed away after the reset, but the board did not answer the OTA-mode question
 * (docs/device.md, "Asking whether a device is in OTA mode"): it is not in OTA mode, or its
 * bootloader was built for another key.
 */
export class OtaModeUnconfirmedError extends OtaError {}

/** The message of a `TriggerIgnoredError`: what happened, the likely cause, the ways out. Pure. */
export function triggerIgnoredMessage(
  address: string,
  method: TriggerMethod,
  afterMs: number,
  host: string,
): string {
  return `${address} came back in its app ${
    formatSeconds(afterMs / 1000)
  } after ${method} instead of entering the OTA server: its bootloader most likely has no RTC ` +
    "check (upstream yaota8266's boot8266 ignores the 'yaotaota' magic; 'deno task verify' tells " +
    "whether a yaota8266.bin has it). Nothing was sent. To update this board, press its BOOT " +
    `button within 3 s of a reset and run 'deno task deploy --ip ${host}' without --trigger; or ` +
    "flash it once over serial with a bootloader built by 'deno task build-bootloader', which " +
    "adds the check.";
}

/**
 * After the reset: watches the app's WebREPL port (`target`) until it accepts a
 * connection, `watchMs` passes, or `stop` says the OTA server answered. The OTA server
 * has no TCP port, so an accepted connection means the board runs its app again — but
 * only once the port was seen closed: the reset is presumed from silence (a board sends
 * no FIN), and a board still finishing the old session would otherwise look "back".
 * Needs `--allow-net`.
 * @returns The milliseconds until the app came back, or undefined if it did not.
 */
export async function watchForApp(
  target: { host: string; port: number },
  options: { watchMs?: number; stop?: AbortSignal } = {},
): Promise<number | undefined> {
  const started = Date.now();
  const deadline = started + (options.watchMs ?? Infinity);
  let sawDown = false;
  while (!options.stop?.aborted) {
    const left = deadline - Date.now();
    if (left <= 0) return undefined;
    if (await tcpPortOpen(target.host, target.port, Math.min(CONNECT_PROBE_MS, left))) {
      if (sawDown) return options.stop?.aborted ? undefined : Date.now() - started;
    } else {
      sawDown = true;
    }
    await sleep(Math.min(WATCH_POLL_MS, Math.max(0, deadline - Date.now())), options.stop);
  }
  return undefined;
}

/** Where and how to log in; see `WebReplClient.connect`. */
export type WebReplTarget = WebReplOptions;

/** `os.uname()` of the running firmware. */
export interface RunningVersion {
  sysname: string;
  nodename: string;
  release: string;
  /** e.g. "v1.19.1 on 2022-06-18". */
  version: string;
  machine: string;
}

/** How the board was sent to OTA mode ("already in OTA mode": it was there, nothing sent). */
export type TriggerMethod = "ota.start()" | "rtc-magic" | "already in OTA mode";

export interface TriggerReport {
  /** "ADDR:PORT". */
  address: string;
  method: TriggerMethod;
  /** What ran before the reset. */
  before: RunningVersion;
  /** How long the app's WebREPL was watched after the reset and stayed away (0: not watched). */
  watchedMs: number;
  /**
   * After the watch: true when the board answered the OTA-mode question; undefined when
   * it was not asked (no `askOtaMode`, or no watch).
   */
  otaModeConfirmed?: true;
  /** Set when `beforeReset` said no: the board was left running its app. */
  leftRunning?: true;
}

/**
 * Called in the same login, after the running version is read and before the reset:
 * true goes on, false leaves the board running (e.g. it runs this build already); an
 * error it throws ends the trigger with nothing changed.
 */
export type BeforeReset = (repl: WebReplClient, before: RunningVersion) => Promise<boolean>;

const UNAME_CODE = `try:
    import os as _ota_os
except ImportError:
    import uos as _ota_os
print("\\t".join(_ota_os.uname()))
del _ota_os
`;
const OTA_START_CODE = "import ota\nota.start()\n";
const RTC_MAGIC_CODE = `import machine\nmachine.RTC().memory(b"${OTA_MAGIC}")\nmachine.reset()\n`;

/**
 * `os.uname()` over an open session.
 * @throws {WebReplError} If it raises or prints something else.
 */
export async function readUname(repl: WebReplClient): Promise<RunningVersion> {
  const r = await repl.exec(UNAME_CODE);
  const fields = r.output.replace(/\n$/, "").split("\t");
  if (r.error || fields.length !== 5) {
    throw new WebReplError(
      `${repl.address}: os.uname() did not answer as MicroPython does: ${
        lastLine(r.error ?? r.output)
      }`,
    );
  }
  const [sysname, nodename, release, version, machine] = fields as [
    string,
    string,
    string,
    string,
    string,
  ];
  return { sysname, nodename, release, version, machine };
}

/**
 * Logs in, reads `os.uname().version` (e.g. "v1.19.1 on 2022-06-18") and logs out.
 * Needs `--allow-net`.
 * @throws {WebReplError} See `WebReplClient.connect`.
 * @throws {DeviceUnreachableError} If the board does not answer.
 */
export async function readRunningVersion(target: WebReplTarget): Promise<string> {
  await using repl = await WebReplClient.connect(target);
  return (await readUname(repl)).version;
}

/**
 * Logs in once, reads the running version, then runs `import ota; ota.start()`; if
 * the firmware has no `ota` module (ImportError), writes the RTC magic and calls
 * `machine.reset()` itself. The board goes silent or closes when it resets; with
 * `watchMs`, its WebREPL port is then watched that long, and a board that comes back in
 * its app (its boot8266 ignored the magic) is an error. After a watch, `askOtaMode` (the
 * OTA-mode question over UDP) decides whether the board is in OTA mode: only its answer
 * says so. Needs `--allow-net`.
 * @throws {WebReplError} Login failed, or the code raised or returned instead of resetting.
 * @throws {DeviceUnreachableError} If the board does not answer.
 * @throws {TriggerIgnoredError} The app came back within `watchMs`.
 * @throws {OtaModeUnconfirmedError} `askOtaMode` got no answer.
 */
export async function enterOtaMode(
  target: WebReplTarget,
  options: {
    onStep?: (line: string) => void;
    /** The watch starts: it lasts `ms` unless the app comes back first (a countdown). */
    onWatch?: (ms: number) => void;
    silenceMs?: number;
    watchMs?: number;
    beforeReset?: BeforeReset;
    /** The OTA-mode question: true if the board answered it. */
    askOtaMode?: () => Promise<boolean>;
  } = {},
): Promise<TriggerReport> {
  const step = options.onStep ?? (() => {});
  const report = await resetIntoOtaMode(target, step, options.silenceMs, options.beforeReset);
  const watchMs = options.watchMs ?? 0;
  if (watchMs <= 0 || report.leftRunning) return report;
  step(
    `watching for ${formatSeconds(watchMs / 1000)}: a board whose bootloader ignores the RTC ` +
      "magic comes back in its app",
  );
  options.onWatch?.(watchMs);
  const back = await watchForApp({ host: target.host, port: target.port ?? DEFAULT_DEVICE_PORT }, {
    watchMs,
  });
  if (back !== undefined) {
    throw new TriggerIgnoredError(
      triggerIgnoredMessage(report.address, report.method, back, target.host),
    );
  }
  const watched = `its app did not come back within ${formatSeconds(watchMs / 1000)}`;
  if (!options.askOtaMode) {
    step(`${watched}; OTA mode not confirmed (the OTA-mode question was not asked)`);
    return { ...report, watchedMs: watchMs };
  }
  step(`${watched}: asking the OTA-mode question over UDP (it changes nothing)`);
  if (!await options.askOtaMode()) {
    const stillOpen = await tcpPortOpen(target.host, target.port ?? DEFAULT_DEVICE_PORT);
    throw new OtaModeUnconfirmedError(
      `${report.address} did not answer the OTA-mode question after ${report.method}` +
        (stillOpen
          ? `, and its WebREPL port still takes connections: it most likely did not reset (it ` +
            "closed the session but kept running)"
          : ": it is not in OTA mode, or its bootloader was built for another key ('deno task " +
            "verify' tells which key a yaota8266.bin holds)") +
        ". Nothing was sent. 'deno task status' shows what it runs now.",
    );
  }
  step(
    "it answered the OTA-mode question: it is in OTA mode, whose OTA server reboots into " +
      "the app if no packet comes within 60 s",
  );
  return { ...report, watchedMs: watchMs, otaModeConfirmed: true };
}

async function resetIntoOtaMode(
  target: WebReplTarget,
  step: (line: string) => void,
  silenceMs: number | undefined,
  beforeReset: BeforeReset | undefined,
): Promise<TriggerReport> {
  await using repl = await WebReplClient.connect(target);
  step(`logged in to WebREPL at ${repl.address}`);
  const before = await readUname(repl);
  step(`running MicroPython ${before.version}`);
  if (beforeReset && !await beforeReset(repl, before)) {
    return {
      address: repl.address,
      method: "ota.start()",
      before,
      watchedMs: 0,
      leftRunning: true,
    };
  }
  let method: TriggerMethod = "ota.start()";
  let outcome = await repl.execUntilReset(OTA_START_CODE, { silenceMs });
  if (!outcome.reset && /\bImportError\b/.test(outcome.result.error ?? "")) {
    step("no 'ota' module in this firmware: writing the RTC magic and resetting directly");
    method = "rtc-magic";
    outcome = await repl.execUntilReset(RTC_MAGIC_CODE, { silenceMs });
  }
  if (!outcome.reset) throw notReset(repl.address, method, outcome.result);
  step("the board stopped answering: it is rebooting");
  return { address: repl.address, method, before, watchedMs: 0 };
}

function notReset(address: string, method: TriggerMethod, r: ExecResult): WebReplError {
  const what = method === "ota.start()" ? "import ota; ota.start()" : "machine.reset()";
  return new WebReplError(
    r.error
      ? `${address}: ${what} failed on the board: ${lastLine(r.error)}`
      : `${address}: ${what} returned without resetting the board` +
        (r.output ? ` (it printed: ${lastLine(r.output)})` : ""),
  );
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)?.trim() || "(nothing)";
}
