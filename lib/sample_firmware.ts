/**
 * Valid OTA images for the demo, the tests and the benchmark: the real makeimg
 * structure with an MD5 trailer, and an irom whose pointer-like words point into the
 * link range, with the share measured on real builds (~90 % inside; docs/device.md,
 * "OTA firmware image").
 */
import { buildOtaImage, DEFAULT_APP_OFFSET, IROM_MAP_BASE, otaIromBase } from "./image.ts";
import { writeU32 } from "./_bytes.ts";
import { seededRandom } from "./_random.ts";
import { encodeFrozenTable, type FrozenSource } from "./frozen_table.ts";

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
   * Frozen modules, kept as source in the irom (`frozen_table.ts`): the virtual device
   * runs this `ota.py`, so a board reports the build it was flashed with.
   */
  frozen?: readonly FrozenSource[];
}

export function makeSampleFirmware(options: SampleOptions = {}): Uint8Array {
  const appOffset = options.appOffset ?? DEFAULT_APP_OFFSET;
  const linkBase = options.linkBase ?? otaIromBase(appOffset);
  const random = seededRandom(options.seed ?? 1);
  const iromLength = Math.max(4096, ((options.size ?? 96 * 1024) - 0x9000 - 16) & ~3);
  const irom = new Uint8Array(iromLength);
  for (let at = 0; at < iromLength; at += 4) {
    const r = random();
    let word: number;
    if (r < 0.27) word = linkBase + Math.floor(random() * iromLength) & ~3;
    else if (r < 0.3) word = IROM_MAP_BASE + Math.floor(random() * 0x100000);
    else word = Math.floor(random() * 0x100000000) & 0xbfffffff; // keep clear of 0x402xxxxx
    writeU32(irom, at, word >>> 0);
  }
  const banner = new TextEncoder().encode(
    `MicroPython ${options.version ?? "v1.19.1"} on ${
      options.date ?? "2022-06-18"
    }; ESP module with ESP8266\0`,
  );
  const bannerAt = Math.min(256, iromLength - banner.length);
  irom.set(banner, bannerAt);
  if (options.frozen?.length) {
    const table = encodeFrozenTable(options.frozen);
    const at = (bannerAt + banner.length + 3) & ~3;
    if (at + table.length > iromLength) {
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
