/**
 * `deno task deploy`'s command line as typed options (`toDeployArgs`), and what they
 * resolve to with the config: the request every board shares, the build policy, the
 * lone board of `--ip` and where its password comes from.
 */
import {
  appOffsetOpt,
  boolOpt,
  flashSizeOpt,
  listOpt,
  type ParsedArgs,
  portOpt,
  secondsOpt,
  stringOpt,
} from "./cli.ts";
import type { OtaConfig } from "../config/config.ts";
import { UsageError } from "../errors.ts";
import { MAX_TIMEOUT_S, parseCount, resolveAppOffset } from "../config/values.ts";
import { resolveAddress } from "../webrepl/target.ts";
import { warn } from "./output.ts";
import type { ImageChoice } from "../build/releases.ts";
import { MAX_RETRY_DELAY_MS } from "../deploy/pipeline_rollout.ts";
import type { RolloutPolicy } from "../deploy/pipeline_rollout.ts";
import type { FleetDevice } from "../deploy/fleet.ts";
import {
  type BuildPolicy,
  buildPolicyFor,
  type PasswordSource,
  type SharedRequest,
} from "../deploy/pipeline_steps.ts";
import { askPassword } from "./prompt.ts";
import { checkFleetFlags, wholeOpt } from "./shared_options.ts";
import { deviceAddressProblem } from "../config/device_address.ts";

export const DEFAULT_TIMEOUT_S = 15;
/** The boot check watches for a device back in OTA mode; ten minutes outlasts any reboot. */
export const MAX_BOOT_CHECK_WINDOW_S = 600;

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
  const concurrency = wholeOpt(values, "concurrency", 64);
  if (!fleet && (only.length > 0 || concurrency !== undefined)) {
    throw new UsageError("--only and --concurrency go with --fleet");
  }
  const trigger = boolOpt(values, "trigger");
  const password = stringOpt(values, "password");
  const ip = stringOpt(values, "ip");
  const events = boolOpt(values, "events");
  checkFleetFlags({ fleet, ip, password, json: boolOpt(values, "json"), events }, "device");
  if (password !== undefined && !trigger) throw new UsageError("--password goes with --trigger");
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
  if (!fleet && (canary !== undefined || maxFailures !== undefined)) {
    throw new UsageError("--canary and --max-failures go with --fleet");
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
export function sharedRequest(
  args: DeployArgs,
  config: OtaConfig,
  image: ImageChoice,
): SharedRequest {
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
export function buildPolicy(args: DeployArgs, image: ImageChoice): BuildPolicy {
  return buildPolicyFor(image, {
    force: args.force,
    allowDowngrade: args.allowDowngrade,
    allowFilesystemMove: args.allowFilesystemMove,
  });
}

/** `--canary`, `--max-failures`, `--retries`, `--retry-delay`, `--concurrency`. */
export function rolloutPolicy(args: DeployArgs): Partial<RolloutPolicy> {
  return {
    ...(args.concurrency === undefined ? {} : { concurrency: args.concurrency }),
    ...(args.canary === undefined ? {} : { canary: args.canary }),
    ...(args.maxFailures === undefined ? {} : { maxFailures: args.maxFailures }),
    ...(args.retries === undefined ? {} : { retries: args.retries }),
    ...(args.retryDelayMs === undefined ? {} : { retryDelayMs: args.retryDelayMs }),
  };
}

/**
 * The board of `--ip` (else YAOTA_IP or the config's "ip"): a fleet of one, named by
 * its address. @throws {UsageError} If none is named.
 */
export function loneBoard(args: DeployArgs, config: OtaConfig): FleetDevice {
  const { host, port } = resolveAddress(
    args,
    config,
    'name the device: --ip ADDR (or YAOTA_IP, or "ip" in ota.config.json)',
  );
  return { name: host, ip: host, port };
}

/** One board's password: `--password`, else WEBREPL_PASSWORD, else a prompt without echo. */
export function flagOrPrompt(args: DeployArgs): PasswordSource {
  return (board) => askPassword(args.password, `${board.ip}:${board.port}`);
}
