/**
 * The OTA build's linker script (docs/device.md, "OTA firmware image"): the irom
 * links at `0x40200000 + MAIN_APP_OFFSET + 0x9000`. Rendered from
 * `templates/esp8266_ota.ld` into the MicroPython tree, idempotently, keeping the tree's
 * original once as `.orig` (lib/build/file_edit.ts).
 */
import { IROM_END, IROM_FILE_OFFSET, IROM_MAP_BASE, MIN_IROM_LENGTH } from "../format/image.ts";
import { formatHex } from "../_bytes.ts";
import { readAssetText } from "../_fs.ts";
import { type FileEdit, planFileEdit, readIfExists, renderTemplate } from "./file_edit.ts";

export const LINKER_TEMPLATE = new URL("../../templates/esp8266_ota.ld", import.meta.url);
const DEFAULT_INCLUDE = "INCLUDE esp8266_common.ld";

/** The irom length that ends the irom where upstream's OTA linker script does. Pure. */
export function defaultIromLength(appOffset: number): number {
  return IROM_END - appOffset - IROM_FILE_OFFSET;
}

export interface LinkerValues {
  appOffset: number;
  iromLength?: number;
  /** The tree's `INCLUDE …common.ld` line (its path differs between MicroPython versions). */
  include?: string;
}

/** Fills the template with the app offset, the 0x9000 packed-RAM size and the irom length. Pure. */
export function renderLinkerScript(template: string, values: LinkerValues): string {
  const iromLength = values.iromLength ?? defaultIromLength(values.appOffset);
  if (iromLength < MIN_IROM_LENGTH) {
    throw new RangeError(
      `app offset ${formatHex(values.appOffset)} leaves no room for the irom below ${
        formatHex(IROM_END)
      }`,
    );
  }
  return renderTemplate(template, {
    APP_OFFSET: formatHex(values.appOffset),
    PACKED_RAM_SIZE: formatHex(IROM_FILE_OFFSET),
    IROM_LENGTH: formatHex(iromLength),
    INCLUDE_COMMON: values.include ?? DEFAULT_INCLUDE,
  });
}

/** The `INCLUDE …common.ld` line of an existing linker script. Pure. */
export function commonInclude(text: string): string | undefined {
  return /^\s*(INCLUDE\s+\S*common\.ld)\s*$/m.exec(text)?.[1];
}

/** Evaluates `0x40200000 + 0x3c000 + 0x9000` or `1M - 100k`. Pure; NaN if it cannot. */
export function evaluateLinkerExpression(text: string): number {
  if (!text.trim()) return NaN;
  let total = 0;
  for (const m of text.matchAll(/([+-]?)\s*(0x[0-9a-fA-F]+|\d+)\s*([kKmM]?)/g)) {
    const unit = m[3]?.toLowerCase() === "k" ? 1024 : m[3]?.toLowerCase() === "m" ? 1 << 20 : 1;
    total += (m[1] === "-" ? -1 : 1) * Number(m[2]) * unit;
  }
  const rest = text.replace(/([+-]?)\s*(0x[0-9a-fA-F]+|\d+)\s*([kKmM]?)/g, "").trim();
  return rest === "" ? total : NaN;
}

/** The `irom0_0_seg` origin and length a linker script sets; undefined if absent. Pure. */
export function parseIromSegment(text: string): { org: number; len: number } | undefined {
  const m = /irom0_0_seg\s*:\s*org\s*=\s*([^,]+),\s*len\s*=\s*([^\n]+)/.exec(text);
  if (!m?.[1] || !m[2]) return undefined;
  const org = evaluateLinkerExpression(m[1]);
  const len = evaluateLinkerExpression(m[2]);
  return Number.isNaN(org) || Number.isNaN(len) ? undefined : { org, len };
}

/** The app offset a linker script links the irom for (its origin less 0x40200000 + 0x9000). */
export function linkedAppOffset(text: string): number | undefined {
  const seg = parseIromSegment(text);
  return seg ? seg.org - IROM_MAP_BASE - IROM_FILE_OFFSET : undefined;
}

/**
 * Plans the tree's OTA linker script: the template rendered for `appOffset`, keeping
 * the tree's own `INCLUDE` line (from the kept original if there is one).
 */
export async function planLinkerScript(
  path: string,
  appOffset: number,
  iromLength?: number,
): Promise<FileEdit> {
  const template = await readAssetText(LINKER_TEMPLATE);
  const original = (await readIfExists(`${path}.orig`)) ?? (await readIfExists(path)) ?? "";
  const text = renderLinkerScript(template, {
    appOffset,
    include: commonInclude(original),
    ...(iromLength === undefined ? {} : { iromLength }),
  });
  return await planFileEdit(path, text);
}

/**
 * `esp.flash_user_start()` of an image linked with this irom: where the irom ends
 * (`_firmware_size`, docs/device.md "The board's filesystem"). Pure.
 */
export function flashUserStart(appOffset: number, iromLength?: number): number {
  return appOffset + IROM_FILE_OFFSET + (iromLength ?? defaultIromLength(appOffset));
}

/** Where flashbdev.py mounts the filesystem: one sector further below 1 MiB. Pure. */
export function filesystemStart(userStart: number): number {
  return userStart < 0x100000 ? userStart + 0x1000 : userStart;
}

/**
 * The irom length that puts the filesystem at `start` (`--move-filesystem-to`). Pure.
 * @throws {RangeError} If `start` is not sector-aligned or leaves less irom than the default.
 */
export function iromLengthForFilesystem(appOffset: number, start: number): number {
  if (start % 0x1000 !== 0) {
    throw new RangeError(`${formatHex(start)} is not a sector (0x1000) boundary`);
  }
  const userStart = start - 0x1000 < 0x100000 ? start - 0x1000 : start;
  const length = userStart - appOffset - IROM_FILE_OFFSET;
  if (length <= defaultIromLength(appOffset)) {
    throw new RangeError(
      `${formatHex(start)} is not past the filesystem's usual start ${
        formatHex(filesystemStart(flashUserStart(appOffset)))
      }`,
    );
  }
  return length;
}
