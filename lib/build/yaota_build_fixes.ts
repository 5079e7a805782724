/**
 * What keeps upstream yaota8266 from building with a current esp-open-sdk toolchain, and
 * the fix for each, as text in and text out (docs/device.md, "Entering OTA mode": the
 * tree the seed's binaries come from carries these fixes):
 * - `ota-server/Makefile` archives axTLS with `AR="$(AR)"` but never sets AR, so make's
 *   default `ar` (the host's) builds the archive: set it to the cross toolchain's.
 * - `boot8266/etshal.h` declares functions with empty parameter lists
 *   (`void uart_div_modify();`) that vendor SDK 2.x headers declare with a `uint8`
 *   parameter: gcc stops with "conflicting types". Replaced by `templates/etshal.h`, whose prototypes
 *   match the SDK's.
 * - `ota-server/ota.ld`: vendor SDKs from 2.1 on ship libnet80211 and libwpa with their
 *   code in `.text`, which the script sends to IRAM, where it does not fit ("region
 *   `iram1_0_seg' overflowed"). Their code goes to irom, as the SDK's own script does.
 * Each plan says what it found; a tree shaped otherwise is reported with what is missing.
 */
import { FileError } from "../errors.ts";

export const ETSHAL_TEMPLATE = new URL("../../templates/etshal.h", import.meta.url);

/** A file of the tree, and what to do with it. */
export type FixPlan =
  | { status: "ok"; note: string }
  | { status: "fix"; text: string; why: string; summary?: string[] }
  /** `missing` is what the file lacks; "" when the file itself is missing. */
  | { status: "unrecognised"; missing: string };

/** A yaota8266 tree that differs from what build-bootloader knows how to fix. */
export class YaotaTreeError extends FileError {}

/** The archiver axTLS is built with. Pure. */
export function planAxtlsAr(makefile: string | undefined): FixPlan {
  if (makefile === undefined) {
    return { status: "unrecognised", missing: "" };
  }
  if (/^[ \t]*AR[ \t]*(?::=|\?=|=)/m.test(makefile)) {
    return { status: "ok", note: "sets AR for axTLS" };
  }
  if (!/\$[({]AR[)}]/.test(makefile)) {
    return { status: "ok", note: "does not pass AR to axTLS" };
  }
  const cc = /^([ \t]*)CC[ \t]*(?::=|\?=|=)[ \t]*(\S*?)gcc[ \t]*$/m.exec(makefile);
  if (!cc) {
    return {
      status: "unrecognised",
      missing: "a 'CC = …gcc' line to take the cross toolchain's prefix from (AR is unset)",
    };
  }
  const prefix = cc[2] ?? "";
  const ld = /^[ \t]*LD[ \t]*(?::=|\?=|=).*$/m.exec(makefile);
  const anchor = ld ?? cc;
  const at = anchor.index + anchor[0].length;
  return {
    status: "fix",
    text: `${makefile.slice(0, at)}\n${cc[1] ?? ""}AR = ${prefix}ar${makefile.slice(at)}`,
    why: `axTLS is archived with $(AR), which it leaves at make's default 'ar' (the host's): ` +
      `use ${prefix}ar`,
  };
}

/**
 * Declarations gcc refuses next to the vendor SDK 2.x headers: `user_interface.h` declares
 * `uart_div_modify(uint8 uart_no, uint32 DivLatchValue)`, and a `uint8` parameter cannot
 * match an empty parameter list.
 */
const CONFLICTING = /^[ \t]*(?:extern[ \t]+)?void[ \t]+(uart_div_modify)[ \t]*\([ \t]*\)[ \t]*;/gm;

/** boot8266's `etshal.h`. Pure. */
export function planEtshal(header: string | undefined, template: string): FixPlan {
  if (header === undefined) {
    return {
      status: "fix",
      text: template,
      why: "missing: boot8266.c and the OTA server include it",
    };
  }
  if (header === template) return { status: "ok", note: "prototypes match the vendor SDK's" };
  const names = [...header.matchAll(CONFLICTING)].map((m) => `${m[1]}()`);
  if (names.length === 0) return { status: "ok", note: "prototypes match the vendor SDK's" };
  return {
    status: "fix",
    text: template,
    why: `declares ${names.join(" and ")} without parameters, which the vendor SDK 2.x ` +
      "headers declare with them (gcc: conflicting types): prototypes that match",
  };
}

/** The catch-all line of `.irom0.text` that the vendor libraries go in front of. */
const IROM_CATCH_ALL = /^([ \t]*)\*\(\.irom0\.literal\b.*$/m;
const SDK_LIBRARIES_TO_IROM = ["libnet80211.a", "libwpa.a"];

/** The OTA server's linker script. Pure. */
export function planOtaLd(script: string | undefined): FixPlan {
  if (script === undefined) {
    return { status: "unrecognised", missing: "" };
  }
  if (/libnet80211\.a/.test(script)) {
    return { status: "ok", note: "puts the vendor SDK's Wi-Fi libraries in irom" };
  }
  const anchor = IROM_CATCH_ALL.exec(script);
  if (!anchor) {
    return {
      status: "unrecognised",
      missing: "the '*(.irom0.literal …)' line of its .irom0.text section, in front of which " +
        `${SDK_LIBRARIES_TO_IROM.join(" and ")} go to irom`,
    };
  }
  const indent = anchor[1] ?? "";
  const lines = [
    `${indent}/* Vendor SDKs from 2.1 on ship these with their code in .text: keep it in flash,`,
    `${indent}   as the SDK's own linker script does (added by deno task build-bootloader). */`,
    ...SDK_LIBRARIES_TO_IROM.map((lib) => `${indent}*${lib}:(.literal.* .text.*)`),
  ];
  return {
    status: "fix",
    text: script.slice(0, anchor.index) + lines.join("\n") + "\n" + script.slice(anchor.index),
    summary: SDK_LIBRARIES_TO_IROM.map((lib) => `+ *${lib}:(.literal.* .text.*)`),
    why: `${SDK_LIBRARIES_TO_IROM.join(" and ")} of vendor SDKs from 2.1 on overflow IRAM ` +
      "(region `iram1_0_seg' overflowed): their code goes to irom",
  };
}

/** The OTA server's own copy of the ROM address script (see planOtaRomScript). */
export const OTA_ROM_SCRIPT = "ota-server/eagle.rom.addr.v6.ld";
const BORROWED_ROM_INCLUDE =
  /^([ \t]*INCLUDE[ \t]+)"?\.\.\/boot8266\/eagle\.rom\.addr\.v6\.ld"?[ \t]*$/m;
const OWN_ROM_INCLUDE = /^[ \t]*INCLUDE[ \t]+"?eagle\.rom\.addr\.v6\.ld"?[ \t]*$/m;
const ROM_UART_DIV_MODIFY = /^[ \t]*PROVIDE[ \t]*\([ \t]*uart_div_modify[ \t]*=[^\n]*\n?/m;

/**
 * The OTA server links with boot8266's ROM address script, which PROVIDEs
 * `uart_div_modify` at its ROM address. The vendor SDK's libmain defines that function
 * itself; binutils 2.40 takes the ROM address instead and the call from libmain's
 * app_main.o cannot reach it ("dangerous relocation: call0: call target out of range:
 * uart_div_modify"); the old esp-open-sdk linker used libmain's. The fix: the OTA server
 * gets its own copy of the script without that one line, included by name. `otaLd` is the
 * OTA server's linker script (after the other fixes), `bootRom` boot8266's ROM script.
 * Pure.
 */
export function planOtaRomScript(
  otaLd: string,
  bootRom: string | undefined,
  ownRom: string | undefined,
): { status: "ok"; note: string } | { status: "fix"; ld: string; rom: string; why: string } {
  const expected = bootRom === undefined ? undefined : ownRomScript(bootRom);
  if (OWN_ROM_INCLUDE.test(otaLd)) {
    if (ownRom !== undefined || expected === undefined) {
      return { status: "ok", note: "links with its own ROM address script" };
    }
    return {
      status: "fix",
      ld: otaLd,
      rom: expected,
      why: `includes ${OTA_ROM_SCRIPT}, which is missing: boot8266's without uart_div_modify`,
    };
  }
  const borrowed = BORROWED_ROM_INCLUDE.exec(otaLd);
  if (!borrowed || bootRom === undefined || !ROM_UART_DIV_MODIFY.test(bootRom)) {
    return { status: "ok", note: "does not take uart_div_modify from a ROM address script" };
  }
  return {
    status: "fix",
    ld: otaLd.replace(BORROWED_ROM_INCLUDE, `${borrowed[1]}"eagle.rom.addr.v6.ld"`),
    rom: expected!,
    why: "boot8266's ROM script PROVIDEs uart_div_modify, which libmain defines: a current " +
      "linker takes the ROM address (dangerous relocation: call0: call target out of range): " +
      `its own copy, ${OTA_ROM_SCRIPT}, without that line`,
  };
}

function ownRomScript(bootRom: string): string {
  return "/* boot8266/eagle.rom.addr.v6.ld without uart_div_modify, which the vendor SDK's\n" +
    "   libmain defines (added by deno task build-bootloader). */\n" +
    bootRom.replace(ROM_UART_DIV_MODIFY, "");
}
