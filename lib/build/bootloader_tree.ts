/**
 * Everything `build-bootloader` changes in a yaota8266 tree besides `config.h`, planned
 * before anything is written: the software trigger in `boot8266/boot8266.c`
 * (lib/rtc_trigger_edit.ts), with `--quiet-log` the per-packet log macro in
 * `ota-server/ota.c` (lib/quiet_log_edit.ts), and the build fixes (lib/yaota_build_fixes.ts), each as a
 * `FileEdit` that keeps the tree's original once as `.orig`; plus the checks that need
 * the tree: the axTLS submodule and the room the OTA server's linker script leaves
 * below MAIN_APP_OFFSET.
 */
import { join, relative } from "node:path";
import { ConfigError, UsageError } from "../errors.ts";
import { isDir, readAssetText } from "../_fs.ts";
import { parseIromSegment } from "./linker_script.ts";
import { type FileEdit, planFileEdit } from "./file_edit.ts";
import { IROM_MAP_BASE } from "../format/image.ts";
import { planRtcTrigger, RTC_TRIGGER_TEMPLATE } from "./rtc_trigger_edit.ts";
import {
  ETSHAL_TEMPLATE,
  type FixPlan,
  OTA_ROM_SCRIPT,
  planAxtlsAr,
  planEtshal,
  planOtaLd,
  planOtaRomScript,
  YaotaTreeError,
} from "./yaota_build_fixes.ts";
import { formatHex } from "../_bytes.ts";
import { hasQuietLogGate, PACKET_LOG_DEFINE, planQuietLog } from "./quiet_log_edit.ts";

export const BOOT8266_C = "boot8266/boot8266.c";
export const ETSHAL_H = "boot8266/etshal.h";
export const OTA_SERVER_MAKEFILE = "ota-server/Makefile";
export const OTA_LD = "ota-server/ota.ld";
export const OTA_C = "ota-server/ota.c";
export const AXTLS_DIR = "ota-server/lib/axtls";
export const BOOT_ROM_SCRIPT = "boot8266/eagle.rom.addr.v6.ld";

/** A planned change to one file, and why. */
export interface TreeEdit {
  edit: FileEdit;
  why: string;
}

export interface TreePlan {
  edits: TreeEdit[];
  /** Files left as they are, with what was found ("boot8266/boot8266.c: has the …"). */
  notes: string[];
  /** Whether the boot8266 that gets built enters OTA mode on the RTC magic. */
  rtcTrigger: boolean;
}

export interface TreeOptions {
  rtcTrigger: boolean;
  /** `--quiet-log`: put the OTA server's per-packet log lines behind config.h's switch. */
  quietLog?: boolean;
}

async function readIfExists(path: string): Promise<string | undefined> {
  return await Deno.readTextFile(path).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  });
}

/**
 * Reads the tree and plans every edit; writes nothing.
 * @throws {YaotaTreeError} If a file differs from what the edits know how to change
 * (naming each file and what it lacks), or `--no-rtc-trigger` meets a check someone else wrote.
 */
export async function planTreeEdits(root: string, options: TreeOptions): Promise<TreePlan> {
  const edits: TreeEdit[] = [];
  const notes: string[] = [];
  const problems: string[] = [];
  const path = (name: string) => join(root, name);

  const source = await readIfExists(path(BOOT8266_C));
  let rtcTrigger = false;
  if (source === undefined) {
    problems.push(`${BOOT8266_C} is missing`);
  } else {
    const template = await readAssetText(RTC_TRIGGER_TEMPLATE);
    const plan = planRtcTrigger(source, template, options.rtcTrigger);
    switch (plan.status) {
      case "present":
        rtcTrigger = true;
        if (!options.rtcTrigger) {
          throw new YaotaTreeError(
            `--no-rtc-trigger: ${BOOT8266_C} in ${root} already enters OTA mode on the RTC magic, ` +
              "with a check this tool did not add, so it cannot take it out. Build from a " +
              "boot8266.c without it (upstream pfalcon/yaota8266's), or build without " +
              "--no-rtc-trigger.",
          );
        }
        notes.push(
          `${BOOT8266_C}: has the RTC trigger${plan.ours ? " (added by build-bootloader)" : ""}`,
        );
        break;
      case "absent":
        notes.push(`${BOOT8266_C}: no RTC trigger (--no-rtc-trigger): OTA mode by button only`);
        break;
      case "add":
        rtcTrigger = true;
        edits.push({
          edit: { ...await planFileEdit(path(BOOT8266_C), plan.text), summary: plan.summary },
          why: "adds the RTC trigger: OTA mode when RTC memory holds 'yaotaota' (ota.start())",
        });
        break;
      case "remove":
        edits.push({
          edit: { ...await planFileEdit(path(BOOT8266_C), plan.text), summary: plan.summary },
          why: "takes out the RTC trigger build-bootloader added (--no-rtc-trigger)",
        });
        break;
      case "unrecognised":
        problems.push(
          `${BOOT8266_C} has no RTC trigger and lacks ${plan.missing}, where the check goes: ` +
            "add it by hand (templates/rtc_trigger.c holds it), or pass --no-rtc-trigger to build " +
            "without the software trigger",
        );
        break;
    }
  }

  const ota = await readIfExists(path(OTA_C));
  if (options.quietLog) {
    const plan = ota === undefined ? undefined : planQuietLog(ota);
    if (plan === undefined) {
      problems.push(`${OTA_C} is missing (--quiet-log edits it)`);
    } else if (plan.status === "present") {
      notes.push(
        `${OTA_C}: per-packet log lines behind ${PACKET_LOG_DEFINE} (added by build-bootloader)`,
      );
    } else if (plan.status === "add") {
      edits.push({
        edit: { ...await planFileEdit(path(OTA_C), plan.text), summary: plan.summary },
        why: `puts its ${plan.lines} per-packet log lines behind a macro that config.h's ` +
          `${PACKET_LOG_DEFINE} 0 turns off (--quiet-log); error lines stay`,
      });
    } else {
      problems.push(
        `${OTA_C} lacks ${plan.missing}: build without --quiet-log, or put its per-packet ` +
          "printf lines behind a macro by hand",
      );
    }
  } else if (ota !== undefined && hasQuietLogGate(ota)) {
    notes.push(
      `${OTA_C}: per-packet log lines behind ${PACKET_LOG_DEFINE}, which config.h turns on ` +
        "(no --quiet-log)",
    );
  }

  const fixes: [string, FixPlan][] = [
    [
      ETSHAL_H,
      planEtshal(await readIfExists(path(ETSHAL_H)), await readAssetText(ETSHAL_TEMPLATE)),
    ],
    [OTA_SERVER_MAKEFILE, planAxtlsAr(await readIfExists(path(OTA_SERVER_MAKEFILE)))],
    ...otaLdFixes(
      planOtaLd(await readIfExists(path(OTA_LD))),
      await readIfExists(path(OTA_LD)),
      await readIfExists(path(BOOT_ROM_SCRIPT)),
      await readIfExists(path(OTA_ROM_SCRIPT)),
    ),
  ];
  for (const [name, plan] of fixes) {
    if (plan.status === "ok") notes.push(`${name}: ${plan.note}`);
    else if (plan.status === "fix") {
      const edit = await planFileEdit(path(name), plan.text);
      edits.push({ edit: plan.summary ? { ...edit, summary: plan.summary } : edit, why: plan.why });
    } else problems.push(plan.missing ? `${name} lacks ${plan.missing}` : `${name} is missing`);
  }
  if (problems.length) {
    throw new YaotaTreeError(
      `${root} differs from the yaota8266 tree build-bootloader knows how to prepare: ` +
        `${problems.join("; ")}. Nothing was changed.`,
    );
  }
  return { edits, notes, rtcTrigger };
}

/**
 * The OTA server's linker script with both of its fixes (the vendor libraries to irom, its
 * own ROM address script) in one edit, and the ROM script it then includes. Pure.
 */
function otaLdFixes(
  ldPlan: FixPlan,
  ld: string | undefined,
  bootRom: string | undefined,
  ownRom: string | undefined,
): [string, FixPlan][] {
  if (ld === undefined || ldPlan.status === "unrecognised") return [[OTA_LD, ldPlan]];
  const fixed = ldPlan.status === "fix" ? ldPlan.text : ld;
  const rom = planOtaRomScript(fixed, bootRom, ownRom);
  if (rom.status === "ok") {
    return [[OTA_LD, ldPlan], [OTA_LD, { status: "ok", note: rom.note }]];
  }
  const romFile: [string, FixPlan] = [OTA_ROM_SCRIPT, {
    status: "fix",
    text: rom.rom,
    why: "the OTA server's own ROM address script, without uart_div_modify",
  }];
  if (rom.ld === fixed) return [[OTA_LD, ldPlan], romFile];
  const why = ldPlan.status === "fix" ? `${ldPlan.why}; ${rom.why}` : rom.why;
  const summary = ldPlan.status === "fix" ? ldPlan.summary : undefined;
  return [[OTA_LD, { status: "fix", text: rom.ld, why, ...(summary ? { summary } : {}) }], romFile];
}

/**
 * The OTA server builds axTLS from a git submodule; a clone without `--recursive`
 * leaves its folder empty.
 * @throws {YaotaTreeError} With the exact command that fetches it.
 */
export async function checkAxtlsSubmodule(root: string): Promise<void> {
  const makefile = await readIfExists(join(root, OTA_SERVER_MAKEFILE)) ?? "";
  const gitmodules = await readIfExists(join(root, ".gitmodules")) ?? "";
  if (!makefile.includes("lib/axtls") && !gitmodules.includes(AXTLS_DIR)) return;
  const dir = join(root, AXTLS_DIR);
  const entries = await isDir(dir) ? await Array.fromAsync(Deno.readDir(dir)) : [];
  if (entries.length > 0) return;
  throw new YaotaTreeError(
    `${relative(root, dir)} in ${root} is empty: the axTLS submodule the OTA server is built ` +
      `with was not checked out. Run: git -C ${root} submodule update --init ${AXTLS_DIR}`,
  );
}

/**
 * MAIN_APP_OFFSET must lie past everything yaota8266 may occupy: the OTA server's code
 * runs up to the end of the irom region its linker script declares.
 * @throws {UsageError | ConfigError} Naming where the value came from (`where`).
 */
export async function checkAppOffsetAgainstTree(
  root: string,
  appOffset: number,
  where: string,
): Promise<void> {
  const script = await readIfExists(join(root, OTA_LD));
  const segment = script === undefined ? undefined : parseIromSegment(script);
  if (!segment) return;
  const start = segment.org - IROM_MAP_BASE;
  const end = start + segment.len;
  if (appOffset >= end) return;
  const Class = where.startsWith("--") ? UsageError : ConfigError;
  throw new Class(
    `${where}: MAIN_APP_OFFSET ${formatHex(appOffset)} is inside yaota8266 itself: ` +
      `${OTA_LD} links the OTA server's code at ${formatHex(start)}–${formatHex(end)}, so the ` +
      `firmware would overwrite it. Use ${formatHex(end)} or more (the default is 0x3c000). ` +
      "Nothing was changed.",
  );
}
