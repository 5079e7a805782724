/**
 * `sim --flash FILE`: the virtual device's flash as a file, read at start and written as
 * the device writes. A file the sim made is marked by a sidecar `FILE.sim.json`
 * (`{"writtenBy": "deno task sim", "flashSize": N}`) and reused; any other file at that
 * path is the user's and is never replaced unless `--force` says so. The sidecar keeps
 * the dump itself byte for byte a flash image (what esptool `read_flash` gives and
 * `write_flash` takes).
 */
import { FileError } from "../errors.ts";
import { formatBytes } from "../_units.ts";

export const MARK_SUFFIX = ".sim.json";
const WRITTEN_BY = "deno task sim";
const CANNED_MAGIC = "yaota8266\x01";
const ESP_IMAGE_MAGIC = 0xe9;

/** The sidecar that marks `path` as a dump the sim wrote. */
export function markPath(path: string): string {
  return path + MARK_SUFFIX;
}

/** The sidecar's text for a dump of `flashSize` bytes. */
export function markText(flashSize: number): string {
  return JSON.stringify(
    {
      writtenBy: WRITTEN_BY,
      flashSize,
      note: "the file beside this one is a virtual device's flash; sim reuses and rewrites it",
    },
    null,
    2,
  ) + "\n";
}

/** The flash size a sidecar records, or undefined if the text is not a sim mark. */
export function parseMark(text: string): number | undefined {
  try {
    const mark = JSON.parse(text);
    return mark?.writtenBy === WRITTEN_BY && Number.isInteger(mark.flashSize)
      ? mark.flashSize
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What a file that the sim did not write looks like, from its first bytes and its size,
 * e.g. "a firmware image (ESP8266, byte 0 is 0xE9)". Pure.
 */
export function describeForeignFile(head: Uint8Array, size: number, flashSize: number): string {
  if (size === 0) return "an empty file";
  const text = new TextDecoder().decode(head.subarray(0, 64));
  if (text.startsWith(CANNED_MAGIC)) return "a signed .ota file (made by 'deno task sign')";
  if (text.startsWith("-----BEGIN")) return "a key or certificate (PEM)";
  if (head[0] === ESP_IMAGE_MAGIC) {
    return size === flashSize
      ? `a flash dump (${formatBytes(size)}, starting with a bootloader image), not one sim wrote`
      : `a firmware image (${formatBytes(size)}, ESP image header 0xE9)`;
  }
  if (size === flashSize) return `a ${formatBytes(size)} flash dump that sim did not write`;
  const printable = head.subarray(0, 512).every((b) =>
    b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 128
  );
  if (printable) return `a text file (${formatBytes(size)})`;
  return `a ${formatBytes(size)} file that sim did not write`;
}

export interface FlashDump {
  /** The flash to start from: the dump's bytes, or erased (0xFF). */
  flash: Uint8Array;
  /** "new": no file yet; "reused": a dump the sim wrote; "forced": the user's file, --force. */
  state: "new" | "reused" | "forced";
  /** With "forced": what the file looked like. */
  was?: string;
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new FileError(`cannot use --flash '${path}': ${(e as Error).message}`);
  }
}

async function readHead(path: string, n: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const head = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await file.read(head.subarray(got));
    if (r === null) break;
    got += r;
  }
  return head.subarray(0, got);
}

/**
 * Checks `path` for `sim --flash` and reads the flash to start from. Nothing is written
 * here: the sim writes the file and `markFlashDump` once it listens.
 * @throws {FileError} If `path` is a directory or not a regular file, or it holds a file
 *   the sim did not write (unless `force`), or a dump of another flash size.
 */
export async function openFlashDump(
  path: string,
  flashSize: number,
  force = false,
): Promise<FlashDump> {
  const flash = new Uint8Array(flashSize).fill(0xff);
  const info = await statOrUndefined(path);
  if (info?.isDirectory) {
    throw new FileError(
      `--flash names a directory ('${path}'): give the path of a file for the flash dump, ` +
        `e.g. '${path.replace(/\/+$/, "")}/flash.bin'.`,
    );
  }
  if (info && !info.isFile) {
    throw new FileError(`--flash '${path}' is not a regular file: give the path of a flash dump.`);
  }
  const markInfo = await statOrUndefined(markPath(path));
  const mark = markInfo?.isFile
    ? parseMark(await Deno.readTextFile(markPath(path)).catch(() => ""))
    : undefined;
  if (markInfo && mark === undefined && !force) {
    throw new FileError(
      `'${markPath(path)}' exists and is not a mark written by sim: sim will not replace it. ` +
        `Choose another --flash path, or --force.`,
    );
  }
  if (!info) return { flash, state: "new" };
  if (mark !== undefined && info.size === mark) {
    if (mark !== flashSize) {
      throw new FileError(
        `--flash '${path}' is a ${formatBytes(mark)} flash dump from an earlier sim, not ${
          formatBytes(flashSize)
        }: give --flash-size ${mark} or another --flash path.`,
      );
    }
    flash.set(await Deno.readFile(path));
    return { flash, state: "reused" };
  }
  const was = describeForeignFile(await readHead(path, 4096), info.size, flashSize);
  if (!force) {
    throw new FileError(
      `--flash '${path}' looks like ${was}: sim would replace it with a ${
        formatBytes(flashSize)
      } flash dump. Choose another path (a new file is created), or add --force to use and overwrite it.`,
    );
  }
  // A file of the flash's size is taken as the flash it holds (e.g. from esptool read_flash).
  if (info.size === flashSize) flash.set(await Deno.readFile(path));
  return { flash, state: "forced", was };
}

/** Marks `path` as a dump the sim wrote (the sidecar `FILE.sim.json`). */
export async function markFlashDump(path: string, flashSize: number): Promise<void> {
  await Deno.writeTextFile(markPath(path), markText(flashSize));
}
