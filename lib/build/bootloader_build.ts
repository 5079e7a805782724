/**
 * `build-bootloader`: yaota8266 built for our key. Writes the tree's `config.h` from
 * `templates/config.h` (the key's modulus as a C string, `MAIN_APP_OFFSET` and the
 * timing settings; docs/device.md, "Keys"), adds the software trigger and the build
 * fixes a current toolchain needs (lib/bootloader_tree.ts), runs make in the same
 * container machinery as `build-ota`, collects `yaota8266.bin` and checks that it holds
 * the modulus: "is this yaota8266.bin built for my key?" is a byte search. Every check
 * runs before the first file of the tree is written.
 */
import { createHash } from "node:crypto";
import { dirname, join, relative, resolve } from "node:path";
import { DEFAULT_IMAGE, type Runtime } from "./container.ts";
import {
  type BuildDeps,
  type BuildReporter,
  checkMakeRuntime,
  defaultBuildDeps,
  dryRunListing,
  planMake,
  runMake,
} from "./make_runner.ts";
import { existsSync, isDir, isFile, readAssetText, removeIfExists } from "../_fs.ts";
import type { BootloaderSettings, OtaConfig } from "../config/config.ts";
import { FileError, UnsafeImageError } from "../errors.ts";
import { DEFAULT_KEY_PATH, PUBLIC_KEY_FILE, resolveAppOffset } from "../config/values.ts";
import { modulusCString, type PublicKeyInfo } from "../format/keys.ts";
import { loadPublicKey } from "../config/key_file.ts";
import { applyFileEdit, describeFileEdit, planFileEdit, renderTemplate } from "./file_edit.ts";
import { formatBytes } from "../_units.ts";
import { trace } from "../trace.ts";
import {
  checkAppOffsetAgainstTree,
  checkAxtlsSubmodule,
  OTA_C,
  planTreeEdits,
  type TreeEdit,
} from "./bootloader_tree.ts";
import { type PacketLog, packetLogOf } from "../format/bootloader_image.ts";
import { PACKET_LOG_DEFINE } from "./quiet_log_edit.ts";
import { YaotaTreeError } from "./yaota_build_fixes.ts";
import { formatHex, indexOfBytes } from "../_bytes.ts";

export const CONFIG_TEMPLATE = new URL("../../templates/config.h", import.meta.url);
export const BOOTLOADER_FILE = "yaota8266.bin";
export const BOOTLOADER_LOG_FILE = "bootloader-build.log";

/** The values of yaota8266's `config.h.example` (docs/device.md, "Keys"). */
export const BOOTLOADER_DEFAULTS: Required<BootloaderSettings> = {
  baudRate: 115200,
  pktWaitMs: 10000,
  idleRebootMs: 60000,
  gpioMask: 0xf035,
  gpioWaitMs: 3000,
};

export interface BootloaderFlags {
  yaota8266?: string;
  /** `--key`: the key file's path. */
  keyPath?: string;
  runtime?: Runtime;
  image?: string;
  appOffset?: number;
  out?: string;
  dryRun: boolean;
  /** `--no-rtc-trigger` sets false: build boot8266 without the software trigger. */
  rtcTrigger?: boolean;
  /** `--quiet-log`: build the OTA server without its per-packet serial log. */
  quietLog?: boolean;
}

export interface BootloaderOptions {
  tree: string;
  /** The key file (private or public) whose modulus goes into config.h. */
  keyPath: string;
  runtime: Runtime;
  image: string;
  appOffset: number;
  /** Where `appOffset` came from, for messages: "--app-offset", "ota.config.json: appOffset". */
  appOffsetFrom?: string;
  settings: Required<BootloaderSettings>;
  out: string;
  dryRun: boolean;
  /** Add the RTC trigger to boot8266 (default true). */
  rtcTrigger?: boolean;
  /** Leave out the OTA server's per-packet serial log (default false). */
  quietLog?: boolean;
}

/**
 * Flags over `ota.config.json` over defaults. The key defaults to `DEFAULT_KEY_PATH`, or
 * the `pub.key` beside it when only the public half is here. Reads only to pick that default.
 */
export function resolveBootloaderOptions(
  flags: BootloaderFlags,
  config: OtaConfig,
  cwd: string,
): BootloaderOptions {
  const appOffset = resolveAppOffset(flags.appOffset, config);
  const appOffsetFrom = flags.appOffset !== undefined
    ? "--app-offset"
    : `${config.path ?? "config"}: appOffset`;
  let keyPath = flags.keyPath !== undefined ? resolve(cwd, flags.keyPath) : config.key;
  if (keyPath === undefined) {
    const priv = resolve(cwd, DEFAULT_KEY_PATH);
    const pub = join(dirname(priv), PUBLIC_KEY_FILE);
    keyPath = !existsSync(priv) && existsSync(pub) ? pub : priv;
  }
  return {
    tree: flags.yaota8266 !== undefined
      ? resolve(cwd, flags.yaota8266)
      : config.yaota8266 ?? resolve(cwd, "yaota8266"),
    keyPath,
    runtime: flags.runtime ?? config.runtime ?? "docker",
    image: flags.image ?? config.image ?? DEFAULT_IMAGE,
    appOffset,
    appOffsetFrom,
    settings: { ...BOOTLOADER_DEFAULTS, ...config.bootloader },
    out: flags.out !== undefined ? resolve(cwd, flags.out) : config.out ?? resolve(cwd, "dist"),
    dryRun: flags.dryRun,
    rtcTrigger: flags.rtcTrigger ?? true,
    quietLog: flags.quietLog ?? false,
  };
}

/**
 * Fills `templates/config.h`; `packetLog` false (`--quiet-log`) sets OTA_PACKET_LOG 0.
 * Pure.
 */
export function renderConfigH(
  template: string,
  values: {
    appOffset: number;
    key: PublicKeyInfo;
    settings: Required<BootloaderSettings>;
    packetLog?: boolean;
  },
): string {
  const s = values.settings;
  return renderTemplate(template, {
    MAIN_APP_OFFSET: formatHex(values.appOffset),
    BAUD_RATE: String(s.baudRate),
    MODULUS: modulusCString(values.key.modulus),
    KEY_BITS: String(values.key.bits),
    KEY_FINGERPRINT: values.key.fingerprint,
    PKT_WAIT_MS: String(s.pktWaitMs),
    IDLE_REBOOT_MS: String(s.idleRebootMs),
    GPIO_MASK: formatHex(s.gpioMask),
    GPIO_WAIT_MS: String(s.gpioWaitMs),
    OTA_PACKET_LOG: values.packetLog === false ? "0" : "1",
  });
}

export interface YaotaTree {
  root: string;
  /** Where its `config.h` goes (the top folder, or `ota-server/` in early versions). */
  configH: string;
}

/**
 * Finds the yaota8266 tree at `dir`.
 * @throws {FileError} If there is none, or it is not a yaota8266 tree.
 */
export async function findYaotaTree(dir: string): Promise<YaotaTree> {
  const root = resolve(dir);
  if (!await isDir(root)) {
    throw new FileError(
      `no yaota8266 tree at '${root}'. Clone it ('git clone --recursive ` +
        `https://github.com/pfalcon/yaota8266') and pass --yaota8266 DIR, or set "yaota8266" ` +
        `in ota.config.json.`,
    );
  }
  if (!await isFile(join(root, "Makefile")) || !await isDir(join(root, "boot8266"))) {
    throw new FileError(
      `'${root}' is not a yaota8266 tree: it needs a Makefile and boot8266/. Pass the top ` +
        `folder of a yaota8266 checkout with --yaota8266 DIR.`,
    );
  }
  for (const sub of ["", "ota-server"]) {
    const dirPath = join(root, sub);
    if (
      await isFile(join(dirPath, "config.h")) || await isFile(join(dirPath, "config.h.example"))
    ) {
      return { root, configH: join(dirPath, "config.h") };
    }
  }
  return { root, configH: join(root, "config.h") };
}

/**
 * `make`, after `make clean` when a file of the tree changed: yaota8266's Makefiles do not
 * know that the objects depend on config.h, etshal.h or ota.ld, so make would keep a
 * build with the old key or the old code.
 */
export async function bootloaderMakeCommands(
  tree: YaotaTree,
  treeChanged: boolean,
): Promise<string[][]> {
  const makefile = await Deno.readTextFile(join(tree.root, "Makefile")).catch(() => "");
  return treeChanged && /^clean\s*:/m.test(makefile) ? [["make", "clean"], ["make"]] : [["make"]];
}

export interface BootloaderResult {
  dryRun: boolean;
  /** With `dryRun`: every file change and command, in order, for the task to print. */
  plan?: string[];
  tree: YaotaTree;
  key: PublicKeyInfo;
  binaryPath: string;
  size?: number;
  sha256?: string;
  /** Where the modulus sits in the binary. */
  modulusAt?: number;
  /** Whether its boot8266 source enters OTA mode on the RTC magic (`ota.start()`). */
  rtcTrigger: boolean;
  /** Whether it was built without the per-packet serial log (`--quiet-log`). */
  quietLog: boolean;
  /** What the built binary holds of the per-packet log (lib/format/bootloader_image.ts). */
  packetLog?: PacketLog;
  /** Files of the tree that were (or, dry run, would be) changed, relative to its root. */
  changed: string[];
}

/**
 * Builds yaota8266 for the key (or, with `dryRun`, returns what it would do as `plan`).
 * Progress goes to `reporter` as it happens.
 * @throws {KeyError} The key cannot be read or its exponent is not 3.
 * @throws {FileError} No yaota8266 tree, or make wrote no yaota8266.bin.
 * @throws {ToolMissingError|ContainerRuntimeError} As `build-ota`.
 * @throws {UnsafeImageError} The binary lacks the modulus or overlaps the app offset.
 * Needs read, write, run (make or the container runtime) and env permissions.
 */
export async function buildBootloader(
  options: BootloaderOptions,
  reporter: BuildReporter = {},
  deps: BuildDeps = defaultBuildDeps,
): Promise<BootloaderResult> {
  const say = (line: string) => reporter.onLine?.(line);
  // Check first, act second: the tree, the key, the app offset and every planned edit
  // are settled before the first file of the tree is written.
  const tree = await findYaotaTree(options.tree);
  const key = await loadPublicKey(options.keyPath, { onWarning: reporter.onWarning });
  await checkAppOffsetAgainstTree(
    tree.root,
    options.appOffset,
    options.appOffsetFrom ?? "--app-offset",
  );
  await checkAxtlsSubmodule(tree.root);
  say(`yaota8266 at ${tree.root}; key ${options.keyPath} (${key.bits}-bit, ${key.fingerprint})`);
  const template = await readAssetText(CONFIG_TEMPLATE);
  const quietLog = options.quietLog ?? false;
  const configEdit = await planFileEdit(
    tree.configH,
    renderConfigH(template, {
      appOffset: options.appOffset,
      key,
      settings: options.settings,
      packetLog: !quietLog,
    }),
  );
  const treePlan = await planTreeEdits(tree.root, {
    rtcTrigger: options.rtcTrigger ?? true,
    quietLog,
  });
  const edits: TreeEdit[] = [{ edit: configEdit, why: "" }, ...treePlan.edits];
  const changed = edits.filter((e) => e.edit.changed).map((e) => relative(tree.root, e.edit.path));
  const commands = await bootloaderMakeCommands(tree, changed.length > 0);
  trace(
    "build-bootloader",
    () =>
      `tree ${tree.root}, config.h at ${relative(tree.root, tree.configH)}; planned edits: ${
        edits.map((e) =>
          `${relative(tree.root, e.edit.path)} ${e.edit.changed ? "changes" : "up to date"}${
            e.why ? ` (${e.why})` : ""
          }`
        ).join("; ")
      }`,
  );
  trace(
    "build-bootloader",
    () =>
      commands.length > 1
        ? `'make clean' first: ${changed.join(", ")} changed and yaota8266's Makefiles do not ` +
          "know the objects depend on them"
        : changed.length
        ? "no 'clean' target in the Makefile: plain 'make'"
        : "nothing in the tree changed: plain 'make'",
  );
  const built = join(tree.root, BOOTLOADER_FILE);
  const binaryPath = join(options.out, BOOTLOADER_FILE);
  const logPath = join(options.out, BOOTLOADER_LOG_FILE);
  const make = planMake({
    runtime: options.runtime,
    image: options.image,
    mount: tree.root,
    workdir: tree.root,
    commands,
    logPath,
  });
  const stale = await Deno.stat(built).then(() => true, () => false);
  const describe = (dryRun: boolean) => [
    ...edits.flatMap((e) => describeFileEdit(e.edit, tree.root, dryRun, "", e.why)),
    ...treePlan.notes,
  ];

  if (options.dryRun) {
    const plan = dryRunListing(
      [...describe(true), ...(stale ? [`would remove the previous ${BOOTLOADER_FILE}`] : [])],
      make,
      `would collect ${BOOTLOADER_FILE} into ${binaryPath} (log ${logPath}) and check that it ` +
        `holds the key's modulus`,
    );
    return {
      dryRun: true,
      plan,
      tree,
      key,
      binaryPath,
      rtcTrigger: treePlan.rtcTrigger,
      quietLog,
      changed,
    };
  }

  await checkMakeRuntime(make, deps, reporter);
  await Deno.mkdir(options.out, { recursive: true });
  for (const e of edits) await applyFileEdit(e.edit);
  for (const l of describe(false)) say(l);
  await removeIfExists(built);
  await runMake(make, deps, reporter);
  if (!await Deno.stat(built).then(() => true, () => false)) {
    throw new FileError(`make finished but did not write ${built}; see ${logPath}`);
  }
  const binary = await Deno.readFile(built);
  const modulusAt = indexOfBytes(binary, key.modulus);
  const problems: string[] = [];
  if (modulusAt < 0) {
    problems.push(
      `it does not contain the modulus of ${options.keyPath} (${key.fingerprint}): it was built ` +
        `for another key, and a device flashed with it would ignore every update you sign`,
    );
  }
  if (binary.length > options.appOffset) {
    problems.push(
      `it is ${binary.length} bytes, more than MAIN_APP_OFFSET ${
        formatHex(options.appOffset)
      }: the firmware would overwrite its end`,
    );
  }
  if (problems.length) {
    await removeIfExists(binaryPath);
    throw new UnsafeImageError(
      `${built} is not safe to flash: ${problems.join("; ")}. ${binaryPath} was not written.`,
    );
  }
  const packetLog = packetLogOf(binary);
  trace("build-bootloader", () => `per-packet log in the binary: ${packetLog.state}`);
  if (quietLog && packetLog.found.length > 0) {
    await removeIfExists(binaryPath);
    throw new YaotaTreeError(
      `--quiet-log: ${built} still holds per-packet log lines (${
        packetLog.found.map((f) => `'${f.trimEnd()}'`).join(", ")
      }) although config.h sets ${PACKET_LOG_DEFINE} 0: the OTA server was not built from the ` +
        `edited ${OTA_C}. Check the tree's Makefiles, then run again. ${binaryPath} was not written.`,
    );
  }
  await Deno.writeFile(binaryPath, binary);
  say(`collected ${BOOTLOADER_FILE} (${formatBytes(binary.length)})`);
  return {
    dryRun: false,
    tree,
    key,
    binaryPath,
    size: binary.length,
    sha256: createHash("sha256").update(binary).digest("hex"),
    modulusAt,
    rtcTrigger: treePlan.rtcTrigger,
    quietLog,
    packetLog,
    changed,
  };
}
