import { relative } from "node:path";
/**
 * The OTA build's linker script (docs/device.md, "OTA firmware image"): the irom
 * links at `0x40200000 + MAIN_APP_OFFSET + 0x9000`. Rendered from
 * `templates/esp8266_ota.ld` into the MicroPython tree, idempotently, keeping the tree's
 * original once as `.orig`. The template and file-edit helpers here serve `config.h` too.
 */
import { IROM_FILE_OFFSET, IROM_MAP_BASE } from "../format/image.ts";
import { formatHex } from "../_bytes.ts";

export const LINKER_TEMPLATE = new URL("../../templates/esp8266_ota.ld", import.meta.url);
/** Where upstream's `esp8266_ota.ld` ends the irom (0x3c000 + 0x9000 + len 0x8f000). */
export const IROM_END = 0xd4000;
const DEFAULT_INCLUDE = "INCLUDE esp8266_common.ld";
/** The least irom room an app offset must leave below `IROM_END`. */
export const MIN_IROM_LENGTH = 0x10000;

/**
 * Replaces every `{{NAME}}` in `template`. Pure.
 * @throws {Error} If the template names a value that is not given (a bug in the template).
 */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template placeholder {{${name}}} has no value`);
    return value;
  });
}

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

/** A file the build writes into someone else's tree. */
export interface FileEdit {
  path: string;
  text: string;
  /** Its content now; undefined if it does not exist. */
  before?: string;
  changed: boolean;
  /** Set when this edit keeps the original: the first edit of an existing file. */
  backup?: string;
  /** The changed lines, "- old" / "+ new". */
  summary: string[];
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

const isComment = (line: string) => /^\s*(\/\/|\/\*|\*)/.test(line);
const clip = (line: string, width = 96) =>
  line.length > width ? line.slice(0, width - 1) + "…" : line;

/**
 * Lines only in `before` ("- …") and only in `after` ("+ …"), leaving out blank and
 * comment lines, clipped for the terminal. Pure.
 */
export function changedLines(before: string, after: string, max = 12): string[] {
  const count = (lines: string[]) => {
    const m = new Map<string, number>();
    for (const l of lines) m.set(l, (m.get(l) ?? 0) + 1);
    return m;
  };
  const a = before.split("\n").map((l) => l.trim()).filter((l) => l && !isComment(l));
  const b = after.split("\n").map((l) => l.trim()).filter((l) => l && !isComment(l));
  const inA = count(a);
  const inB = count(b);
  const removed = a.filter((l) => (inB.get(l) ?? 0) < (inA.get(l) ?? 0));
  const added = b.filter((l) => (inA.get(l) ?? 0) < (inB.get(l) ?? 0));
  const out = [...new Set(removed)].map((l) => clip(`- ${l}`))
    .concat([...new Set(added)].map((l) => clip(`+ ${l}`)));
  if (out.length === 0 && before !== after) return ["(comments only)"];
  return out.length > max ? [...out.slice(0, max), `… and ${out.length - max} more`] : out;
}

/** What writing `text` to `path` would change. Reads only. */
export async function planFileEdit(path: string, text: string): Promise<FileEdit> {
  const before = await readIfExists(path);
  const changed = before !== text;
  const backupPath = `${path}.orig`;
  const keepOriginal = changed && before !== undefined &&
    (await readIfExists(backupPath)) === undefined;
  return {
    path,
    text,
    before,
    changed,
    backup: keepOriginal ? backupPath : undefined,
    summary: changed ? changedLines(before ?? "", text) : [],
  };
}

/** Writes the edit (saving the original first, once). Does nothing if nothing changes. */
export async function applyFileEdit(edit: FileEdit): Promise<void> {
  if (!edit.changed) return;
  if (edit.backup && edit.before !== undefined) {
    await Deno.writeTextFile(edit.backup, edit.before, { createNew: true });
  }
  await Deno.writeTextFile(edit.path, edit.text);
}

/**
 * Plans the tree's OTA linker script: the template rendered for `appOffset`, keeping
 * the tree's own `INCLUDE` line (from the kept original if there is one).
 */
export async function planLinkerScript(path: string, appOffset: number): Promise<FileEdit> {
  const template = await Deno.readTextFile(LINKER_TEMPLATE);
  const original = (await readIfExists(`${path}.orig`)) ?? (await readIfExists(path)) ?? "";
  const text = renderLinkerScript(template, { appOffset, include: commonInclude(original) });
  return await planFileEdit(path, text);
}

/** One line per file change (and its summary), for the log or the dry run. */
export function describeFileEdit(
  edit: FileEdit,
  root: string,
  dryRun: boolean,
  label = "",
  detail = "",
): string[] {
  const name = label + relative(root, edit.path);
  if (!edit.changed) return [`${name}: up to date${detail ? ` (${detail})` : ""}`];
  const lines = [
    `${dryRun ? "would write" : "wrote"} ${name}${
      detail ? `: ${detail}` : edit.before === undefined ? " (new)" : ""
    }`,
    ...edit.summary.map((l) => `    ${l}`),
  ];
  if (edit.backup) {
    lines.push(
      `  ${dryRun ? "would keep" : "kept"} the original as ${relative(root, edit.backup)}`,
    );
  }
  return lines;
}
