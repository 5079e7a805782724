/**
 * Time to a proven update: `deploy --trigger` from its start to the board reporting the
 * new build over WebREPL, against a virtual board running its app (a device profile,
 * 1 % loss, `delayMs` each way). Split into what the transfer took, what the device's
 * own reboots took (its profile's `rebootMs`, twice: into OTA mode and into the new
 * image), and the rest (logins, waits, checks): the part the tool can cut.
 */
import { deployWithTrigger, type TriggeredPhase } from "../deploy/board_trigger.ts";
import { DEFAULT_APP_OFFSET } from "../format/image.ts";
import type { SigningKey } from "../format/keys.ts";
import { PROFILES } from "../sim/device_profile.ts";
import { DEFAULT_BOOT_PY } from "../sim/device_shims.ts";
import { makeSampleFirmware } from "../sim/sample_firmware.ts";
import { startVirtualDevice } from "../sim/virtual_device.ts";
import { BENCH_DEPLOY } from "./throughput.ts";
import { round } from "../_units.ts";

const PASSWORD = "bench-pw";
const FLASH_SIZE = 0x100000;
/** boot.py after `webrepl_setup` enabled the daemon. */
const BOOT_PY = DEFAULT_BOOT_PY.replace(
  "#import webrepl\n#webrepl.start()",
  "import webrepl\nwebrepl.start()",
);

export interface ProvenUpdate {
  profile: string;
  imageKiB: number;
  /** From the start to the board naming the new build. */
  totalSeconds: number;
  /** The OTA server's first answer to the last end packet. */
  transferSeconds: number;
  /** The device's reboots (its profile's reboot time, twice). */
  rebootSeconds: number;
  /** Everything else: total − transfer − reboots. */
  restSeconds: number;
  /** Each part of the round trip, as `deployWithTrigger` reports them. */
  phases: Partial<Record<TriggeredPhase, number>>;
  /** Seconds from the start to each landmark. */
  marks: {
    triggerEnded: number;
    /** The device booted into OTA mode (after the trigger's reset and its reboot). */
    otaBooted: number;
    otaAnswered: number;
    lastEnd: number;
    /** The device booted the new image (after the end packet and its reboot). */
    appBooted: number;
    pushEnded: number;
  };
  versionAfter: string;
}

export async function provenUpdate(options: {
  profile: "esp8266" | "esp8266-quiet";
  key: SigningKey;
  keyPath: string;
  dir: string;
  sizeKiB: number;
  delayMs: number;
}): Promise<ProvenUpdate> {
  const profile = PROFILES[options.profile]!;
  const flash = new Uint8Array(FLASH_SIZE).fill(0xff);
  flash.set(makeSampleFirmware({ version: "v1.19.1-old", size: 96 * 1024 }), DEFAULT_APP_OFFSET);
  const image = makeSampleFirmware({
    version: "v1.20.0-new",
    seed: 2,
    size: options.sizeKiB * 1024,
  });
  const file = `${options.dir}/proven-${options.profile}.bin`;
  await Deno.writeFile(file, image);
  let otaBootAt: number | undefined;
  let appBootAt = 0;
  await using device = await startVirtualDevice({
    host: "127.0.0.1",
    port: 0,
    modulus: options.key.modulus,
    flash,
    start: "boot",
    profile,
    link: { delayMs: options.delayMs, loss: 0.01, seed: 3 },
    webrepl: { password: PASSWORD, files: new Map([["boot.py", BOOT_PY]]) },
    onEvent: (e) => {
      if (e.type === "boot" && e.mode === "ota") otaBootAt ??= performance.now();
      if (e.type === "boot" && e.mode === "app") appBootAt = performance.now();
    },
  });
  const started = performance.now();
  const phases: Partial<Record<TriggeredPhase, number>> = {};
  const phaseStart: Partial<Record<TriggeredPhase, number>> = {};
  let answeredAt = started;
  const result = await deployWithTrigger(
    {
      host: "127.0.0.1",
      port: device.port,
      file,
      keyPath: options.keyPath,
      ...BENCH_DEPLOY,
      bootCheck: true,
      password: PASSWORD,
    },
    undefined,
    {
      onPhase: (phase, state) => {
        if (state === "started") phaseStart[phase] = performance.now();
        else phases[phase] = round((performance.now() - phaseStart[phase]!) / 1000);
      },
      onStep: (line) => {
        if (line === "OTA server answered") answeredAt = performance.now();
      },
    },
  );
  const totalSeconds = (performance.now() - started) / 1000;
  const rebootSeconds = (2 * profile.rebootMs) / 1000;
  // The engine starts as the push does; its transfer time runs to the last end packet.
  const lastEndAt = phaseStart.push! + result.seconds * 1000;
  const transferSeconds = (lastEndAt - answeredAt) / 1000;
  const since = (t: number) => round((t - started) / 1000);
  return {
    profile: options.profile,
    imageKiB: options.sizeKiB,
    totalSeconds: round(totalSeconds),
    transferSeconds: round(transferSeconds),
    rebootSeconds: round(rebootSeconds),
    restSeconds: round(totalSeconds - transferSeconds - rebootSeconds),
    phases,
    marks: {
      triggerEnded: since(phaseStart.trigger! + phases.trigger! * 1000),
      otaBooted: since(otaBootAt ?? started),
      otaAnswered: since(answeredAt),
      appBooted: since(appBootAt),
      lastEnd: since(lastEndAt),
      pushEnded: since(phaseStart.push! + phases.push! * 1000),
    },
    versionAfter: result.versionAfter,
  };
}
