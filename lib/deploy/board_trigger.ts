/**
 * `deploy --trigger`: the whole round trip on a board that runs its app (issue 4).
 * Preflight first (nothing touches the device if the image or the key is wrong); then
 * one WebREPL login notes the running version and sends the board into OTA mode
 * (`enterOtaMode`); the push waits for the OTA server's first answer up to the device's
 * own IDLE_REBOOT_MS (docs/device.md, "Wire protocol"), while the app's WebREPL port is
 * watched: a board back in its app before the OTA server answered has a boot8266 without
 * the RTC check, and that ends the round trip at once (`TriggerIgnoredError`). The boot
 * check passes as soon as the app's WebREPL port accepts a connection; then a second login
 * reads the new version. An image sent with --force that will boot-loop ends there.
 * The password goes to the two logins only: never into a step, a status line or an error.
 */
import { tcpPortOpen } from "../transfer/tcp_probe.ts";
import {
  deploy,
  type DeployRequest,
  type DeployResult,
  type PreparedDeploy,
  prepareDeploy,
} from "./board_push.ts";
import { DeviceUnreachableError, InterruptedError } from "../errors.ts";
import {
  enterOtaMode,
  TriggerIgnoredError,
  triggerIgnoredMessage,
  type TriggerMethod,
  watchForApp,
} from "../webrepl/trigger.ts";
import { formatSeconds } from "../_units.ts";
import { type BuildStamp, describeBuild } from "../build/build_id.ts";
import { type BoardBuild, describeBoardBuild } from "../format/ota_module.ts";
import { readBoardBuild } from "./board_state.ts";
import { filesystemMoveProblem } from "./filesystem_move.ts";
import { checkVersionAfter, imageVersionOf, waitForApp } from "./board_verify.ts";
import { checkBootedBuild, decidePush, type KnownBuilds } from "./build_compare.ts";
import { otaModeAlready } from "./board_ota_mode.ts";

/** The device's IDLE_REBOOT_MS: an OTA server that got no first packet reboots after it. */
export const DEFAULT_OTA_WAIT_MS = 60000;
/** How long the app may take to bring WebREPL back after the push. */
export const DEFAULT_COME_BACK_MS = 60000;

export interface TriggeredDeployRequest extends DeployRequest {
  /** The WebREPL password. Never printed, logged or put in a message. */
  password: string;
  /** WebREPL's TCP port (default: `port`; both are 8266 on the device). */
  webreplPort?: number;
  /** Time allowed for each WebREPL step (default 5 s). */
  webreplTimeoutMs?: number;
  /** How long the OTA server may take to answer after the trigger (default 60 s, IDLE_REBOOT_MS). */
  otaWaitMs?: number;
  /** How long WebREPL may take to come back after the push (default 60 s). */
  comeBackMs?: number;
  /**
   * The build being pushed (from its manifest). With it, a board that runs it already is
   * left alone (`skipped`), one that runs a newer build is refused, and after the push the
   * board must report this id (`build_compare.ts`).
   */
  image?: BuildStamp;
  /** Finds a build id's time (its kept release), for "older" and "newer". */
  knownBuilds?: KnownBuilds;
  /** Push to a board that runs this build already (`deploy --force`). */
  reinstall?: boolean;
  /**
   * Push a build older than the board's: `true` for `deploy --allow-downgrade`, "rollback"
   * for a kept release the user named (`--release`), which is a downgrade by intent.
   */
  allowDowngrade?: boolean | "rollback";
  /** Push an image that moves the board's filesystem (`deploy --allow-filesystem-move`). */
  allowFilesystemMove?: boolean;
}

export interface TriggeredDeployResult extends DeployResult {
  /** `os.uname().version` before the update, e.g. "v1.19.1 on 2022-06-18". */
  versionBefore: string;
  /** `os.uname().version` after it; "" when the image cannot run (`bootLoop`). */
  versionAfter: string;
  /** How the board was sent to OTA mode. */
  trigger: TriggerMethod;
  /** The version in the image's banner, if it has one. */
  imageVersion?: string;
  /** The build the board named before (its `ota` module), if it could be read. */
  buildBefore?: BoardBuild;
  /** The build it names after the update. */
  buildAfter?: BoardBuild;
  /**
   * Set when nothing was sent because the board runs this build already: why. The
   * transfer's numbers are then 0 and the board was not reset.
   */
  skipped?: string;
}

/** The parts of a triggered deploy, for an event stream. */
export type TriggeredPhase = "trigger" | "push" | "verify";

export interface TriggeredDeployHooks {
  /** One line per step of the round trip (never the password). */
  onStep?(message: string): void;
  /** A part of the round trip starts, or ends (`ok` false: it threw). */
  onPhase?(phase: TriggeredPhase, state: "started" | "ended", ok?: boolean): void;
  /**
   * What the board runs, read before the reset: its MicroPython version and the build it
   * names (undefined: its answer was not understood).
   */
  onBefore?(before: { version: string; build?: BoardBuild }): void;
}

/**
 * The board took `ota.start()` but no OTA server answered before the device's idle
 * reboot: nothing was written, and it is back in its app. Retrying may succeed.
 */
export class OtaModeTimeoutError extends DeviceUnreachableError {}

/**
 * Deploys to a board that is running its app: preflight, note the running version over
 * WebREPL, trigger OTA mode, push, wait for the app to come back, compare versions.
 * Needs `--allow-net` and `--allow-read` (the image and the key).
 *
 * @example
 * ```ts ignore
 * const result = await deployWithTrigger({ ...request, password }, undefined, {
 *   onStep: (line) => log(line),
 * });
 * print(`${result.versionBefore} -> ${result.versionAfter}`);
 * ```
 * @param request What to send where, and the WebREPL password.
 * @param prepared The preflight result, if `prepareDeploy` already ran.
 * @param hooks Progress lines.
 * @returns The transfer's numbers, both versions and the trigger method.
 * @throws {UnsafeImageError | KeyError | FileError | CannedFileError} Preflight, before any connection.
 * @throws {WebReplError} The login failed (one attempt: a wrong password is not retried).
 * @throws {TriggerIgnoredError} The app came back instead of the OTA server (nothing sent).
 * @throws {OtaModeTimeoutError} No OTA server answered within `otaWaitMs` of the trigger.
 * @throws {DeviceUnreachableError | BootCheckError} See `deploy`.
 * @throws {DeviceNotBackError} WebREPL did not come back within `comeBackMs`.
 * @throws {UpdateNotAppliedError} The board came back with the old version, and the image's
 * banner names another one (without a banner the versions cannot tell: a warning).
 * @throws {InterruptedError} `request.signal` aborted.
 */
export async function deployWithTrigger(
  request: TriggeredDeployRequest,
  prepared?: PreparedDeploy,
  hooks: TriggeredDeployHooks = {},
): Promise<TriggeredDeployResult> {
  const {
    password,
    webreplPort,
    webreplTimeoutMs,
    otaWaitMs = DEFAULT_OTA_WAIT_MS,
    comeBackMs = DEFAULT_COME_BACK_MS,
    image,
    knownBuilds,
    reinstall,
    allowDowngrade,
    allowFilesystemMove,
    ...base
  } = request;
  const step = (line: string) => hooks.onStep?.(line);
  // Check first, act second: nothing reaches the device before the preflight passes.
  const ready = prepared ?? await prepareDeploy(base);
  const imageVersion = await imageVersionOf(base.file);
  const target = {
    host: base.host,
    port: webreplPort ?? base.port,
    password,
    ...(webreplTimeoutMs === undefined ? {} : { timeoutMs: webreplTimeoutMs }),
  };
  const otaAddress = `${base.host}:${base.port}`;
  const webreplAddress = `${target.host}:${target.port}`;
  if (base.signal?.aborted) {
    throw new InterruptedError("interrupted before connecting to the device: nothing was sent");
  }

  const phase = async <T>(name: TriggeredPhase, run: () => Promise<T>): Promise<T> => {
    hooks.onPhase?.(name, "started");
    try {
      const value = await run();
      hooks.onPhase?.(name, "ended", true);
      return value;
    } catch (e) {
      hooks.onPhase?.(name, "ended", false);
      throw e;
    }
  };
  const known: KnownBuilds = knownBuilds ?? (() => undefined);
  let buildBefore: BoardBuild | undefined;
  let skipped: string | undefined;
  const triggered = await phase("trigger", () =>
    enterOtaMode(target, {
      onStep: step,
      // In the same login, before the reset: which build runs, and is this one wanted?
      beforeReset: async (repl, running) => {
        buildBefore = await readBoardBuild(repl);
        hooks.onBefore?.({
          version: running.version,
          ...(buildBefore ? { build: buildBefore } : {}),
        });
        step(
          buildBefore?.id
            ? `running build ${describeBoardBuild(buildBefore)}`
            : `running an ${describeBoardBuild(buildBefore)}`,
        );
        const moved = filesystemMoveProblem(
          buildBefore,
          image,
          allowFilesystemMove ?? false,
          webreplAddress,
        );
        if (moved) throw moved;
        const decision = decidePush(buildBefore, image, known, {
          force: reinstall,
          allowDowngrade,
          where: webreplAddress,
        });
        if (decision.action === "skip") {
          skipped = decision.reason;
          return false;
        }
        if (decision.note && image) step(decision.note);
        return true;
      },
    }).catch(async (e) =>
      // Refused or silent WebREPL: an interrupted update may have left it in OTA mode.
      await otaModeAlready(e, base, webreplAddress, step) ?? Promise.reject(e)
    ));
  const versionBefore = triggered.before.version;
  if (triggered.leftRunning) {
    step(`left running: ${skipped}`);
    return {
      ok: true,
      bytes: 0,
      packets: 0,
      retransmits: 0,
      seconds: 0,
      kibps: 0,
      kbps: 0,
      block: 0,
      paced: base.pace,
      bootCheck: "skipped",
      attempts: 0,
      recoveries: 0,
      totalSeconds: 0,
      sent: ready.kind,
      ...(ready.fingerprint ? { fingerprint: ready.fingerprint } : {}),
      versionBefore,
      versionAfter: versionBefore,
      trigger: triggered.method,
      ...(imageVersion === undefined ? {} : { imageVersion }),
      ...(buildBefore ? { buildBefore, buildAfter: buildBefore } : {}),
      skipped: skipped ?? "nothing to do",
    };
  }
  step(
    `OTA mode requested (${triggered.method}): waiting up to ${
      formatSeconds(otaWaitMs / 1000)
    } for the OTA server at ${otaAddress}`,
  );

  let answered = false;
  // Until the OTA server answers, watch the app's WebREPL port: a board whose boot8266
  // ignores the RTC magic (upstream yaota8266) is back in its app within seconds, and
  // waiting out the whole first-answer window for it would only hide that.
  const answeredSignal = new AbortController();
  const pushAbort = new AbortController();
  const forwardAbort = () => pushAbort.abort();
  base.signal?.addEventListener("abort", forwardAbort);
  let appBackAfterMs: number | undefined;
  // Only within otaWaitMs (the OTA server's IDLE_REBOOT_MS): later, an OTA server that
  // got nothing has rebooted into the app by itself, which says nothing about the trigger.
  const watching = watchForApp(target, { watchMs: otaWaitMs, stop: answeredSignal.signal }).then(
    (ms) => {
      if (ms === undefined || answered) return;
      appBackAfterMs = ms;
      pushAbort.abort();
    },
  );
  const push: DeployRequest = {
    ...base,
    signal: pushAbort.signal,
    firstAnswerMs: otaWaitMs,
    freshSession: true,
    appRunning: base.appRunning ?? (() => tcpPortOpen(target.host, target.port)),
    onProgress: (p) => {
      if (!answered && (p.phase !== "probe" || p.confirmed > 0)) {
        answered = true;
        answeredSignal.abort();
        step("OTA server answered");
      }
      base.onProgress?.(p);
    },
  };
  let pushed: DeployResult;
  try {
    pushed = await phase("push", () => deploy(push, ready));
  } catch (e) {
    if (appBackAfterMs !== undefined && !base.signal?.aborted) {
      throw new TriggerIgnoredError(
        triggerIgnoredMessage(webreplAddress, triggered.method, appBackAfterMs, base.host),
        { cause: e },
      );
    }
    if (answered || !(e instanceof DeviceUnreachableError)) throw e;
    throw new OtaModeTimeoutError(
      `${webreplAddress} took ${triggered.method} but no OTA server answered at ${otaAddress} within ${
        formatSeconds(Math.max(base.timeoutMs, otaWaitMs) / 1000)
      }: nothing was written. The board goes back to its app by itself when the OTA server's idle ` +
        `reboot (IDLE_REBOOT_MS, 60 s) fires. Check that its bootloader is built for this key with ` +
        `'deno task verify'` +
        (ready.fingerprint ? ` (this image is signed with key ${ready.fingerprint})` : "") +
        `, or press its button within 3 s of a reset and run deploy without --trigger.`,
      { cause: e },
    );
  } finally {
    answeredSignal.abort();
    base.signal?.removeEventListener("abort", forwardAbort);
    await watching;
  }

  if (pushed.bootLoop) {
    // boot8266 accepts the image (its MD5 is right) and jumps into code linked for another
    // address: the app never comes up, so there is nothing to wait for.
    step("sent with --force: not waiting for an app that cannot start");
    return {
      ...pushed,
      versionBefore,
      versionAfter: "",
      trigger: triggered.method,
      ...(imageVersion === undefined ? {} : { imageVersion }),
      ...(buildBefore ? { buildBefore } : {}),
    };
  }

  step(
    `the device took the new image: waiting up to ${
      formatSeconds(comeBackMs / 1000)
    } for the app to come back`,
  );
  const after = await phase("verify", async () => {
    const state = await waitForApp(target, comeBackMs, base.signal);
    step(`running MicroPython ${state.uname.version} (was ${versionBefore})`);
    // The build id is the answer: the version does not change when only modules do.
    if (image) checkBootedBuild(state.build, buildBefore, image, webreplAddress);
    return state;
  });
  const versionAfter = after.uname.version;
  const builds = {
    ...(buildBefore ? { buildBefore } : {}),
    ...(after.build ? { buildAfter: after.build } : {}),
  };
  if (image) step(`running build ${describeBuild(image)}`);
  else {
    checkVersionAfter({
      versionBefore,
      versionAfter,
      imageVersion,
      bootCheck: pushed.bootCheck,
      where: webreplAddress,
      onWarning: (message) => base.onWarning?.(message),
    });
  }
  return {
    ...pushed,
    versionBefore,
    versionAfter,
    trigger: triggered.method,
    ...(imageVersion === undefined ? {} : { imageVersion }),
    ...builds,
  };
}
