/**
 * `scan --add`: the boards found, written into `ota.config.json`'s "devices" as new
 * entries under names the user may edit. The file is edited as text: the new entries
 * go at the end of the "devices" array (or a new "devices" key at the end of the
 * object); every other byte of the file, its entries, their order and formatting, stays
 * as it was. A board whose address and port an entry already names is never added
 * again, so running it twice changes nothing. Pure.
 */
import type { DeviceEntry } from "../config/config.ts";
import { ConfigError } from "../errors.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";

/** A board to add: its address and port, and the name we suggest. */
export interface FoundBoard {
  ip: string;
  port: number;
}

/** A name the user can read and change: `board-192-168-1-20`, unique among `taken`. */
export function suggestName(ip: string, taken: ReadonlySet<string>): string {
  const base = `board-${ip.replaceAll(".", "-").replaceAll(":", "-")}`;
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  return name;
}

/** The entries to add for `found`: none for an address and port already listed. */
export function newEntries(
  found: readonly FoundBoard[],
  existing: readonly DeviceEntry[],
  defaultPort = DEFAULT_DEVICE_PORT,
): DeviceEntry[] {
  const listed = new Set(existing.map((d) => `${d.ip}:${d.port ?? defaultPort}`));
  const taken = new Set(existing.map((d) => d.name));
  const out: DeviceEntry[] = [];
  for (const board of found) {
    const at = `${board.ip}:${board.port}`;
    if (listed.has(at)) continue;
    listed.add(at);
    const name = suggestName(board.ip, taken);
    taken.add(name);
    out.push({
      name,
      ip: board.ip,
      ...(board.port === defaultPort ? {} : { port: board.port }),
    });
  }
  return out;
}

/** Where a top-level key's value starts and ends in the text (ends exclusive). */
interface Span {
  keyStart: number;
  valueStart: number;
  valueEnd: number;
}

/** Skips a JSON string starting at `i` (a quote); returns the index after it. */
function skipString(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === "\\") j++;
    else if (text[j] === '"') return j + 1;
  }
  throw new ConfigError("ota.config.json ends inside a string");
}

/** The end of the value starting at `i` (exclusive). */
function skipValue(text: string, i: number): number {
  if (text[i] === '"') return skipString(text, i);
  if (text[i] === "{" || text[i] === "[") {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const c = text[j];
      if (c === '"') j = skipString(text, j) - 1;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        if (--depth === 0) return j + 1;
      }
    }
    throw new ConfigError("ota.config.json ends inside an object or array");
  }
  const m = /^[^,}\]\s]+/.exec(text.slice(i));
  return i + (m?.[0].length ?? 0);
}

/** The top-level keys of the object in `text`, with their spans, and the closing brace. */
function topLevel(text: string): { keys: Map<string, Span>; close: number } {
  const keys = new Map<string, Span>();
  let i = text.indexOf("{");
  if (i < 0) throw new ConfigError("ota.config.json holds no JSON object");
  i++;
  while (i < text.length) {
    while (/[\s,]/.test(text[i] ?? "")) i++;
    if (text[i] === "}") return { keys, close: i };
    if (text[i] !== '"') throw new ConfigError("ota.config.json is not valid JSON");
    const keyStart = i;
    const keyEnd = skipString(text, i);
    const key = JSON.parse(text.slice(keyStart, keyEnd)) as string;
    i = keyEnd;
    while (/[\s:]/.test(text[i] ?? "")) i++;
    const valueStart = i;
    i = skipValue(text, i);
    keys.set(key, { keyStart, valueStart, valueEnd: i });
  }
  throw new ConfigError("ota.config.json ends inside its object");
}

/** The indentation of the line holding index `i`. */
function indentAt(text: string, i: number): string {
  const lineStart = text.lastIndexOf("\n", i) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))![0];
}

/**
 * `text` (the config file, or "" for none) with `entries` added at the end of "devices".
 * Every other byte is kept.
 * @throws {ConfigError} If the file is not a JSON object or "devices" is not an array.
 */
export function addDevicesToConfigText(text: string, entries: readonly DeviceEntry[]): string {
  if (entries.length === 0) return text;
  const line = (e: DeviceEntry) =>
    `{ ${
      Object.entries(e).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(", ")
    } }`;
  if (text.trim() === "") {
    return `{\n  "devices": [\n${entries.map((e) => `    ${line(e)}`).join(",\n")}\n  ]\n}\n`;
  }
  const { keys, close } = topLevel(text);
  const devices = keys.get("devices");
  if (!devices) {
    const unit = indentAt(text, keys.values().next().value?.keyStart ?? close) || "  ";
    const last = [...keys.values()].at(-1);
    const body = entries.map((e) => `${unit}${unit}${line(e)}`).join(",\n");
    const insert = `${last ? "," : ""}\n${unit}"devices": [\n${body}\n${unit}]`;
    const at = last ? last.valueEnd : text.indexOf("{") + 1;
    const tail = text.slice(at);
    return text.slice(0, at) + insert + (last ? tail : `\n${tail.trimStart()}`);
  }
  if (text[devices.valueStart] !== "[") {
    throw new ConfigError('ota.config.json: "devices" is not a list: fix it before --add');
  }
  const open = devices.valueStart;
  const end = devices.valueEnd - 1; // the closing bracket
  const inner = text.slice(open + 1, end);
  const keyIndent = indentAt(text, devices.keyStart);
  if (inner.trim() === "") {
    const body = entries.map((e) => `${keyIndent}  ${line(e)}`).join(",\n");
    return `${text.slice(0, open + 1)}\n${body}\n${keyIndent}${text.slice(end)}`;
  }
  // After the last element, before any whitespace that leads to the bracket.
  const lastElementEnd = open + 1 + inner.trimEnd().length;
  const lastElementIndent = indentAt(text, lastElementEnd - 1);
  const sameLine = !text.slice(open, lastElementEnd).includes("\n");
  const sep = sameLine ? ", " : `,\n${lastElementIndent}`;
  const body = entries.map((e) => line(e)).join(sep);
  return text.slice(0, lastElementEnd) + sep + body + text.slice(lastElementEnd);
}
