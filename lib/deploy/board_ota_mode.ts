/**
 * `deploy --trigger` to a board that is in OTA mode already (what an interrupted rollout
 * leaves): its app is not running, so WebREPL does not answer, but the OTA-mode question
 * (docs/device.md, "Asking whether a device is in OTA mode") does. Then there is nothing
 * to trigger: the push goes ahead.
 */
import { DeviceUnreachableError, WebReplError } from "../errors.ts";
import { questionSigner } from "../config/key_file.ts";
import { askOtaMode } from "../transfer/ota_probe.ts";
import type { TriggerReport } from "../webrepl/trigger.ts";

/** What the board ran before is unknown: it was not asked (its app is not running). */
const UNKNOWN_RUNNING = { sysname: "", nodename: "", release: "", version: "", machine: "" };

/**
 * After the trigger's login failed with `error`: if WebREPL was refused or silent and
 * the board answers the OTA-mode question, a report saying it is in OTA mode already;
 * otherwise undefined (the caller rethrows `error`). Needs `--allow-net`, `--allow-read`.
 */
export async function otaModeAlready(
  error: unknown,
  request: { host: string; port: number; keyPath: string; onWarning?: (m: string) => void },
  webreplAddress: string,
  step: (line: string) => void,
): Promise<TriggerReport | undefined> {
  const refused = error instanceof WebReplError &&
    error.cause instanceof Deno.errors.ConnectionRefused;
  if (!refused && !(error instanceof DeviceUnreachableError)) return undefined;
  const signer = await questionSigner(request.keyPath, { onWarning: request.onWarning });
  if ("missing" in signer) return undefined;
  step(
    `no WebREPL at ${webreplAddress}: asking whether the board is in OTA mode already (as an ` +
      "interrupted update leaves it)",
  );
  if (!await askOtaMode(request.host, request.port, signer)) return undefined;
  step("it answered the OTA-mode question: in OTA mode already, so nothing to trigger");
  return {
    address: webreplAddress,
    method: "already in OTA mode",
    before: UNKNOWN_RUNNING,
    watchedMs: 0,
  };
}
