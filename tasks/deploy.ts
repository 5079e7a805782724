/**
 * `deno task deploy --ip ADDR [FILE]`: push signed firmware to a yaota8266 device over
 * Wi-Fi. Preflight, sign, push, verify that it boots.
 */
import {
  appOffsetOpt,
  boolOpt,
  type CommandSpec,
  DEVICE_PORT_RENAMED,
  flashSizeOpt,
  listOpt,
  numberOpt,
  parseCommandArgs,
  type ParsedArgs,
  portOpt,
  runTask,
  secondsOpt,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig, type OtaConfig } from "../lib/config/config.ts";
import {
  bootLoopEnding,
  deploy,
  type DeployRequest,
  type DeployResult,
  type PreparedDeploy,
  prepareDeploy,
} from "../lib/deploy/deploy.ts";
import { deployWithTrigger } from "../lib/deploy/deploy_trigger.ts";
import { InterruptedError, UsageError } from "../lib/errors.ts";
import {
  DEFAULT_DEVICE_PORT,
  DEFAULT_KEY_PATH,
  MAX_TIMEOUT_S,
  parseCount,
  resolveAppOffset,
  resolveKeyPath,
  resolvePort,
} from "../lib/config/values.ts";
import { DEFAULT_BUILD_DIR } from "../lib/build/build_outputs.ts";
import {
  formatBytes,
  green,
  log,
  print,
  printJson,
  red,
  stderrIsTerminal,
  terminalSafe,
  warn,
} from "../lib/cli/output.ts";
import { terminalSafeDeep } from "../lib/cli/terminal_text.ts";
import { chooseImage, type ImageChoice } from "../lib/build/releases.ts";
import { describeBuild } from "../lib/build/build_id.ts";
import { describeBoardBuild } from "../lib/format/ota_module.ts";
import {
  type DeviceResult,
  errorOf,
  type EventPhase,
  type EventSink,
  exitCodeOf,
  jsonLinesSink,
  NO_EVENTS,
  progressEvents,
} from "../lib/deploy/events.ts";
import { MAX_RETRY_DELAY_MS } from "../lib/deploy/rollout.ts";
import { fleetExitCode, renderFleetSummary, renderFleetTable } from "../lib/deploy/fleet.ts";
import {
  type BuildPolicy,
  buildPolicyFor,
  type SharedRequest,
} from "../lib/deploy/fleet_deploy.ts";
import { deployFleet } from "../lib/deploy/fleet_rollout.ts";
import { ProgressDisplay } from "../lib/cli/progress.ts";
import { FleetProgress } from "../lib/cli/fleet_progress.ts";
import { PASSWORD_ENV, resolvePassword } from "../lib/webrepl/password.ts";
import { terminalPrompt } from "../lib/cli/prompt.ts";
import { deviceAddressProblem } from "../lib/config/device_address.ts";
import { resolveDeviceAddress } from "../lib/transfer/resolve_device.ts";
import { lockBoard } from "../lib/deploy/board_lock.ts";
import { tracing } from "../lib/trace.ts";
import { BOOT_CHECK_STATUS } from "../lib/transfer/phase_ending.ts";
import { DEFAULT_BOOT_CHECK_MS } from "../lib/transfer/engine_core.ts";

const DEFAULT_TIMEOUT_S = 15;
/** The boot check watches for a device back in OTA mode; ten minutes outlasts any reboot. */
const MAX_BOOT_CHECK_WINDOW_S = 600;

export const spec: CommandSpec = {
  name: "deploy",
  summary:
    "Send firmware to a yaota8266 device over Wi-Fi: preflight, sign, push, check that it boots.",
  positionals: "[FILE]",
  renamed: DEVICE_PORT_RENAMED,
  options: {
    ip: { type: "string", arg: "ADDR", help: "the device's address (default: config ip)" },
    "device-port": {
      type: "string",
      arg: "PORT",
      help:
        `its OTA (UDP) port, and WebREPL (TCP) port for --trigger (default ${DEFAULT_DEVICE_PORT})`,
    },
    key: {
      type: "string",
      arg: "FILE",
      help: `private key (default: config key, else ${DEFAULT_KEY_PATH})`,
    },
    block: {
      type: "string",
      arg: "N",
      help: "auto (probe 1024, 512, 256) or 256|512|1024 (default auto)",
    },
    pace: {
      type: "string",
      arg: "MODE",
      help: "auto (hide the round trip) or off (stop-and-wait)",
    },
    timeout: {
      type: "string",
      arg: "S",
      help:
        `fail when the device answers nothing for S seconds (default ${DEFAULT_TIMEOUT_S}, at most ${MAX_TIMEOUT_S})`,
    },
    "boot-check": {
      type: "boolean",
      help: "after the end packet, check the device boots the image (default on; --no-boot-check)",
    },
    "boot-check-window": {
      type: "string",
      arg: "S",
      help: "how long to watch for a failed boot; must outlast the device's reboot (default 6)",
    },
    "app-offset": {
      type: "string",
      arg: "ADDR",
      help: "the device's MAIN_APP_OFFSET (default: config, else 0x3c000)",
    },
    "flash-size": {
      type: "string",
      arg: "SIZE",
      help: "the device's flash size (default: config, else 1M)",
    },
    force: {
      type: "boolean",
      help:
        "send an image that fails inspection (it may brick the app); with --trigger, also to boards that run this build already",
    },
    "allow-downgrade": {
      type: "boolean",
      help: "with --trigger: push even to a board that runs a newer build",
    },
    "allow-filesystem-move": {
      type: "boolean",
      help: "with --trigger: push an image that moves the board's filesystem (its files are lost)",
    },
    release: {
      type: "string",
      arg: "ID|previous",
      help:
        "send a kept build (dist/releases/ID, a unique prefix of 4+ digits will do) or the one before the current build",
    },
    json: { type: "boolean", help: "print one JSON object with the result on stdout" },
    fleet: {
      type: "boolean",
      help:
        'deploy to every device in the config\'s "devices" list, N at a time, and print a table',
    },
    only: {
      type: "string",
      multiple: true,
      arg: "NAME|TAG",
      help: "with --fleet: this device, or the devices with this tag",
    },
    concurrency: {
      type: "string",
      arg: "N",
      help: "with --fleet: devices updated at once (default 4)",
    },
    canary: {
      type: "string",
      arg: "N",
      help: "with --fleet: the first N devices alone first; the rest only if each runs the build",
    },
    "max-failures": {
      type: "string",
      arg: "K",
      help: "with --fleet: start no device after K have failed (the rest: not attempted)",
    },
    retries: {
      type: "string",
      arg: "N",
      help: "with --fleet: try a device that is offline or not answering N more times (default 0)",
    },
    "retry-delay": {
      type: "string",
      arg: "S",
      help: "with --retries: the first wait, doubled for each next one, at most 30 s (default 2)",
    },
    events: {
      type: "boolean",
      help: "JSON lines on stdout, one per event (see the README); the report goes to stderr",
    },
    trigger: {
      type: "boolean",
      help: "enter OTA mode over WebREPL first, then check the new version runs",
    },
    password: {
      type: "string",
      arg: "P",
      help: "WebREPL password for --trigger (visible in ps: prefer WEBREPL_PASSWORD or the prompt)",
    },
  },
  notes: [
    "FILE is a raw firmware image (signed on the fly) or a canned .ota file made by 'deno task sign' " +
    "(sent as it is, after its SHA1 trailer is checked). Without FILE: dist/firmware-ota.bin (in " +
    'the config\'s "out" folder if it names one), which must be the image its manifest.json ' +
    "describes, built for the device's app offset. After a failed build-ota it is absent (the " +
    "build before is in dist/stale/: name it to send it).",
    "Before the first packet the image is inspected as 'deno task inspect' does; an image that would " +
    "not boot at the app offset is refused unless --force.",
    "Ctrl-C stops at once and sends nothing more: the device restarts its session after 10 s and " +
    "running deploy again is safe.",
    "ADDR is one board's IPv4 address or host name (a broadcast, multicast or unspecified address is " +
    "refused). One deploy per board on this machine: a second one to the same address and port is " +
    "refused at once, naming the first (lock files in OTA_LOCK_DIR, default: a folder of this user's " +
    "own in XDG_RUNTIME_DIR or the temp folder).",
    "--trigger (a board running its app): logs in to WebREPL (TCP, same port number), notes the " +
    "running version, runs `import ota; ota.start()`, waits up to 60 s (the device's idle reboot) for " +
    "the OTA server, pushes, waits up to 60 s for WebREPL to come back and reports the new version; " +
    "coming back with the old version is a failure (unless the image names no version: then a " +
    "warning). A board back in its app instead of the OTA server has a bootloader without the RTC " +
    `check: that is reported at once. Password: --password, else ${PASSWORD_ENV}, else ` +
    "a prompt without echo; one login attempt.",
    '--fleet deploys to the devices of the config\'s "devices" list: the preflight once, then each ' +
    "device with its own progress line, each failure in its own row. The exit code is 0 only if every " +
    "device succeeded; the report names the command that retries the others. With --trigger each " +
    'device\'s WebREPL password comes from the variable its "passwordEnv" names, else WEBREPL_PASSWORD.',
    "Builds (with --trigger): the board's build id (ota.BUILD) is read before the reset. A board " +
    "that runs the build being sent is skipped ('up to date'; --force sends anyway); one that runs " +
    "a newer build (by build time, from dist/releases/) is refused unless --allow-downgrade; after " +
    "the push, the board must report the new build id. The build being sent is known from its " +
    "manifest: dist/manifest.json, the release's, or a manifest.json beside FILE describing it.",
    "Rollouts (--fleet): --canary N updates the first N devices alone and goes on only if each " +
    "of them ends up running the build; --max-failures K stops starting devices once K failed; " +
    "--retries N tries devices that were offline or did not answer again after 2, 4, 8... s. " +
    "Every device ends updated, skipped, failed or not attempted; the report ends with the " +
    "command that retries the failed and resumes the rest.",
    "--release previous sends the build before the current one (dist/manifest.json): the only " +
    "way back a single-slot bootloader has. A release named this way may be older than the " +
    "board's build: that downgrade is what was asked for.",
  ],
  examples: [
    "deno task deploy --ip 192.168.4.1",
    "deno task deploy --ip 192.168.4.1 dist/firmware-ota.bin --json",
    `${PASSWORD_ENV}=... deno task deploy --ip 192.168.4.1 --trigger`,
    "deno task deploy --fleet --only sensor --concurrency 2",
    "deno task deploy --fleet --trigger --canary 1 --max-failures 2 --retries 3",
    "deno task deploy --ip 192.168.4.1 --trigger --release previous",
  ],
};

export interface DeployArgs {
  ip?: string;
  port?: number;
  keyPath?: string;
  block: "auto" | number;
  pace: boolean;
  timeoutMs: number;
  bootCheck: boolean;
  bootCheckMs?: number;
  appOffset?: number;
  flashSize?: number;
  force: boolean;
  json: boolean;
  file?: string;
  config?: string;
  fleet: boolean;
  only: string[];
  concurrency?: number;
  trigger: boolean;
  /** `--password`: the WebREPL password for --trigger (else WEBREPL_PASSWORD, else a prompt). */
  password?: string;
  allowDowngrade: boolean;
  allowFilesystemMove: boolean;
  /** `--release`: a kept build's id (or prefix), or "previous". */
  release?: string;
  canary?: number;
  maxFailures?: number;
  retries?: number;
  retryDelayMs?: number;
  events: boolean;
}

/** Parsed arguments to typed options. Pure. @throws {UsageError} */
export function toDeployArgs({ values, positionals }: ParsedArgs): DeployArgs {
  if (positionals.length > 1) {
    throw new UsageError(`one FILE only, got '${positionals.join("' '")}'`);
  }
  const blockText = stringOpt(values, "block") ?? "auto";
  let block: "auto" | number = "auto";
  if (blockText !== "auto") {
    block = Number(blockText);
    if (![256, 512, 1024].includes(block)) {
      throw new UsageError(`--block expects auto, 256, 512 or 1024, got '${blockText}'`);
    }
  }
  const pace = stringOpt(values, "pace") ?? "auto";
  if (pace !== "auto" && pace !== "off") {
    throw new UsageError(`--pace expects auto or off, got '${pace}'`);
  }
  const port = portOpt(values, "device-port");
  const fleet = boolOpt(values, "fleet");
  const only = listOpt(values, "only");
  const concurrency = numberOpt(
    values,
    "concurrency",
    (n) => Number.isInteger(n) && n >= 1 && n <= 64,
    "a whole number from 1 to 64",
  );
  if (!fleet && (only.length > 0 || concurrency !== undefined)) {
    throw new UsageError("--only and --concurrency go with --fleet");
  }
  const trigger = boolOpt(values, "trigger");
  const password = stringOpt(values, "password");
  if (password !== undefined && (!trigger || fleet)) {
    throw new UsageError(
      fleet
        ? "--fleet reads each device's WebREPL password from the environment: leave out --password"
        : "--password goes with --trigger",
    );
  }
  const ip = stringOpt(values, "ip");
  const ipProblem = ip === undefined ? undefined : deviceAddressProblem(ip);
  if (ipProblem) throw new UsageError(`--ip ${ipProblem}`);
  const count = (name: string, min: number, max: number) => {
    const text = stringOpt(values, name);
    return text === undefined ? undefined : parseCount(text, { flag: name }, min, max);
  };
  const canary = count("canary", 1, 1000);
  const maxFailures = count("max-failures", 1, 1000);
  const retries = count("retries", 0, 20);
  const retryDelayMs = secondsOpt(values, "retry-delay", MAX_RETRY_DELAY_MS / 1000, {
    allowZero: true,
  });
  if (
    !fleet &&
    (canary !== undefined || maxFailures !== undefined || retries !== undefined ||
      retryDelayMs !== undefined)
  ) {
    throw new UsageError("--canary, --max-failures, --retries and --retry-delay go with --fleet");
  }
  const release = stringOpt(values, "release");
  if (release !== undefined && positionals.length > 0) {
    throw new UsageError(
      `--release names the image to send: leave out FILE '${positionals[0]}'`,
    );
  }
  const allowDowngrade = boolOpt(values, "allow-downgrade");
  if (allowDowngrade && !trigger) {
    throw new UsageError(
      "--allow-downgrade goes with --trigger: only a running board can say which build it runs",
    );
  }
  const events = boolOpt(values, "events");
  if (events && boolOpt(values, "json")) {
    throw new UsageError(
      "--events ends with the report (the run.ended event carries the --json object): leave out --json",
    );
  }
  if (fleet && stringOpt(values, "ip") !== undefined) {
    throw new UsageError(
      '--fleet takes the addresses from the config\'s "devices" list: leave out --ip (choose devices with --only NAME|TAG)',
    );
  }
  return {
    ip,
    port,
    keyPath: stringOpt(values, "key"),
    block,
    pace: pace === "auto",
    timeoutMs: secondsOpt(values, "timeout", MAX_TIMEOUT_S) ?? DEFAULT_TIMEOUT_S * 1000,
    bootCheck: values["boot-check"] !== false,
    bootCheckMs: secondsOpt(values, "boot-check-window", MAX_BOOT_CHECK_WINDOW_S),
    appOffset: appOffsetOpt(values),
    flashSize: flashSizeOpt(values),
    force: boolOpt(values, "force"),
    json: boolOpt(values, "json"),
    file: positionals[0],
    config: stringOpt(values, "config"),
    fleet,
    only,
    concurrency,
    trigger,
    ...(password === undefined ? {} : { password }),
    allowDowngrade,
    allowFilesystemMove: boolOpt(values, "allow-filesystem-move"),
    ...(release === undefined ? {} : { release }),
    ...(canary === undefined ? {} : { canary }),
    ...(maxFailures === undefined ? {} : { maxFailures }),
    ...(retries === undefined ? {} : { retries }),
    ...(retryDelayMs === undefined ? {} : { retryDelayMs }),
    events,
  };
}

/** What every deploy of this command shares: flags over the config over the defaults. */
function sharedRequest(args: DeployArgs, config: OtaConfig, image: ImageChoice): SharedRequest {
  return {
    file: image.file,
    ...(image.buildDir === undefined ? {} : { buildDir: image.buildDir }),
    block: args.block,
    pace: args.pace,
    timeoutMs: args.timeoutMs,
    force: args.force,
    bootCheck: args.bootCheck,
    bootCheckMs: args.bootCheckMs,
    appOffset: resolveAppOffset(args.appOffset, config),
    flashSize: args.flashSize ?? config.flashSize ?? 0x100000,
    onWarning: (m) => warn(m),
  };
}

/** What --trigger does with the build a board runs. */
function buildPolicy(args: DeployArgs, image: ImageChoice): BuildPolicy {
  return buildPolicyFor(image, {
    force: args.force,
    allowDowngrade: args.allowDowngrade,
    allowFilesystemMove: args.allowFilesystemMove,
  });
}

/**
 * What a push without --trigger proves, and what it does not: the OTA protocol has no
 * message that says "booted the new image" (docs/device.md), so silence after the end
 * packet is all there is; a peer that acknowledges everything looks the same.
 */
const bootCheckPassed = (host: string) =>
  "the device confirmed every packet and stopped answering OTA packets after the end: it " +
  "rebooted and did not fall back to OTA mode. Without --trigger the new build is not " +
  `confirmed: 'deno task status --ip ${host}' (or deploy --trigger) reads the build it runs`;
const bootCheckSkipped = (host: string) =>
  "the device confirmed every packet before the end packet; boot check skipped: whether it " +
  `rebooted into the new build is not known ('deno task status --ip ${host}' reads it)`;

function summary(result: DeployResult): string {
  return green("done: ") +
    `${formatBytes(result.bytes)} in ${result.seconds.toFixed(1)} s, ${
      result.kibps.toFixed(1)
    } KiB/s, ` +
    `block ${result.block}, ${result.retransmits} retransmissions` +
    (result.recoveries ? `, ${result.recoveries} session recoveries` : "");
}

/** Parses the command line. Pure. @throws {UsageError} */
export function parseDeployArgs(argv: string[]): DeployArgs {
  return toDeployArgs(parseCommandArgs(spec, argv));
}

/** Where the human result goes: stdout, or stderr when stdout carries the events. */
function resultWriter(args: DeployArgs): (line: string) => void {
  return args.events ? (line) => log(line) : (line) => print(line);
}

/** The event sink of --events (JSON lines on stdout), or none. */
function eventSink(args: DeployArgs): EventSink {
  return args.events ? jsonLinesSink((line) => print(line)) : NO_EVENTS;
}

export async function main(ctx: TaskContext): Promise<number> {
  const args = toDeployArgs(ctx.args);
  const config = await loadConfig(args.config);
  const events = eventSink(args);
  try {
    const image = await chooseImage(
      { ...(args.file === undefined ? {} : { file: args.file }), release: args.release },
      config.out ?? DEFAULT_BUILD_DIR,
    );
    if (image.release) {
      log(terminalSafe(
        `release ${describeBuild(image.release)}, built ${image.release.builtAt}: ${image.file}`,
        Infinity,
      ));
    }
    if (args.fleet) return await fleetMain(args, config, image, events, ctx);
    return await singleMain(args, config, image, events);
  } catch (e) {
    events.emit({ type: "run.ended", ok: false, exitCode: exitCodeOf(e), ...errorOf(e) });
    throw e;
  }
}

async function singleMain(
  args: DeployArgs,
  config: OtaConfig,
  image: ImageChoice,
  events: EventSink,
): Promise<number> {
  const out = resultWriter(args);
  const host = args.ip ?? config.ip;
  if (!host) {
    throw new UsageError(
      'name the device: --ip ADDR (or YAOTA_IP, or "ip" in ota.config.json)',
    );
  }
  const request: DeployRequest = {
    ...sharedRequest(args, config, image),
    host,
    port: resolvePort(args.port, config),
    keyPath: resolveKeyPath(args.keyPath, config),
  };
  const device = host;
  events.emit({
    type: "run.started",
    command: "deploy",
    devices: [device],
    image: { file: request.file, ...(image.build ? { build: image.build } : {}) },
  });
  const phase = (name: EventPhase, state: "started" | "ended", ok?: boolean) =>
    events.emit(
      state === "started"
        ? { type: "phase.started", phase: name, device }
        : { type: "phase.ended", phase: name, device, ok: ok ?? false },
    );
  // A name that does not resolve, or another deploy to this board: said before anything else.
  const address = await resolveDeviceAddress(host);
  await using _lock = await lockBoard(address, request.port, { host });
  phase("preflight", "started");
  let prepared: PreparedDeploy;
  let password: string | undefined;
  try {
    prepared = await prepareDeploy(request);
    // After the preflight, before anything reaches the device.
    password = args.trigger
      ? await resolvePassword({
        ...terminalPrompt,
        ...(args.password === undefined ? {} : { flag: args.password }),
        message: `WebREPL password for ${request.host}:${request.port}: `,
      })
      : undefined;
  } catch (e) {
    phase("preflight", "ended", false);
    throw e;
  }
  phase("preflight", "ended", true);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  Deno.addSignalListener("SIGINT", onSigint);
  // With --verbose, plain progress lines between the trace lines (a bar would be torn up).
  const progress = new ProgressDisplay(
    `${request.host}:${request.port}`,
    prepared.source.size,
    stderrIsTerminal() && !tracing(),
  );
  const progressEvent = progressEvents(events, device);
  // With --trigger, only once the board's build says it needs this one (else: "up to date").
  const announce = () =>
    log(terminalSafe(
      `sending ${request.file} (${formatBytes(prepared.source.size)}, ${
        prepared.kind === "canned" ? "canned" : `key ${prepared.fingerprint}`
      }${
        image.build ? `, build ${describeBuild(image.build)}` : ""
      }) to ${request.host}:${request.port}`,
      Infinity,
    ));
  if (password === undefined) announce();
  const ended = (result: DeviceResult, extra: Record<string, unknown>, code: number) => {
    events.emit({ type: "device.result", device, result, ...extra });
    events.emit({ type: "run.ended", ok: code === 0, exitCode: code });
    return code;
  };
  try {
    const live: DeployRequest = {
      ...request,
      signal: controller.signal,
      onProgress: (p) => {
        progress.update({ ...p });
        progressEvent(p);
      },
      onStatus: (m) =>
        m === BOOT_CHECK_STATUS
          ? progress.countdown(m, request.bootCheckMs ?? DEFAULT_BOOT_CHECK_MS)
          : progress.note(m),
    };
    if (password !== undefined) {
      const result = await deployWithTrigger(
        { ...live, ...buildPolicy(args, image), password },
        prepared,
        {
          onStep: (m) => progress.note(m),
          onPhase: (name, state, ok) => {
            if (name === "push" && state === "started") announce();
            phase(name, state, ok);
          },
        },
      );
      progress.finish();
      const builds = {
        ...(result.buildBefore ? { buildBefore: result.buildBefore.id ?? "unknown" } : {}),
        ...(result.buildAfter ? { buildAfter: result.buildAfter.id ?? "unknown" } : {}),
      };
      if (args.json) printJson(result);
      else if (result.skipped !== undefined) {
        out(terminalSafe(
          `${request.host}: ${result.skipped}. Nothing was sent (--force sends anyway).`,
          Infinity,
        ));
      } else {
        out(summary(result));
        out(
          result.bootLoop
            ? red(terminalSafe(bootLoopEnding(result.bootLoop, request.host), Infinity))
            : terminalSafe(
              `${request.host}: MicroPython ${result.versionBefore} -> ${result.versionAfter} (via ${result.trigger})` +
                (result.buildAfter?.id
                  ? `, build ${describeBoardBuild(result.buildBefore)} -> ${
                    describeBoardBuild(result.buildAfter)
                  }`
                  : ""),
              Infinity,
            ),
        );
      }
      return ended(
        result.skipped !== undefined ? "skipped" : "updated",
        { ...(result.skipped ? { reason: result.skipped } : {}), ...builds },
        0,
      );
    }
    phase("push", "started");
    const result = await deploy(live, prepared).then((r) => {
      phase("push", "ended", true);
      return r;
    }, (e) => {
      phase("push", "ended", false);
      throw e;
    });
    progress.finish();
    if (args.json) printJson(result);
    else {
      out(summary(result));
      out(
        result.bootLoop
          ? red(bootLoopEnding(result.bootLoop, request.host))
          : result.bootCheck === "passed"
          ? bootCheckPassed(request.host)
          : bootCheckSkipped(request.host),
      );
    }
    return ended("updated", {}, 0);
  } catch (e) {
    progress.finish();
    events.emit({
      type: "device.result",
      device,
      result: "failed",
      ...errorOf(e),
    });
    // The engine's own Ctrl-C ("interrupted"); deployWithTrigger's name where they stopped.
    if (e instanceof InterruptedError && e.message === "interrupted") {
      throw new InterruptedError(
        "interrupted: nothing more was sent (no end packet). The device restarts its session by itself " +
          "after 10 s; running deploy again is safe.",
      );
    }
    throw e;
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}

/**
 * `--fleet`: every device of the inventory (or `--only`), rolled out under the policy
 * flags, then a table or `--json`.
 */
async function fleetMain(
  args: DeployArgs,
  config: OtaConfig,
  image: ImageChoice,
  events: EventSink,
  ctx: TaskContext,
): Promise<number> {
  const out = resultWriter(args);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    const report = await deployFleet({
      inventory: config.devices,
      only: args.only,
      concurrency: args.concurrency,
      rollout: {
        ...(args.canary === undefined ? {} : { canary: args.canary }),
        ...(args.maxFailures === undefined ? {} : { maxFailures: args.maxFailures }),
        ...(args.retries === undefined ? {} : { retries: args.retries }),
        ...(args.retryDelayMs === undefined ? {} : { retryDelayMs: args.retryDelayMs }),
      },
      defaultPort: resolvePort(args.port, config),
      request: sharedRequest(args, config, image),
      keyPath: resolveKeyPath(args.keyPath, config),
      trigger: args.trigger,
      builds: buildPolicy(args, image),
      events,
      signal: controller.signal,
      argv: ctx.argv,
      program: ctx.program,
      progress: new FleetProgress(),
      log: (line) => log(terminalSafe(line, Infinity)),
    });
    if (args.json) printJson(report);
    else {
      out(renderFleetTable(terminalSafeDeep(report.devices), { trigger: args.trigger }));
      out(renderFleetSummary(terminalSafeDeep(report)));
    }
    return fleetExitCode(report);
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}

if (import.meta.main) runTask(spec, main);
