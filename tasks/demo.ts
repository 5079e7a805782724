/**
 * `deno task demo`: the main job on a virtual device, with no hardware and nothing left
 * behind: a throwaway key, a virtual yaota8266 (ESP8266 costs), a sample OTA image in
 * the real makeimg format, a deploy with the progress bar, and the outcome.
 */
import { type CommandSpec, runTask, stringOpt, type TaskContext } from "../lib/cli/cli.ts";
import { deploy } from "../lib/deploy/deploy.ts";
import { PROFILES } from "../lib/sim/device_profile.ts";
import { UsageError } from "../lib/errors.ts";
import { DEFAULT_APP_OFFSET, findVersion } from "../lib/format/image.ts";
import { generateKey } from "../lib/format/keys.ts";
import { bold, formatBytes, green, log, print, red } from "../lib/cli/output.ts";
import { ProgressDisplay } from "../lib/cli/progress.ts";
import { makeSampleFirmware } from "../lib/sim/sample_firmware.ts";
import { startVirtualDevice } from "../lib/sim/virtual_device.ts";
import { equalBytes } from "../lib/_bytes.ts";

export const spec: CommandSpec = {
  name: "demo",
  summary:
    "Deploy a sample firmware to a virtual yaota8266 device: no hardware, nothing left behind.",
  options: {
    profile: {
      type: "string",
      arg: "NAME",
      help: "device costs: esp8266 (default), esp8266-quiet or instant",
    },
    bits: { type: "string", arg: "N", help: "throwaway key size (default 2048)" },
  },
  notes: [
    "Makes a throwaway RSA key (exponent 3) in a temp dir, starts a virtual device built for it on " +
    "127.0.0.1, builds a sample OTA image in the real makeimg format (with a valid MD5 trailer), " +
    "deploys it, and prints the outcome. Everything is removed at the end.",
  ],
};

export async function main({ args }: TaskContext): Promise<number | void> {
  const { values } = args;
  const profile = PROFILES[stringOpt(values, "profile") ?? "esp8266"];
  if (!profile) throw new UsageError(`--profile expects esp8266, esp8266-quiet or instant`);
  const bits = Number(stringOpt(values, "bits") ?? 2048);
  if (![512, 1024, 2048].includes(bits)) throw new UsageError("--bits expects 512, 1024 or 2048");
  const dir = await Deno.makeTempDir({ prefix: "yaota-demo-" });
  try {
    log(bold("1. a throwaway signing key"));
    const key = generateKey(bits);
    const keyPath = `${dir}/priv.key`;
    await Deno.writeTextFile(keyPath, key.privatePem, { mode: 0o600 });
    log(`   RSA-${bits}, exponent 3, fingerprint ${key.info.fingerprint}`);

    log(bold("2. a virtual yaota8266 device built for that key"));
    const flash = new Uint8Array(0x100000).fill(0xff);
    await using device = await startVirtualDevice({
      modulus: key.info.modulus,
      flash,
      profile,
      link: { delayMs: 3, seed: 7 },
    });
    log(
      `   listening on 127.0.0.1:${device.port} (UDP), in OTA mode, ${profile.name} costs, 3 ms each way`,
    );

    log(bold("3. a sample OTA image (makeimg layout, MD5 trailer, irom linked at 0x40245000)"));
    const image = makeSampleFirmware({
      size: 160 * 1024,
      version: "v1.19.1-demo",
      date: "2026-11-25",
    });
    const file = `${dir}/firmware-ota.bin`;
    await Deno.writeFile(file, image);
    log(`   ${formatBytes(image.length)}, ${findVersion(image)}`);

    log(bold("4. deploy"));
    const progress = new ProgressDisplay(`127.0.0.1:${device.port}`, image.length);
    let result;
    try {
      result = await deploy({
        host: "127.0.0.1",
        port: device.port,
        file,
        keyPath,
        block: "auto",
        pace: true,
        timeoutMs: 15000,
        force: false,
        bootCheck: true,
        bootCheckMs: 3000,
        appOffset: DEFAULT_APP_OFFSET,
        flashSize: flash.length,
        onProgress: (p) => progress.update(p),
        onStatus: (m) => progress.note(m),
      });
    } finally {
      progress.finish();
    }
    const boot = device.events.findLast((e) => e.type === "boot");
    const written = equalBytes(
      flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + image.length),
      image,
    );
    const boots = boot?.type === "boot" && boot.mode === "app" && written;
    print(
      `${formatBytes(result.bytes)} in ${result.seconds.toFixed(1)} s, ${
        result.kbps.toFixed(1)
      } KB/s ` +
        `(block ${result.block}, ${result.retransmits} retransmissions)`,
    );
    print(`flash at 0x3c000 equals the image: ${written ? "yes" : "no"}`);
    print(`device would boot: ${boots ? green("yes") : red("no")}`);
    if (device.model.bootloaderOverwritten) print(red("the OTA server's sector was overwritten"));
    return boots && !device.model.bootloaderOverwritten ? 0 : 1;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) runTask(spec, main);
