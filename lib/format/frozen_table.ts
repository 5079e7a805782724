/**
 * Frozen modules inside the test images. A real build freezes each module as bytecode
 * in the firmware, so its string constants (such as `ota.BUILD`) travel in the image.
 * The stand-in builds (`sample_firmware.ts`, the fake trees' make) cannot compile to
 * bytecode, so they keep each frozen module's source in the irom, behind a marker; the
 * virtual device runs the image's `ota.py` from there. A board therefore reports the
 * build it was flashed with, and an image without such a table (a real one, or an old
 * sample) is "no frozen modules known". Pure.
 */
import { readU32 } from "../_bytes.ts";
import { IROM_FILE_OFFSET, MAX_TOTAL, TOTAL_FIELD_OFFSET } from "./image.ts";

/** Marks the start of one frozen module: NUL, the marker, the name, a newline, the source, NUL. */
const MARKER = "\0frozen-py:";

export interface FrozenSource {
  /** The file name as frozen, e.g. "ota.py". */
  name: string;
  source: string;
}

/** The table's bytes, to put into an irom. @throws {Error} If a source holds a NUL byte. */
export function encodeFrozenTable(modules: readonly FrozenSource[]): Uint8Array {
  const parts = modules.map((m) => {
    if (m.source.includes("\0") || !/^[\w.]+$/.test(m.name)) {
      throw new Error(`frozen module '${m.name}' cannot go into the table`);
    }
    return `${MARKER}${m.name}\n${m.source}\0`;
  });
  return new TextEncoder().encode(parts.join(""));
}

/**
 * The frozen modules of the image that starts at `app[0]` (an image file, or the flash
 * from the app offset): read from its irom, up to the length word boot8266 reads, so
 * that bytes an older, longer image left behind in flash are not taken for this one's.
 */
export function readFrozenTable(app: Uint8Array): FrozenSource[] {
  if (app.length < IROM_FILE_OFFSET) return [];
  const total = readU32(app, TOTAL_FIELD_OFFSET);
  const end = total > IROM_FILE_OFFSET && total <= MAX_TOTAL ? Math.min(total, app.length) : 0;
  const irom = app.subarray(IROM_FILE_OFFSET, end);
  const text = new TextDecoder("latin1").decode(irom);
  const found: FrozenSource[] = [];
  const utf8 = new TextDecoder();
  for (let at = text.indexOf(MARKER); at >= 0; at = text.indexOf(MARKER, at + 1)) {
    const nameStart = at + MARKER.length;
    const newline = text.indexOf("\n", nameStart);
    const stop = text.indexOf("\0", nameStart);
    if (newline < 0 || stop < 0 || stop < newline) continue;
    const name = text.slice(nameStart, newline);
    if (!/^[\w.]+$/.test(name)) continue;
    found.push({ name, source: utf8.decode(irom.subarray(newline + 1, stop)) });
  }
  return found;
}
