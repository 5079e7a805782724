/**
 * `deno task bench`: measured side by side in one run against the virtual device with
 * the ESP8266 profile and its quiet variant (a bootloader built with `build-bootloader
 * --quiet-log`): the original client's way (stop-and-wait, 256-byte blocks, 0.3 s tries)
 * and `deploy`'s defaults, at MTU 1500 and 548 with 1 % loss, each row `--runs` times
 * (median and range); the device-bound ceiling; what the device saw (packets nested in a
 * signature check, the flash byte for byte); the time to a proven update; the signing
 * cost; recovery from an 11 s outage; a fleet of 8 at concurrency 1 and 4.
 */
import { boolOpt, type CommandSpec, numberOpt, runTask, type TaskContext } from "../lib/cli/cli.ts";
import { PROFILES } from "../lib/sim/device_profile.ts";
import { parsePrivateKey } from "../lib/format/keys.ts";
import { bold, log, print, printJson, warn } from "../lib/cli/output.ts";
import { makeSampleFirmware } from "../lib/sim/sample_firmware.ts";
import { benchmarkKeys } from "../lib/bench/bench_keys.ts";
import {
  DEVICE_NICE,
  LINKS,
  type Spread,
  THROUGHPUT_PROFILES,
  type ThroughputRow,
  throughputRow,
} from "../lib/bench/throughput.ts";
import { fleet, outageRecovery } from "../lib/bench/resilience.ts";
import { provenUpdate } from "../lib/bench/proven_update.ts";
import { startCpuLoad } from "../lib/bench/cpu_load.ts";
import { signingCost } from "../lib/bench/signing_cost.ts";
import { round } from "../lib/_units.ts";

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
    runs: { type: "string", arg: "N", help: "runs of each throughput row (default 3)" },
    load: {
      type: "boolean",
      help: "start a process that keeps every core busy while measuring (a busy machine)",
    },
    quick: {
      type: "boolean",
      help: "skip the time to a proven update, the outage and the fleet cases",
    },
    json: { type: "boolean", help: "print the figures as one JSON object" },
  },
  notes: [
    "The device runs in its own process ('sim --profile esp8266', then esp8266-quiet: the " +
    "same board with a bootloader built by 'build-bootloader --quiet-log') with 1 % loss each way. " +
    "The ceiling is the device-bound rate: what the device would reach if it never waited for the " +
    "network (its per-packet and per-sector costs only) for the largest block the link passes.",
    "Other processes on the machine lower the figures (the virtual device is a real-time model): " +
    "compare rows of one run, and say what else ran. The device runs in the real-time class " +
    "(Linux) and at nice -10 where the system allows it (root or CAP_SYS_NICE), above --load as " +
    "a board is: otherwise its own delays count against deploy, and the bench says so.",
  ],
};

const range = (s: Spread, digits = 1, scale = 1) =>
  s.min === s.max
    ? (s.median * scale).toFixed(digits)
    : `${(s.median * scale).toFixed(digits)} (${(s.min * scale).toFixed(digits)}–${
      (s.max * scale).toFixed(digits)
    })`;

function printThroughput(rows: ThroughputRow[]): void {
  print(
    "  profile        link      block  original          deploy             ceiling  deploy/ceiling   nested  flash",
  );
  for (const r of rows) {
    print(
      `  ${r.profile.padEnd(14)} ${r.mtu.padEnd(9)} ${String(r.block).padStart(5)}  ${
        range(r.originalKBps).padEnd(16)
      }  ${range(r.deployKBps).padEnd(17)} ${r.ceilingKBps.toFixed(1).padStart(7)}  ${
        (range(r.ofCeiling, 0, 100) + " %").padEnd(15)
      } ${r.safety.map((x) => x.nested).join("/").padStart(7)}  ${
        r.safety.every((x) => x.flashExact) ? "exact" : "DIFFERS"
      }`,
    );
  }
}

export async function main({ args }: TaskContext): Promise<number | void> {
  const { values } = args;
  const sizeKiB = numberOpt(values, "size", (n) => n >= 40 && n <= 800, "KiB from 40 to 800") ??
    160;
  const delayMs = numberOpt(values, "delay-ms", (n) => n >= 0 && n <= 100, "ms from 0 to 100") ?? 5;
  const json = boolOpt(values, "json");
  const runs =
    numberOpt(values, "runs", (n) => Number.isInteger(n) && n >= 1 && n <= 20, "1 to 20") ??
      3;
  await using load = boolOpt(values, "load") ? startCpuLoad() : undefined;
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
        `throughput: ${sizeKiB} KiB image, 2048-bit key, ESP8266 profiles (standard and quiet), 1 % loss, ${delayMs} ms each way, ${runs} runs${
          load ? `, ${load.threads} busy threads beside it` : ""
        }`,
      ),
    );
    const setup = {
      image,
      imagePath,
      key: key2048,
      keyPath: key2048Path,
      delayMs,
      runs,
      dir,
      onProgress: (m: string) => log(`  ${m}`),
    };
    const rows: ThroughputRow[] = [];
    for (const profile of THROUGHPUT_PROFILES) {
      for (const [label, mtu] of LINKS) rows.push(await throughputRow(setup, profile, label, mtu));
    }
    const deviceNice = Math.max(...rows.map((r) => r.deviceNice));
    const deviceRealtime = rows.every((r) => r.deviceRealtime);
    const deviceAboveLoad = deviceNice < 0 || deviceRealtime;
    if (!deviceAboveLoad) {
      warn(
        `the virtual device ran at nice ${deviceNice}, not ${DEVICE_NICE} (raising it needs root or CAP_SYS_NICE): ${
          load ? "the load slows the device model too, which a board would not be" : "other " +
            "processes slow the device model too"
        }`,
      );
    }
    const quietSpeedup = Object.fromEntries(
      rows.filter((r) => r.profile === "esp8266-quiet").map((q) => {
        const standard = rows.find((r) => r.profile === "esp8266" && r.mtu === q.mtu)!;
        return [q.mtu, round(q.deployKBps.median / standard.deployKBps.median)];
      }),
    );
    let outage;
    let fleetRuns;
    const proven = [];
    if (!boolOpt(values, "quick")) {
      log(bold("time to a proven update: deploy --trigger of a 600 KiB image to a running board"));
      for (const profile of THROUGHPUT_PROFILES) {
        log(`  ${profile}…`);
        proven.push(
          await provenUpdate({
            profile,
            key: key2048,
            keyPath: key2048Path,
            dir,
            sizeKiB: 600,
            delayMs,
          }),
        );
      }
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
      runs,
      load: load ? { busyThreads: load.threads } : false,
      deviceAboveLoad,
      deviceRealtime,
      profiles: THROUGHPUT_PROFILES.map((p) => PROFILES[p]!),
      signingMsPerPacket: signing,
      throughput: rows,
      quietSpeedup,
      provenUpdate: proven,
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
      bold(
        `throughput (${sizeKiB} KiB, 2048-bit key, 1 % loss, ${delayMs} ms each way), KiB/s, median (range) of ${runs}${
          load ? ", machine loaded" : ""
        }`,
      ),
    );
    printThroughput(rows);
    print(
      `  deploy to a board with a --quiet-log bootloader: ${
        Object.entries(quietSpeedup).map(([mtu, x]) => `${x.toFixed(2)}× at ${mtu}`).join(", ")
      } the standard one's rate`,
    );
    for (const p of proven) {
      print(
        `${
          p === proven[0]
            ? `\n${bold("time to a proven update (600 KiB, deploy --trigger)")}\n`
            : ""
        }` +
          `  ${p.profile.padEnd(14)} ${p.totalSeconds.toFixed(1)} s: transfer ${
            p.transferSeconds.toFixed(1)
          } s, the device's reboots ${p.rebootSeconds.toFixed(1)} s, the rest ${
            p.restSeconds.toFixed(1)
          } s`,
      );
    }
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
