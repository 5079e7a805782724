/**
 * The benchmark's resilience cases: recovery from an 11 s outage in the middle of a
 * transfer, and a fleet of 8 virtual devices at concurrency 1 and 4.
 */
import { deploy } from "../deploy/board_push.ts";
import { PROFILES } from "../sim/device_profile.ts";
import { DEFAULT_APP_OFFSET } from "../format/image.ts";
import type { SigningKey } from "../format/keys.ts";
import { makeSampleFirmware } from "../sim/sample_firmware.ts";
import { startVirtualDevice } from "../sim/virtual_device.ts";
import { equalBytes } from "../_bytes.ts";
import { deployFleet } from "../deploy/pipeline.ts";
import { BENCH_DEPLOY } from "./throughput.ts";
import { round } from "../_units.ts";

const PROFILE = PROFILES.esp8266!;

export async function outageRecovery(
  image: Uint8Array,
  imagePath: string,
  keyPath: string,
  key: SigningKey,
  delayMs: number,
) {
  const flash = new Uint8Array(0x100000).fill(0xff);
  const deviceStartedAt = performance.now();
  await using device = await startVirtualDevice({
    modulus: key.modulus,
    flash,
    profile: PROFILE,
    link: { delayMs, outage: { afterBytes: Math.floor(image.length / 2), ms: 11000 } },
  });
  const notes: { at: number; message: string }[] = [];
  const result = await deploy({
    host: "127.0.0.1",
    port: device.port,
    file: imagePath,
    keyPath,
    ...BENCH_DEPLOY,
    block: 1024,
    bootCheck: true,
    bootCheckMs: 3000,
    onStatus: (message) => notes.push({ at: performance.now(), message }),
  });
  const outage = device.link.outage!;
  // Device event times count from the device's start.
  const linkBack = deviceStartedAt + outage.until;
  const since = (match: string) => {
    const n = notes.find((x) => x.message.includes(match));
    return n ? round((n.at - linkBack) / 1000) : undefined;
  };
  return {
    outageSeconds: (outage.until - outage.from) / 1000,
    noticedAfterOutageSeconds: since("restarted its session"),
    cleanAfterOutageSeconds: since("clean buffer"),
    totalSeconds: result.totalSeconds,
    recoveries: result.recoveries,
    flashEqualsImage:
      equalBytes(flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + image.length), image) &&
      !device.model.bootloaderOverwritten,
  };
}

/** 8 virtual devices (ESP8266 profile, 1 % loss), the same image, at concurrency 1 and 4. */
export async function fleet(keyPath: string, key: SigningKey, delayMs: number) {
  const image = makeSampleFirmware({ size: 64 * 1024, seed: 12 });
  const dir = await Deno.makeTempDir({ prefix: "yaota-fleet-" });
  const file = `${dir}/fleet.bin`;
  await Deno.writeFile(file, image);
  const out: { concurrency: number; seconds: number; updated: number }[] = [];
  try {
    for (const concurrency of [1, 4]) {
      const devices = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          startVirtualDevice({
            modulus: key.modulus,
            flash: new Uint8Array(0x100000).fill(0xff),
            profile: PROFILE,
            link: { delayMs, loss: 0.01, seed: 20 + i },
          })),
      );
      try {
        const t0 = performance.now();
        const report = await deployFleet({
          inventory: devices.map((d, i) => ({
            name: `board${i + 1}`,
            ip: "127.0.0.1",
            port: d.port,
          })),
          concurrency,
          request: { file, ...BENCH_DEPLOY, bootCheck: false },
          keyPath,
        });
        out.push({
          concurrency,
          seconds: round((performance.now() - t0) / 1000),
          updated: report.devices.filter((d) => d.ok).length,
        });
      } finally {
        await Promise.all(devices.map((d) => d.close()));
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return { devices: 8, imageKiB: 64, runs: out, speedup: round(out[0]!.seconds / out[1]!.seconds) };
}
