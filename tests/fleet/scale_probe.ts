/**
 * Scale on paper (docs/scale.md), measured by hand, not in `deno task test`:
 *
 *   deno run -A tests/fleet/scale_probe.ts [BOARDS=64] [KIB=96]
 *
 * Starts BOARDS virtual yaota8266 devices with a real board's costs (the esp8266 profile,
 * 5 ms each way) in this process, then runs `deploy --fleet` as a site runner would (its
 * own process, under /usr/bin/time for its peak memory): to one board, then to all of
 * them at concurrency 4 (the default) and at concurrency BOARDS. Prints one JSON object.
 */
import { join } from "node:path";
import { ROOT } from "../_helpers.ts";
import { benchmarkKeys } from "../../lib/bench/bench_keys.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { startVirtualDevice, type VirtualDevice } from "../../lib/sim/virtual_device.ts";

const boards = Number(Deno.args[0] ?? 64);
const kib = Number(Deno.args[1] ?? 96);
const dir = await Deno.makeTempDir({ prefix: "yaota-scale-" });
const pem = benchmarkKeys().k2048;
const keyPath = join(dir, "priv.key");
await Deno.writeTextFile(keyPath, pem, { mode: 0o600 });
const key = parsePrivateKey(pem);
const file = join(dir, "fw.bin");
await Deno.writeFile(file, makeSampleFirmware({ size: kib * 1024, seed: 3 }));

async function fleetOf(n: number): Promise<VirtualDevice[]> {
  return await Promise.all(Array.from({ length: n }, (_, i) =>
    startVirtualDevice({
      modulus: key.modulus,
      flash: new Uint8Array(0x100000).fill(0xff),
      profile: PROFILES.esp8266,
      link: { delayMs: 5, seed: 40 + i },
    })));
}

async function run(n: number, concurrency: number) {
  const devices = await fleetOf(n);
  const config = join(dir, `ota.config.${n}.${concurrency}.json`);
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      devices: devices.map((d, i) => ({ name: `b${i}`, ip: "127.0.0.1", port: d.port })),
    }),
  );
  const t0 = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: [
      "-f",
      "maxrss_kib=%M cpu_user_s=%U cpu_system_s=%S",
      Deno.execPath(),
      "run",
      "-A",
      `${ROOT}tasks/deploy.ts`,
      "--config",
      config,
      "--fleet",
      "--concurrency",
      String(concurrency),
      "--key",
      keyPath,
      "--no-boot-check",
      "--json",
      file,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(devices.map((d) => d.close()));
  const stderr = new TextDecoder().decode(out.stderr);
  const report = JSON.parse(new TextDecoder().decode(out.stdout));
  return {
    boards: n,
    concurrency,
    exitCode: out.code,
    updated: report.devices.filter((d: { ok: boolean }) => d.ok).length,
    seconds: Math.round(seconds * 10) / 10,
    peakMemoryMiB: Math.round(Number(/maxrss_kib=(\d+)/.exec(stderr)?.[1] ?? 0) / 1024),
    cpuSeconds: Math.round(
      (Number(/cpu_user_s=([\d.]+)/.exec(stderr)?.[1] ?? 0) +
        Number(/cpu_system_s=([\d.]+)/.exec(stderr)?.[1] ?? 0)) * 10,
    ) / 10,
  };
}

try {
  const runs = [await run(1, 1), await run(boards, 4), await run(boards, boards)];
  const result = { imageKiB: kib, profile: "esp8266", delayMs: 5, runs };
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result, null, 2) + "\n"));
} finally {
  await Deno.remove(dir, { recursive: true });
}
