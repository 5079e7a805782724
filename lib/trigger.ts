/**
 * Rebooting a running board into yaota8266's OTA server over WebREPL (yaota8266
 * docs/device.md, "Entering OTA mode"): `import ota; ota.start()` (the frozen
 * `templates/ota.py`), or, on firmware without that module, the same two steps
 * typed directly: RTC user memory := `yaotaota`, then `machine.reset()`.
 */
import { WebReplError } from "./errors.ts";
import { type ExecResult, WebReplClient, type WebReplOptions } from "./webrepl_client.ts";

/** The RTC user memory magic that makes the patched boot8266 enter OTA mode. */
export const OTA_MAGIC = "yaotaota";

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

/** How the board was sent to OTA mode. */
export type TriggerMethod = "ota.start()" | "rtc-magic";

export interface TriggerReport {
  /** "ADDR:PORT". */
  address: string;
  method: TriggerMethod;
  /** What ran before the reset. */
  before: RunningVersion;
}

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
 * `machine.reset()` itself. Succeeds when the board goes silent or closes, as it
 * does when it resets. Needs `--allow-net`.
 * @throws {WebReplError} Login failed, or the code raised or returned instead of resetting.
 * @throws {DeviceUnreachableError} If the board does not answer.
 */
export async function enterOtaMode(
  target: WebReplTarget,
  options: { onStep?: (line: string) => void; silenceMs?: number } = {},
): Promise<TriggerReport> {
  const step = options.onStep ?? (() => {});
  await using repl = await WebReplClient.connect(target);
  step(`logged in to WebREPL at ${repl.address}`);
  const before = await readUname(repl);
  step(`running MicroPython ${before.version}`);
  let method: TriggerMethod = "ota.start()";
  let outcome = await repl.execUntilReset(OTA_START_CODE, { silenceMs: options.silenceMs });
  if (!outcome.reset && /\bImportError\b/.test(outcome.result.error ?? "")) {
    step("no 'ota' module in this firmware: writing the RTC magic and resetting directly");
    method = "rtc-magic";
    outcome = await repl.execUntilReset(RTC_MAGIC_CODE, { silenceMs: options.silenceMs });
  }
  if (!outcome.reset) throw notReset(repl.address, method, outcome.result);
  step("the board stopped answering: it is rebooting into the OTA server");
  return { address: repl.address, method, before };
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
