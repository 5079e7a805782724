/**
 * `build-ota`'s options: the command line's flags over `ota.config.json` over defaults,
 * and the names of what it writes into its output folder.
 */
import { resolve } from "node:path";
import { DEFAULT_IMAGE, type Runtime } from "./container.ts";
import { DEFAULT_BUILD_DIR } from "./build_outputs.ts";
import type { OtaConfig } from "../config/config.ts";
import { resolveAppOffset } from "../config/values.ts";

export const DEFAULT_FLASH_SIZE = 0x100000;
export const REJECTED_FILE = "firmware-ota.rejected.bin";
export const LOG_FILE = "build.log";

/** What the command line gave; undefined means "not given". */
export interface BuildOtaFlags {
  micropython?: string;
  modules: string[];
  runtime?: Runtime;
  image?: string;
  board?: string;
  appOffset?: number;
  flashSize?: number;
  out?: string;
  dryRun: boolean;
  force: boolean;
  /** `--version`: a label for the build, frozen into ota.py as `VERSION`. */
  version?: string;
  /** `--clean`: remove the port's build folder first. */
  clean?: boolean;
  /** `--make-var NAME=VALUE`, passed to make. */
  makeVars?: string[];
  /** `--move-filesystem-to ADDR`: a larger irom, moving the boards' filesystem there. */
  filesystemStart?: number;
}

export interface BuildOtaOptions {
  /** The MicroPython tree (or a folder inside it), absolute. */
  tree: string;
  /** The user's module files, absolute. */
  modules: string[];
  runtime: Runtime;
  image: string;
  board?: string;
  appOffset: number;
  flashSize: number;
  /** Output folder, absolute. */
  out: string;
  dryRun: boolean;
  force: boolean;
  version?: string;
  clean: boolean;
  makeVars: string[];
  filesystemStart?: number;
}

/**
 * Flags over `ota.config.json` over defaults. Flag paths are relative to `cwd`, config
 * paths were resolved against the config file's folder by `loadConfig`. Pure.
 */
export function resolveBuildOtaOptions(
  flags: BuildOtaFlags,
  config: OtaConfig,
  cwd: string,
): BuildOtaOptions {
  const appOffset = resolveAppOffset(flags.appOffset, config);
  return {
    tree: flags.micropython !== undefined
      ? resolve(cwd, flags.micropython)
      : config.micropython ?? resolve(cwd, "micropython"),
    modules: flags.modules.length
      ? flags.modules.map((m) => resolve(cwd, m))
      : [...(config.modules ?? [])],
    runtime: flags.runtime ?? config.runtime ?? "docker",
    image: flags.image ?? config.image ?? DEFAULT_IMAGE,
    board: flags.board ?? config.board,
    appOffset,
    flashSize: flags.flashSize ?? config.flashSize ?? DEFAULT_FLASH_SIZE,
    out: flags.out !== undefined
      ? resolve(cwd, flags.out)
      : config.out ?? resolve(cwd, DEFAULT_BUILD_DIR),
    dryRun: flags.dryRun,
    force: flags.force,
    ...(flags.version === undefined ? {} : { version: flags.version }),
    clean: flags.clean ?? false,
    makeVars: flags.makeVars ?? [],
    ...(flags.filesystemStart === undefined ? {} : { filesystemStart: flags.filesystemStart }),
  };
}
