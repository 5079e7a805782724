/**
 * `deno task bench`: measured side by side in one run against the virtual device with
 * the ESP8266 profile and its quiet variant (a bootloader built with `build-bootloader
 * --quiet-log`): the original client's way (stop-and-wait, 256-byte blocks, 0.3 s tries)
 * and `deploy`'s defaults, at MTU 1500 and 548 with 1 % loss; the device-bound ceiling;
 * the signing cost; recovery from an 11 s outage; a fleet of 8 at concurrency 1 and 4.
 */
import { boolOpt, type CommandSpec, numberOpt, runTask, type TaskContext } from "../lib/cli/cli.ts";
import { sendLikeOriginal } from "../lib/bench/baseline_sender.ts";
import { deploy } from "../lib/deploy/deploy.ts";
import { deviceBoundRate, PROFILES } from "../lib/sim/device_profile.ts";
import { DEFAULT_APP_OFFSET } from "../lib/format/image.ts";
import { parsePrivateKey, type SigningKey } from "../lib/format/keys.ts";
import { bold, log, print, printJson } from "../lib/cli/output.ts";
import { digestBlock, signedRegion } from "../lib/format/packet.ts";
import { makeSampleFirmware } from "../lib/sim/sample_firmware.ts";
import { forgeSigner, nativeSigner } from "../lib/format/signer.ts";
import { startSimProcess } from "../lib/sim/sim_process.ts";
import { startVirtualDevice } from "../lib/sim/virtual_device.ts";
import { equalBytes } from "../lib/_bytes.ts";
import { benchmarkKeys } from "../lib/bench/bench_keys.ts";
import { deployFleet } from "../lib/deploy/fleet_rollout.ts";

export const spec: CommandSpec = {
  name: "bench",
  summary: "Measure deploy against the original client's way, side by side, on the virtual device.",
  options: {
    size: { type: "string", arg: "KIB", help: "image size in KiB (default 160)" },
    "delay-ms": {
      type: "string",
      arg: "MS",
      help: "one-way network delay (default 5: a Wi-Fi round trip of 10 ms)",
    },
    quick: { type: "boolean", help: "skip the outage and fleet cases" },
    json: { type: "boolean", help: "print the figures as one JSON object" },
  },
  notes: [
    "The device runs in its own process ('sim --profile esp8266', then esp8266-quiet: the " +
    "same board with a bootloader built by 'build-bootloader --quiet-log') with 1 % loss each way. " +
    "The ceiling is the device-bound rate: what the device would reach if it never waited for the " +
    "network (its per-packet and per-sector costs only) for the largest block the link passes.",
  ],
};

const PROFILE = PROFILES.esp8266!;
/** The throughput table's profiles: the standard bootloader and one built with --quiet-log. */
const THROUGHPUT_PROFILES = ["esp8266", "esp8266-quiet"] as const;

function signingCost(key: SigningKey, block: number): { native: number; forge: number } {
  const region = signedRegion(0, new Uint8Array(block).fill(0x5a));
  const time = (sign: (b: Uint8Array) => Uint8Array, n: number) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) sign(digestBlock(region));
    return (performance.now() - t) / n;
  };
  const native = nativeSigner(key);
  const forge = forgeSigner(key);
  time(native.sign, 5);
  return {
    native: time(native.sign, key.bits > 1024 ? 100 : 400),
    forge: time(forge.sign, key.bits > 1024 ? 10 : 60),
  };
}

interface Throughput {
  profile: string;
  mtu: string;
  block: number;
  originalKiBps: number;
  deployKiBps: number;
  ratio: number;
  ceilingKiBps: number;
  ofCeiling: number;
  originalRetransmits: number;
  deployRetransmits: number;
}

async function throughput(
  profile: typeof THROUGHPUT_PROFILES[number],
  label: string,
  mtu: number,
  image: Uint8Array,
  imagePath: string,
  key: SigningKey,
  keyPath: string,
  delayMs: number,
): Promise<Throughput> {
  const simArgs = [
    "--key",
    keyPath,
    "--profile",
    profile,
    "--loss",
    "0.01",
    "--delay-ms",
    String(delayMs),
    "--mtu",
    String(mtu),
    "--seed",
    "11",
  ];
  log(`  ${profile}, ${label}: the original client's way…`);
  let original;
  {
    await using sim = await startSimProcess(simArgs);
    original = await sendLikeOriginal("127.0.0.1", sim.port, image, nativeSigner(key));
    await sim.waitFor((e) => e.event === "reboot", 10000);
  }
  log(`  ${profile}, ${label}: deploy's defaults…`);
  let ours;
  {
    await using sim = await startSimProcess(simArgs);
    ours = await deploy({
      host: "127.0.0.1",
      port: sim.port,
      file: imagePath,
      keyPath,
      block: "auto",
      pace: true,
      timeoutMs: 15000,
      force: false,
      bootCheck: false,
      appOffset: DEFAULT_APP_OFFSET,
      flashSize: 0x100000,
    });
  }
  const kb = image.length / 1024;
  const originalKiBps = kb / original.seconds;
  const ceilingKiBps = deviceBoundRate(PROFILES[profile]!, key.modulus.length, ours.block) / 1024;
  return {
    profile,
    mtu: label,
    block: ours.block,
    originalKiBps: round(originalKiBps),
    deployKiBps: round(ours.kibps),
    ratio: round(ours.kibps / originalKiBps),
    ceilingKiBps: round(ceilingKiBps),
    ofCeiling: round(ours.kibps / ceilingKiBps),
    originalRetransmits: original.retransmits,
    deployRetransmits: ours.retransmits,
  };
}

const round = (x: number) => Math.round(x * 100) / 100;

async function outageRecovery(
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
    block: 1024,
    pace: true,
    timeoutMs: 15000,
    force: false,
    bootCheck: true,
    bootCheckMs: 3000,
    appOffset: DEFAULT_APP_OFFSET,
    flashSize: flash.length,
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
async function fleet(keyPath: string, key: SigningKey, delayMs: number) {
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
          request: {
            file,
            block: "auto",
            pace: true,
            timeoutMs: 15000,
            force: false,
            bootCheck: false,
            appOffset: DEFAULT_APP_OFFSET,
            flashSize: 0x100000,
          },
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

export async function main({ args }: TaskContext): Promise<number | void> {
  const { values } = args;
  const sizeKiB = numberOpt(values, "size", (n) => n >= 40 && n <= 800, "KiB from 40 to 800") ??
    160;
  const delayMs = numberOpt(values, "delay-ms", (n) => n >= 0 && n <= 100, "ms from 0 to 100") ?? 5;
  const json = boolOpt(values, "json");
  const dir = await Deno.makeTempDir({ prefix: "yaota-bench-" });
  try {
    const keys = benchmarkKeys();
    const key2048Path = `${dir}/k2048.pem`;
    await Deno.writeTextFile(key2048Path, keys.k2048, { mode: 0o600 });
    const key2048 = parsePrivateKey(keys.k2048);
    const key512 = parsePrivateKey(keys.k512);
    const image = makeSampleFirmware({ size: sizeKiB * 1024, seed: 5 });
    const imagePath = `${dir}/firmware-ota.bin`;
    await Deno.writeFile(imagePath, image);

    log(bold("signing cost per packet"));
    const signing = {
      key512: signingCost(key512, 256),
      key2048: signingCost(key2048, 1024),
    };
    log(
      bold(
        `throughput: ${sizeKiB} KiB image, 2048-bit key, ESP8266 profiles (standard and quiet), 1 % loss, ${delayMs} ms each way`,
      ),
    );
    const rows: Throughput[] = [];
    for (const profile of THROUGHPUT_PROFILES) {
      for (const [label, mtu] of [["MTU 1500", 1472], ["MTU 548", 548]] as const) {
        rows.push(
          await throughput(profile, label, mtu, image, imagePath, key2048, key2048Path, delayMs),
        );
      }
    }
    const quietSpeedup = Object.fromEntries(
      rows.filter((r) => r.profile === "esp8266-quiet").map((q) => {
        const standard = rows.find((r) => r.profile === "esp8266" && r.mtu === q.mtu)!;
        return [q.mtu, round(q.deployKiBps / standard.deployKiBps)];
      }),
    );
    let outage;
    let fleetRuns;
    if (!boolOpt(values, "quick")) {
      log(
        bold("recovery from an 11 s outage in the middle of a 2048-bit, 1024-byte-block transfer"),
      );
      outage = await outageRecovery(image, imagePath, key2048Path, key2048, delayMs);
      log(bold("fleet: 8 virtual devices, 64 KiB each, concurrency 1 then 4"));
      fleetRuns = await fleet(key2048Path, key2048, delayMs);
    }
    const report = {
      sizeKiB,
      delayMs,
      loss: 0.01,
      profiles: THROUGHPUT_PROFILES.map((p) => PROFILES[p]!),
      signingMsPerPacket: signing,
      throughput: rows,
      quietSpeedup,
      outage,
      fleet: fleetRuns,
    };
    if (json) {
      printJson(report);
      return 0;
    }
    print(bold("signing, ms per packet") + "            native   node-forge");
    print(
      `  512-bit key, 256-byte block     ${signing.key512.native.toFixed(3).padStart(6)}   ${
        signing.key512.forge.toFixed(3).padStart(8)
      }`,
    );
    print(
      `  2048-bit key, 1024-byte block   ${signing.key2048.native.toFixed(3).padStart(6)}   ${
        signing.key2048.forge.toFixed(3).padStart(8)
      }`,
    );
    print("");
    print(
      bold(`throughput (${sizeKiB} KiB, 2048-bit key, 1 % loss, ${delayMs} ms each way), KiB/s`),
    );
    print(
      "  profile        link       block  original  deploy  ratio  ceiling  deploy/ceiling",
    );
    for (const r of rows) {
      print(
        `  ${r.profile.padEnd(14)} ${r.mtu.padEnd(9)} ${String(r.block).padStart(6)} ${
          r.originalKiBps.toFixed(1).padStart(9)
        } ${r.deployKiBps.toFixed(1).padStart(7)} ${(r.ratio.toFixed(2) + "×").padStart(6)} ${
          r.ceilingKiBps.toFixed(1).padStart(8)
        } ${(Math.round(r.ofCeiling * 100) + " %").padStart(15)}`,
      );
    }
    print(
      `  deploy to a board with a --quiet-log bootloader: ${
        Object.entries(quietSpeedup).map(([mtu, x]) => `${x.toFixed(2)}× at ${mtu}`).join(", ")
      } the standard one's rate`,
    );
    if (outage) {
      print("");
      print(bold("11 s outage mid-transfer"));
      print(
        `  session restart noticed ${
          outage.noticedAfterOutageSeconds ?? "?"
        } s after the link came back, ` +
          `device clean again after ${
            outage.cleanAfterOutageSeconds ?? "?"
          } s; whole deploy ${outage.totalSeconds} s; ` +
          `flash equals image: ${outage.flashEqualsImage ? "yes" : "NO"}`,
      );
    }
    if (fleetRuns) {
      print("");
      print(bold("fleet of 8 (64 KiB each, ESP8266 profile, 1 % loss)"));
      for (const r of fleetRuns.runs) {
        print(`  concurrency ${r.concurrency}: ${r.seconds.toFixed(1)} s, ${r.updated}/8 updated`);
      }
      print(`  speed-up: ${fleetRuns.speedup.toFixed(2)}×`);
    }
    return 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) runTask(spec, main);
