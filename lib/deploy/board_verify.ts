/**
 * After a triggered push (board_trigger.ts): waiting for the app's WebREPL to come back,
 * and whether the version it then reports says the update took.
 */
import { CONNECT_PROBE_MS, tcpPortOpen } from "../transfer/tcp_probe.ts";
import type { DeployResult } from "./board_push.ts";
import { BootCheckError, InterruptedError, OtaError, WebReplError } from "../errors.ts";
import { decodeCanned, isCanned } from "../format/canned.ts";
import { findVersion } from "../format/image.ts";
import { formatSeconds } from "../_units.ts";
import { type BoardState, readBoardState } from "./board_state.ts";

/** Between two looks at the WebREPL port while the app boots. */
const POLL_MS = 250;
/** Logins after the port accepts, at most: a board that keeps failing them is not retried. */
const MAX_COME_BACK_LOGINS = 3;

/**
 * The board came back running the version it ran before: the update did not take. A
 * failed boot check as far as the exit code goes (lib/exit_codes.ts).
 */
export class UpdateNotAppliedError extends BootCheckError {}

/** WebREPL did not come back after the push: the board is not running an app we can reach. */
export class DeviceNotBackError extends OtaError {}

/**
 * Without a build id to check, the versions before and after the push (and the image's
 * banner) are all there is: the old version back, when the banner names another, is an
 * update that did not take; the cases that cannot tell are warnings.
 * @throws {UpdateNotAppliedError} The board came back with the old version, and the image's
 * banner names another one.
 */
export function checkVersionAfter(check: {
  versionBefore: string;
  versionAfter: string;
  imageVersion: string | undefined;
  bootCheck: DeployResult["bootCheck"];
  /** The board's WebREPL address, for the message. */
  where: string;
  onWarning?: (message: string) => void;
}): void {
  const { versionBefore, versionAfter, imageVersion, bootCheck, where, onWarning } = check;
  if (versionAfter === versionBefore) {
    if (imageVersion === undefined) {
      // Without a banner there is no version to expect: the boot check and the app's
      // return are all there is to go by.
      onWarning?.(
        `the image carries no version banner, so whether it took cannot be told from the ` +
          `version (the device still reports ${versionBefore}); the boot check ` +
          `${bootCheck === "passed" ? "passed" : "was " + bootCheck} and its app ` +
          "answers again",
      );
    } else if (imageVersion !== versionBefore) {
      throw new UpdateNotAppliedError(
        `the device came back with the old version ${versionBefore}: the update did not take ` +
          `(boot check: ${bootCheck}). The OTA packets may have reached another board than ` +
          `the one answering WebREPL at ${where} (check --ip and --device-port), or its flash ` +
          `did not keep the writes: run deploy --trigger again, and if it comes back old again, ` +
          `reflash it over serial ('deno task flash').`,
      );
    } else {
      onWarning?.(
        `the image reports the version already running (${versionBefore}), so the version ` +
          "check cannot tell whether it took; the device rebooted and its app answers again",
      );
    }
  } else if (imageVersion !== undefined && versionAfter !== imageVersion) {
    onWarning?.(
      `the device reports ${versionAfter}, but the image's banner says ${imageVersion}`,
    );
  }
}

/**
 * Waits for the app's WebREPL: looks at the port until it accepts, then logs in and
 * reads `os.uname()` and the build. A wrong password is not retried.
 */
export async function waitForApp(
  target: { host: string; port: number; password: string; timeoutMs?: number },
  comeBackMs: number,
  signal: AbortSignal | undefined,
): Promise<BoardState> {
  const address = `${target.host}:${target.port}`;
  const deadline = Date.now() + comeBackMs;
  let logins = 0;
  let lastError: Error | undefined;
  while (logins < MAX_COME_BACK_LOGINS) {
    if (signal?.aborted) {
      throw new InterruptedError(
        "interrupted while waiting for the app to come back: the update was sent and the device " +
          "took it, but its new version was not read",
      );
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    if (await tcpPortOpen(target.host, target.port, Math.min(CONNECT_PROBE_MS, left))) {
      logins++;
      try {
        return await readBoardState(target);
      } catch (e) {
        if (!(e instanceof OtaError)) throw e;
        if (e instanceof WebReplError && /Access denied/.test(e.message)) {
          throw new WebReplError(
            `the update was sent and the device came back, but logging in again failed: ${e.message}`,
            { cause: e },
          );
        }
        lastError = e;
      }
    }
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
  }
  const what = logins >= MAX_COME_BACK_LOGINS
    ? `accepts connections but ${logins} logins failed (last: ${lastError?.message})`
    : `did not come back within ${formatSeconds(comeBackMs / 1000)}` +
      (lastError ? ` (last login: ${lastError.message})` : "");
  throw new DeviceNotBackError(
    `the device took the new image but its WebREPL at ${address} ${what}. It may run the new ` +
      "image without WebREPL (is webrepl.start() in its boot.py?), be back in OTA mode because " +
      `the image failed boot8266's check (then 'deno task deploy --ip ${target.host}' without ` +
      "--trigger reaches it), or not boot at all: look at its serial console.",
    lastError ? { cause: lastError } : undefined,
  );
}

/** The version in the image's banner (a canned file's payload), if any. */
export async function imageVersionOf(path: string): Promise<string | undefined> {
  try {
    const bytes = await Deno.readFile(path);
    return findVersion(isCanned(bytes) ? decodeCanned(bytes, path).payload : bytes);
  } catch {
    // The preflight has read and checked the file; without a banner there is no expectation.
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
