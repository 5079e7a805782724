/**
 * One row of the benchmark's throughput table, run `runs` times: the original client's
 * way and `deploy`'s defaults, each against a fresh virtual device in its own process
 * (`deno task sim`) with a flash file, so that every run also checks what the device
 * saw: packets handled inside another's signature check (docs/device.md, "Re-entrancy"),
 * datagrams dropped on a full receive queue, and the flash byte for byte.
 */
import { sendLikeOriginal } from "./baseline_sender.ts";
import { deploy } from "../deploy/board_push.ts";
import { deviceBoundRate, PROFILES } from "../sim/device_profile.ts";
import { DEFAULT_APP_OFFSET } from "../format/image.ts";
import type { SigningKey } from "../format/keys.ts";
import { nativeSigner } from "../format/signer.ts";
import { startSimProcess } from "../sim/sim_process.ts";
import { equalBytes } from "../_bytes.ts";
import { round } from "../_units.ts";

export const THROUGHPUT_PROFILES = ["esp8266", "esp8266-quiet"] as const;
export type ThroughputProfile = typeof THROUGHPUT_PROFILES[number];
export const LINKS = [["MTU 1500", 1472], ["MTU 548", 548]] as const;

/** Median and range of a list of figures. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median: round(median), min: round(s[0]!), max: round(s[s.length - 1]!) };
}

/** `deploy`'s defaults as every bench case uses them (a 1 MiB flash, the usual app offset). */
export const BENCH_DEPLOY = {
  block: "auto",
  pace: true,
  timeoutMs: 15000,
  force: false,
  appOffset: DEFAULT_APP_OFFSET,
  flashSize: 0x100000,
} as const;

/** What the device saw in one run. */
export interface DeviceSafety {
  /** Datagrams handled inside another packet's signature check (both lost). */
  nested: number;
  /** Datagrams dropped because the receive queue was full. */
  queueFull: number;
  /** The app region holds the image, byte for byte, and nothing was written below it. */
  flashExact: boolean;
}

export interface ThroughputRow {
  profile: ThroughputProfile;
  mtu: string;
  block: number;
  ceilingKBps: number;
  originalKBps: Spread;
  deployKBps: Spread;
  /** deploy / device-bound rate. */
  ofCeiling: Spread;
  originalRetransmits: number[];
  deployRetransmits: number[];
  /** Per deploy run. */
  safety: DeviceSafety[];
  /** The highest nice value a device of this row ran at (DEVICE_NICE if it could be set). */
  deviceNice: number;
  /** Every device of this row ran in the real-time class (`sim --realtime`). */
  deviceRealtime: boolean;
}

export interface ThroughputSetup {
  image: Uint8Array;
  imagePath: string;
  key: SigningKey;
  keyPath: string;
  delayMs: number;
  runs: number;
  /** A directory for the devices' flash files. */
  dir: string;
  onProgress?: (message: string) => void;
}

/**
 * The virtual device's nice value: above whatever else runs here (`bench --load`), as a
 * board is not slowed by the computer (`sim/process_priority.ts`). It asks for the
 * real-time class as well, and keeps this where that is refused.
 */
export const DEVICE_NICE = -10;

/**
 * The virtual device for one run. Each run has its own loss pattern (the seed), the same
 * for both clients: a lost packet that fills a sector costs the device its write time, and
 * one pattern for every run would weigh the spread by where its losses happened to fall.
 */
async function device(
  setup: ThroughputSetup,
  profile: string,
  mtu: number,
  flash: string,
  run: number,
) {
  return await startSimProcess([
    "--key",
    setup.keyPath,
    "--profile",
    profile,
    "--loss",
    "0.01",
    "--delay-ms",
    String(setup.delayMs),
    "--mtu",
    String(mtu),
    "--seed",
    String(10 + run),
    "--flash",
    flash,
    `--priority=${DEVICE_NICE}`,
    "--realtime",
  ]);
}

function safetyOf(events: Record<string, unknown>[], flash: Uint8Array, image: Uint8Array) {
  const packets = events.filter((e) => e.event === "packet");
  return {
    nested: packets.filter((e) => e.nested === true || e.outcome === "lost-in-nested-check")
      .length,
    queueFull: packets.filter((e) => e.outcome === "queue-full").length,
    flashExact:
      equalBytes(flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + image.length), image) &&
      !events.some((e) => e.bootloaderOverwritten === true || e.belowApp === true),
  };
}

/** One profile and link, `setup.runs` times each way. */
export async function throughputRow(
  setup: ThroughputSetup,
  profile: ThroughputProfile,
  label: string,
  mtu: number,
): Promise<ThroughputRow> {
  const kb = setup.image.length / 1024;
  const original: { kbps: number; retransmits: number }[] = [];
  const ours: { kbps: number; retransmits: number; block: number }[] = [];
  const safety: DeviceSafety[] = [];
  const nice: number[] = [];
  let realtime = true;
  /** The run's device, its priority noted. */
  const start = async (flash: string, run: number) => {
    const sim = await device(setup, profile, mtu, flash, run);
    nice.push(sim.nice ?? 0);
    realtime &&= sim.realtime === true;
    return sim;
  };
  for (let run = 1; run <= setup.runs; run++) {
    setup.onProgress?.(`${profile}, ${label}, run ${run}/${setup.runs}: the original client…`);
    {
      const flash = `${setup.dir}/original-${profile}-${mtu}-${run}.flash`;
      await using sim = await start(flash, run);
      const r = await sendLikeOriginal("127.0.0.1", sim.port, setup.image, nativeSigner(setup.key));
      await sim.waitFor((e) => e.event === "reboot", 10000);
      original.push({ kbps: kb / r.seconds, retransmits: r.retransmits });
    }
    setup.onProgress?.(`${profile}, ${label}, run ${run}/${setup.runs}: deploy…`);
    const flashPath = `${setup.dir}/deploy-${profile}-${mtu}-${run}.flash`;
    let events: Record<string, unknown>[];
    {
      await using sim = await start(flashPath, run);
      const r = await deploy({
        host: "127.0.0.1",
        port: sim.port,
        file: setup.imagePath,
        keyPath: setup.keyPath,
        ...BENCH_DEPLOY,
        bootCheck: false,
      });
      // The end packet's flush is written before the device reboots.
      await sim.waitFor((e) => e.event === "reboot", 10000);
      events = sim.events;
      ours.push({ kbps: r.kbps, retransmits: r.retransmits, block: r.block });
    }
    safety.push(safetyOf(events, await Deno.readFile(flashPath), setup.image));
  }
  const block = ours[0]!.block;
  const ceilingKBps = deviceBoundRate(PROFILES[profile]!, setup.key.modulus.length, block) / 1024;
  return {
    profile,
    mtu: label,
    block,
    ceilingKBps: round(ceilingKBps),
    originalKBps: spread(original.map((r) => r.kbps)),
    deployKBps: spread(ours.map((r) => r.kbps)),
    ofCeiling: spread(ours.map((r) => r.kbps / ceilingKBps)),
    originalRetransmits: original.map((r) => r.retransmits),
    deployRetransmits: ours.map((r) => r.retransmits),
    safety,
    deviceNice: Math.max(...nice),
    deviceRealtime: realtime,
  };
}
