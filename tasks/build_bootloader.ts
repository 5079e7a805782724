/**
 * `deno task build-bootloader`: builds yaota8266.bin with our key's modulus and settings
 * in its config.h, in the same container machinery as `build-ota`.
 */
import { suggest } from "../lib/cli/hint.ts";
import {
  appOffsetOpt,
  boolOpt,
  type CommandSpec,
  noPositionals,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import {
  type BootloaderFlags,
  buildBootloader,
  resolveBootloaderOptions,
} from "../lib/build/bootloader_build.ts";
import { BUILD_OPTIONS, runtimeOpt } from "../lib/cli/build_options.ts";
import { green, print } from "../lib/cli/output.ts";
import { stderrBuildReporter } from "../lib/cli/build_report.ts";
import { formatHex } from "../lib/_bytes.ts";
import { DEFAULT_KEY_PATH } from "../lib/config/values.ts";

export const spec: CommandSpec = {
  name: "build-bootloader",
  summary: "Build yaota8266.bin (boot8266 + ota-server) for your key, in a container.",
  options: {
    yaota8266: {
      type: "string",
      arg: "DIR",
      help: "yaota8266 tree (default: config yaota8266, else ./yaota8266)",
    },
    key: {
      type: "string",
      arg: "FILE",
      help:
        `key whose modulus goes into config.h: private or public (default: ${DEFAULT_KEY_PATH})`,
    },
    runtime: BUILD_OPTIONS.runtime,
    image: BUILD_OPTIONS.image,
    "app-offset": {
      type: "string",
      arg: "ADDR",
      help: "MAIN_APP_OFFSET: where the firmware starts (default: 0x3c000)",
    },
    out: BUILD_OPTIONS.out,
    "rtc-trigger": {
      type: "boolean",
      help: "add the software trigger to boot8266 (default on; --no-rtc-trigger: button only)",
    },
    "quiet-log": {
      type: "boolean",
      help:
        "leave out the OTA server's per-packet serial log: faster updates (boards need a serial reflash)",
    },
    "dry-run": BUILD_OPTIONS["dry-run"],
  },
  notes: [
    "Writes the tree's config.h from templates/config.h (the original is kept as " +
    "config.h.orig): the modulus, MAIN_APP_OFFSET, and BAUD_RATE, PKT_WAIT_MS, " +
    'IDLE_REBOOT_MS, GPIO_MASK, GPIO_WAIT_MS from the "bootloader" object of ' +
    "ota.config.json. Then runs make and collects dist/yaota8266.bin, refused unless it " +
    "holds the key's modulus.",
    "Upstream boot8266 enters OTA mode only on the BOOT button (within 3 s of reset) or an " +
    "invalid app. Unless --no-rtc-trigger, boot8266/boot8266.c gets the software trigger " +
    "(templates/rtc_trigger.c): OTA mode when RTC memory holds 'yaotaota', which " +
    "`import ota; ota.start()` writes, so `trigger` and `deploy --trigger` work. A tree that " +
    "has it already is left as it is.",
    "Build fixes for a current toolchain, applied only where the tree lacks them: AR for axTLS " +
    "in ota-server/Makefile, boot8266/etshal.h with prototypes that match the vendor SDK's " +
    "(templates/etshal.h), the vendor SDK's Wi-Fi libraries in irom in ota-server/ota.ld, and " +
    "the OTA server's own ROM address script without uart_div_modify " +
    "(ota-server/eagle.rom.addr.v6.ld: binutils 2.40 otherwise stops with 'dangerous " +
    "relocation'). " +
    "Every changed file keeps its original once as FILE.orig; --dry-run lists each change.",
    "--quiet-log: the OTA server prints ~150 characters on its serial port for every packet, " +
    "about 13 ms of each packet at 115200 baud, the ceiling of every transfer. With --quiet-log " +
    "ota-server/ota.c gets a macro for those five lines that config.h's OTA_PACKET_LOG 0 turns " +
    "off; error lines, sector writes and the end of a session are still logged. A board gets " +
    "it only by a serial reflash of yaota8266.bin. 'deno task verify' tells whether a " +
    "yaota8266.bin logs every packet.",
  ],
  examples: [
    "deno task build-bootloader --yaota8266 ../yaota8266",
    "deno task build-bootloader --key keys/pub.key --dry-run",
    "deno task build-bootloader --quiet-log",
  ],
};

export interface BuildBootloaderArgs extends BootloaderFlags {
  config?: string;
}

export function toBuildBootloaderArgs(args: ParsedArgs): BuildBootloaderArgs {
  noPositionals(args);
  return {
    yaota8266: stringOpt(args.values, "yaota8266"),
    keyPath: stringOpt(args.values, "key"),
    runtime: runtimeOpt(args.values),
    image: stringOpt(args.values, "image"),
    appOffset: appOffsetOpt(args.values),
    out: stringOpt(args.values, "out"),
    dryRun: boolOpt(args.values, "dry-run"),
    rtcTrigger: args.values["rtc-trigger"] !== false,
    quietLog: boolOpt(args.values, "quiet-log"),
    config: stringOpt(args.values, "config"),
  };
}

/** Parses the command line. Pure. @throws {UsageError} */
export function parseBuildBootloaderArgs(argv: string[]): BuildBootloaderArgs {
  return toBuildBootloaderArgs(parseCommandArgs(spec, argv));
}

export async function main({ args, invocation }: TaskContext): Promise<number | void> {
  const flags = toBuildBootloaderArgs(args);
  const config = await loadConfig(flags.config);
  const options = resolveBootloaderOptions(flags, config, Deno.cwd());
  const result = await buildBootloader(options, stderrBuildReporter());
  for (const line of result.plan ?? []) print(line);
  const trigger = result.rtcTrigger
    ? "software trigger: boot8266 enters OTA mode when RTC memory holds 'yaotaota' " +
      "(import ota; ota.start()), besides the BOOT button"
    : "no software trigger (--no-rtc-trigger): OTA mode only with the BOOT button within 3 s " +
      "of reset; 'trigger' and 'deploy --trigger' will not work on a board flashed with it";
  const log = result.quietLog
    ? "quiet: the OTA server prints no line per packet (--quiet-log): transfers are no longer " +
      "held to the serial log's ~13 ms per packet; only errors show on the serial console"
    : "the OTA server logs every packet on its serial port (~13 ms per packet at 115200 baud); " +
      "--quiet-log builds it without, for faster updates";
  if (result.dryRun) {
    print(trigger);
    print(log);
    return;
  }
  print(
    green(
      `${result.binaryPath}: ${result.size} bytes, holds the modulus of ${options.keyPath} ` +
        `(${result.key.fingerprint}) at ${formatHex(result.modulusAt ?? 0)}; MAIN_APP_OFFSET ${
          formatHex(options.appOffset)
        }`,
    ),
  );
  print(`sha256 ${result.sha256}`);
  print(trigger);
  print(log);
  print(
    `flash it once over serial, with the firmware: '${
      suggest(invocation, "flash", "--port PORT")
    }' ` +
      `(esptool v5 alone: esptool --port PORT write-flash --flash-mode dio --flash-size detect ` +
      `0x0 ${result.binaryPath})`,
  );
}

if (import.meta.main) runTask(spec, main);
