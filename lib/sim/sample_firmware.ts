/**
 * Valid OTA images for the demo, the tests and the benchmark: the real makeimg
 * structure with an MD5 trailer, and an irom shaped like a real build's, so that the
 * link-address check (lib/link_address.ts) meets what it meets on real images:
 * - code with literal pools: pointers to strings, to popular functions (one literal per
 *   call site, so the same value many times), ROM and RAM addresses, small constants;
 * - a string table (rodata) that those pointers point into, the version banner among it;
 * - data tables: records of {string, function, number}, pointers past the irom's end
 *   (real builds have many: they made a sliding-window estimate pick the wrong base),
 *   and pointer-like constants anywhere in 0x402xxxxx.
 */
import { buildOtaImage, DEFAULT_APP_OFFSET, IROM_MAP_BASE, otaIromBase } from "../format/image.ts";
import { writeU32 } from "../_bytes.ts";
import { type Random, seededRandom } from "../_random.ts";
import { encodeFrozenTable, type FrozenSource } from "../format/frozen_table.ts";

export interface SampleOptions {
  /** Total image size wanted, roughly (default 96 KiB). */
  size?: number;
  appOffset?: number;
  /** irom link address; default the OTA base for `appOffset`. 0x40209000 gives a standard build. */
  linkBase?: number;
  /** Embedded as "MicroPython VERSION on DATE", what `os.uname()` reports. */
  version?: string;
  date?: string;
  seed?: number;
  /**
   * Frozen modules, kept as source at the end of the irom (lib/format/frozen_table.ts): the
   * virtual device runs this `ota.py`, so a board reports the build it was flashed with.
   */
  frozen?: readonly FrozenSource[];
}

const WORDS = [
  "append",
  "buffer",
  "close",
  "connect",
  "decode",
  "encode",
  "flash",
  "format",
  "index",
  "irq",
  "machine",
  "network",
  "object",
  "pin",
  "read",
  "recv",
  "send",
  "socket",
  "sta_if",
  "value",
  "write",
];

/** A string like the ones in MicroPython's rodata: an identifier, a message or a format. */
function makeString(random: Random): string {
  const pick = () => WORDS[Math.floor(random() * WORDS.length)]!;
  const r = random();
  if (r < 0.5) return pick() + (random() < 0.5 ? "" : `_${pick()}`);
  if (r < 0.85) return `${pick()} ${pick()} ${random() < 0.5 ? "failed" : "expected"}`;
  return `${pick()}: %d %s\n`;
}

/** The irom of a build linked at `linkBase`, `length` bytes (a multiple of 4). */
function makeIrom(length: number, linkBase: number, banner: string, random: Random): Uint8Array {
  const irom = new Uint8Array(length);
  const put = (at: number, value: number) => writeU32(irom, at, value >>> 0);
  const below = (n: number) => Math.floor(random() * n);
  const codeEnd = Math.floor(length * 0.55) & ~3;
  const stringsEnd = Math.floor(length * 0.8) & ~3;

  // Rodata: NUL-separated strings, some padded to 4 bytes, the banner first.
  const strings: number[] = [];
  let at = codeEnd + 4;
  const encoder = new TextEncoder();
  for (let text = banner; at + 64 < stringsEnd; text = makeString(random)) {
    const bytes = encoder.encode(text);
    strings.push(at);
    irom.set(bytes, at);
    at += bytes.length + 1;
    if (random() < 0.5) at = (at + 3) & ~3;
  }

  const functions = Array.from({ length: 48 }, () => below(codeEnd) & ~3);
  // A few functions are called from everywhere: their address recurs in many pools.
  const someFunction = () => functions[Math.floor(random() ** 3 * functions.length)]!;
  const stringPointer = () => linkBase + strings[below(strings.length)]!;
  const pastEnd = () => (linkBase + length + below(0x3000)) & ~3;

  // Code: runs of instruction bytes (zeros are common in Xtensa code), then literal pools.
  at = 0;
  while (at + 64 < codeEnd) {
    const run = 16 + below(80);
    for (let i = 0; i < run; i++) irom[at + i] = random() < 0.2 ? 0 : below(256);
    at = (at + run + 3) & ~3;
    const pool = 2 + below(7);
    for (let i = 0; i < pool && at + 4 <= codeEnd; i++, at += 4) {
      const r = random();
      if (r < 0.4) put(at, stringPointer());
      else if (r < 0.65) put(at, linkBase + someFunction());
      else if (r < 0.72) put(at, 0x40000000 + (below(0x10000) & ~3)); // ROM
      else if (r < 0.8) put(at, 0x3ffe8000 + (below(0x14000) & ~3)); // RAM
      else if (r < 0.84) put(at, pastEnd());
      else if (r < 0.87) put(at, IROM_MAP_BASE + below(0x100000)); // looks like a pointer, isn't
      else put(at, below(0x10000));
    }
  }

  // Tables: records that name a string and a function, pointers past the irom's end.
  at = stringsEnd;
  while (at + 12 <= length) {
    const r = random();
    if (r < 0.6) {
      put(at, stringPointer());
      put(at + 4, linkBase + someFunction());
      put(at + 8, below(0x100));
      at += 12;
    } else if (r < 0.8) {
      put(at, pastEnd());
      at += 4;
    } else if (r < 0.85) {
      put(at, IROM_MAP_BASE + below(0x100000));
      at += 4;
    } else {
      put(at, Math.floor(random() * 0x100000000) & 0xbfffffff); // clear of 0x402xxxxx
      at += 4;
    }
  }
  return irom;
}

/**
 * A valid OTA image (or, with `linkBase: 0x40209000`, a standard build) of about
 * `size` bytes; the same options and seed give the same bytes.
 * @example
 * ```ts
 * import { makeSampleFirmware } from "./sample_firmware.ts";
 * const image = makeSampleFirmware({ size: 64 * 1024, version: "v1.20.0" });
 * if (image[0] !== 0xe9) throw new Error();
 * ```
 */
export function makeSampleFirmware(options: SampleOptions = {}): Uint8Array {
  const appOffset = options.appOffset ?? DEFAULT_APP_OFFSET;
  const linkBase = options.linkBase ?? otaIromBase(appOffset);
  const random = seededRandom(options.seed ?? 1);
  const iromLength = Math.max(4096, ((options.size ?? 96 * 1024) - 0x9000 - 16) & ~3);
  const banner = `MicroPython ${options.version ?? "v1.19.1"} on ${
    options.date ?? "2022-06-18"
  }; ESP module with ESP8266`;
  const irom = makeIrom(iromLength, linkBase, banner, random);
  if (options.frozen?.length) {
    // In the data tables at the end, as a build keeps its frozen modules after the code.
    const table = encodeFrozenTable(options.frozen);
    const at = (iromLength - table.length - 4) & ~3;
    if (at < iromLength * 0.8) {
      throw new Error(`the frozen modules (${table.length} bytes) do not fit this sample's irom`);
    }
    irom.set(table, at);
  }
  const text = new Uint8Array(0x6000).map(() => Math.floor(random() * 256));
  const data = new Uint8Array(0x800).map(() => Math.floor(random() * 256));
  return buildOtaImage({
    entry: 0x40100004,
    flashMode: 2,
    flashSizeFreq: 0x00,
    segments: [
      { address: 0x40100000, data: text },
      { address: 0x3ffe8000, data: data },
    ],
    irom,
  });
}
