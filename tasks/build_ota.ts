/**
 * `deno task build-ota`: builds the MicroPython OTA firmware for yaota8266 in one
 * command and refuses to leave behind an image that would not boot at the app offset.
 */
import {
  appOffsetOpt,
  boolOpt,
  type CommandSpec,
  flashSizeOpt,
  listOpt,
  noPositionals,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import { buildOta, type BuildOtaFlags, resolveBuildOtaOptions } from "../lib/build/build_ota.ts";
import { BUILD_OPTIONS, runtimeOpt } from "../lib/cli/build_options.ts";
import { green, print } from "../lib/cli/output.ts";
import { describeBuild } from "../lib/build/build_id.ts";
import { parseVersionLabel } from "../lib/config/values.ts";
import { stderrBuildReporter } from "../lib/cli/build_report.ts";
import { parseMakeVar } from "../lib/build/build_layout.ts";
import { UsageError } from "../lib/errors.ts";

/** `--move-filesystem-to 0xd8000`. Pure. @throws {UsageError} */
function parseAddress(text: string, flag: string): number {
  const n = /^0x[0-9a-f]+$/i.test(text)
    ? parseInt(text, 16)
    : /^\d+$/.test(text)
    ? Number(text)
    : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new UsageError(`--${flag} expects an address such as 0xd8000, got '${text}'`);
  }
  return n;
}

export const spec: CommandSpec = {
  name: "build-ota",
  summary: "Build the MicroPython OTA firmware for yaota8266 (firmware-ota.bin) in a container.",
  options: {
    micropython: {
      type: "string",
      arg: "DIR",
      help: "MicroPython tree (default: config micropython, else ./micropython)",
    },
    module: {
      type: "string",
      multiple: true,
      arg: "FILE",
      help: "a .py file to freeze into the firmware, e.g. uartremote.py (ota.py is always added)",
    },
    runtime: BUILD_OPTIONS.runtime,
    image: BUILD_OPTIONS.image,
    board: {
      type: "string",
      arg: "NAME",
      help: "board (default: GENERIC up to MicroPython 1.19, ESP8266_GENERIC later)",
    },
    "app-offset": {
      type: "string",
      arg: "ADDR",
      help: "MAIN_APP_OFFSET the image is linked for (default: 0x3c000)",
    },
    "flash-size": {
      type: "string",
      arg: "SIZE",
      help: "flash size of the devices, for the size check (default: 1M)",
    },
    out: BUILD_OPTIONS.out,
    force: {
      type: "boolean",
      help: "freeze a module even if its name shadows one of MicroPython's own",
    },
    version: {
      type: "string",
      arg: "LABEL",
      help: "a label for this build, e.g. 1.4.0: part of the build id, reported by boards",
    },
    clean: {
      type: "boolean",
      help: "remove the port's build folder first (done anyway when the toolchain changed)",
    },
    "make-var": {
      type: "string",
      multiple: true,
      arg: "NAME=VALUE",
      help: "a make variable, e.g. MICROPY_PY_ESPNOW=0 for a smaller feature set",
    },
    "move-filesystem-to": {
      type: "string",
      arg: "ADDR",
      help: "a larger irom, moving the boards' filesystem to ADDR: their files are lost " +
        "(deploy refuses such an image unless --allow-filesystem-move)",
    },
    "dry-run": BUILD_OPTIONS["dry-run"],
  },
  notes: [
    "Writes the tree's esp8266_ota.ld from templates/esp8266_ota.ld (the original is kept as " +
    "esp8266_ota.ld.orig), copies the modules into ports/esp8266/modules/, builds mpy-cross " +
    "and the OTA image, and collects dist/firmware-ota.bin, dist/manifest.json and " +
    "dist/build.log. The image is inspected (as 'inspect' does) and refused unless it is " +
    "safe to push to the app offset.",
    "Every input is checked first. Only when make is about to run does the previous " +
    "firmware-ota.bin and manifest.json move to dist/stale/ (with a README.txt saying why and " +
    "how to get it back: it is also kept in dist/releases/); a successful build removes that " +
    "folder. So after a failed or interrupted build there is no dist/firmware-ota.bin for " +
    "'deno task deploy' to send by mistake.",
    "MicroPython 1.15–1.20 build with 'make ota', 1.21–1.27 with the ESP8266_GENERIC OTA " +
    "variant (only its image, never its bootloader-and-signing step); 1.28 removed OTA. The " +
    "cross compiler is asked its version and gets the flags that release needs with it " +
    "(CFLAGS_EXTRA); the build id covers compiler, flags and image digest, and a change of " +
    "any of them removes the port's build folder first.",
    "An image too large for the irom is refused with the bytes over and the remedies: the " +
    "irom ends where the boards' filesystem starts (0xd5000 for app offset 0x3c000).",
    "Each build gets a build id: a short hash of its inputs (the modules, templates/ota.py, the " +
    "tree's git commit and changes, its version and board, the app offset, the toolchain and " +
    "--version), the same for the same inputs. It is written into the frozen ota.py (ota.BUILD, " +
    "ota.VERSION) and into manifest.json with the build time, and the build is kept as " +
    "dist/releases/<build-id>/ (image + manifest) for 'deploy --release'.",
    "Defaults come from ota.config.json (or --config FILE); flags override it.",
  ],
  examples: [
    "deno task build-ota --micropython ../micropython --module uartremote.py",
    "deno task build-ota --runtime native --dry-run",
    "deno task build-ota --version 1.4.0",
  ],
};

export interface BuildOtaArgs extends BuildOtaFlags {
  config?: string;
}

export function toBuildOtaArgs(args: ParsedArgs): BuildOtaArgs {
  noPositionals(args);
  const version = stringOpt(args.values, "version");
  const moveTo = stringOpt(args.values, "move-filesystem-to");
  return {
    micropython: stringOpt(args.values, "micropython"),
    modules: listOpt(args.values, "module"),
    runtime: runtimeOpt(args.values),
    image: stringOpt(args.values, "image"),
    board: stringOpt(args.values, "board"),
    appOffset: appOffsetOpt(args.values),
    flashSize: flashSizeOpt(args.values),
    out: stringOpt(args.values, "out"),
    dryRun: boolOpt(args.values, "dry-run"),
    force: boolOpt(args.values, "force"),
    ...(version === undefined ? {} : { version: parseVersionLabel(version, { flag: "version" }) }),
    config: stringOpt(args.values, "config"),
    clean: boolOpt(args.values, "clean"),
    makeVars: listOpt(args.values, "make-var").map(parseMakeVar),
    ...(moveTo === undefined
      ? {}
      : { filesystemStart: parseAddress(moveTo, "move-filesystem-to") }),
  };
}

/** Parses the command line. Pure. @throws {UsageError} */
export function parseBuildOtaArgs(argv: string[]): BuildOtaArgs {
  return toBuildOtaArgs(parseCommandArgs(spec, argv));
}

export async function main({ args }: TaskContext): Promise<number | void> {
  const flags = toBuildOtaArgs(args);
  const config = await loadConfig(flags.config);
  const options = resolveBuildOtaOptions(flags, config, Deno.cwd());
  const result = await buildOta(options, stderrBuildReporter());
  for (const line of result.plan ?? []) print(line);
  if (result.dryRun || !result.manifest) return;
  const m = result.manifest;
  print(
    green(
      `${result.firmwarePath}: ${m.image.size} bytes, MicroPython ${
        m.micropython.version ?? m.image.version ?? "?"
      }, irom linked at ${m.image.iromLinkBase}: safe to push to app offset ${m.image.appOffset}`,
    ),
  );
  print(`build ${describeBuild(m.build)}, built ${m.build.builtAt}`);
  print(`sha256 ${m.image.sha256}`);
  print(`manifest ${result.manifestPath}`);
}

if (import.meta.main) runTask(spec, main);
