/**
 * `deno task demo`: the main job on a virtual device, with no hardware and nothing left
 * behind: a throwaway key, a virtual yaota8266 (ESP8266 costs), a sample OTA image in
 * the real makeimg format, a deploy with the progress bar, and the outcome.
 * `deno task demo --dashboard`: a few virtual boards and the dashboard over them.
 * `deno task demo --keep DIR`: a sample project to go on with (README, "Try it without
 * Docker or a board").
 */
import {
  boolOpt,
  type CommandSpec,
  portOpt,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import type { DeviceProfile } from "../lib/sim/device_profile.ts";
import { startDemoFleet } from "../lib/sim/demo_fleet.ts";
import { createFleetPort } from "../lib/dashboard/fleet_port.ts";
import { reportPath } from "../lib/dashboard/report_store.ts";
import { DEFAULT_DASHBOARD_PORT, serveDashboard } from "../lib/dashboard/serve.ts";
import { serveUntilStopped, startLines } from "./dashboard.ts";
import { deploy } from "../lib/deploy/board_push.ts";
import { PROFILES } from "../lib/sim/device_profile.ts";
import { UsageError } from "../lib/errors.ts";
import { DEFAULT_APP_OFFSET, findVersion } from "../lib/format/image.ts";
import { generateKey } from "../lib/format/keys.ts";
import { bold, formatBytes, green, log, print, red, warn } from "../lib/cli/output.ts";
import { ProgressDisplay } from "../lib/cli/progress.ts";
import { makeSampleFirmware } from "../lib/sim/sample_firmware.ts";
import { startVirtualDevice } from "../lib/sim/virtual_device.ts";
import { equalBytes } from "../lib/_bytes.ts";
import { describeBuild } from "../lib/build/build_id.ts";
import { SAMPLE_PASSWORD_ENV, writeSampleProject } from "../lib/sim/sample_project.ts";
import { type Invocation, suggest } from "../lib/cli/hint.ts";

export const spec: CommandSpec = {
  name: "demo",
  renamed: { port: "http-port" },
  summary:
    "Deploy a sample firmware to a virtual yaota8266 device: no hardware, nothing left behind.",
  options: {
    profile: {
      type: "string",
      arg: "NAME",
      help: "device costs: esp8266 (default), esp8266-quiet or instant",
    },
    bits: { type: "string", arg: "N", help: "throwaway key size (default 2048)" },
    dashboard: {
      type: "boolean",
      help: "start 3 virtual boards (and name a 4th that is offline) and the dashboard over them",
    },
    keep: {
      type: "string",
      arg: "DIR",
      help: "write a sample project into DIR (new or empty) to go on with: keys, a build with " +
        "two kept releases, two virtual boards' flash and their ota.config.json",
    },
    "http-port": {
      type: "string",
      arg: "PORT",
      help:
        `with --dashboard: its HTTP port, 0 picks a free one (default ${DEFAULT_DASHBOARD_PORT})`,
    },
  },
  notes: [
    "Makes a throwaway RSA key (exponent 3) in a temp dir, starts a virtual device built for it on " +
    "127.0.0.1, builds a sample OTA image in the real makeimg format (with a valid MD5 trailer), " +
    "deploys it, and prints the outcome. Everything is removed at the end.",
    "--dashboard: virtual boards with WebREPL whose firmware names its build (ota.BUILD): two " +
    "run an older build, one the current build; a build folder with the current build and two " +
    "kept releases, and the dashboard on 127.0.0.1; open the address it prints and roll the " +
    "build out from the page. Ctrl-C stops it and removes everything.",
  ],
};

export async function main({ args, invocation }: TaskContext): Promise<number | void> {
  const { values } = args;
  const keep = stringOpt(values, "keep");
  if (keep !== undefined) {
    if (boolOpt(values, "dashboard")) throw new UsageError("--keep and --dashboard: give one");
    return await keepSample(keep, invocation);
  }
  const profile = PROFILES[stringOpt(values, "profile") ?? "esp8266"];
  if (!profile) throw new UsageError(`--profile expects esp8266, esp8266-quiet or instant`);
  const bits = Number(stringOpt(values, "bits") ?? 2048);
  if (![512, 1024, 2048].includes(bits)) throw new UsageError("--bits expects 512, 1024 or 2048");
  const port = portOpt(values, "http-port", { allowZero: true });
  if (boolOpt(values, "dashboard")) return await dashboardDemo(profile, bits, port);
  if (port !== undefined) throw new UsageError("--http-port goes with --dashboard");
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
        result.kibps.toFixed(1)
      } KiB/s ` +
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

/** Virtual boards and the dashboard over them, until Ctrl-C; then nothing is left behind. */
async function dashboardDemo(
  profile: DeviceProfile,
  bits: number,
  listenPort = DEFAULT_DASHBOARD_PORT,
): Promise<number> {
  log(bold(`starting virtual boards (${profile.name} costs) and a build folder with releases`));
  await using fleet = await startDemoFleet({
    profile,
    bits,
    onBoardError: (problem) => warn(`virtual board ${problem}`),
  });
  const port = createFleetPort({
    config: fleet.config,
    keyPath: fleet.keyPath,
    env: fleet.env,
    retryDelayMs: 1000,
    triggerSettings: { otaWaitMs: 10000, comeBackMs: 20000 },
    onLog: (line) => log(line),
  });
  for (const d of fleet.config.devices ?? []) {
    const build = fleet.runs.get(d.name);
    log(
      `   ${d.name.padEnd(8)} ${d.ip}:${d.port}  ${(d.tags ?? []).join(", ").padEnd(13)} ${
        build ? `runs build ${describeBuild(build)}` : "offline (nothing listens there)"
      }`,
    );
  }
  log(
    `   current build: ${
      describeBuild(fleet.builds.current)
    }; kept releases in ${fleet.config.out}`,
  );
  await using running = await serveDashboard({
    port,
    listenPort,
    refreshMs: 10000,
    reportPath: reportPath(fleet.config.out!),
    onWarning: (m) => warn(m),
  });
  for (const line of startLines(running, fleet.config.devices?.length ?? 0)) print(line);
  log(
    "Open the address above in a browser (it carries this run's token), then 'Deploy to whole " +
      "fleet…' (canary 1, retries 1).",
  );
  await serveUntilStopped(running);
  return 0;
}

if (import.meta.main) runTask(spec, main);

/** `--keep DIR`: the sample project, and the commands that go on from it. */
async function keepSample(dir: string, invocation: Invocation): Promise<number> {
  const sample = await writeSampleProject(dir);
  const config = `${dir.replace(/\/+$/, "")}/ota.config.json`;
  const run = (task: string, more: string) =>
    suggest(invocation, task, `--config ${config} ${more}`);
  print(
    `wrote ${dir}: keys/ (a new key pair), dist/ (build ${
      describeBuild(sample.builds.current)
    } and two kept releases), boards/ (two virtual boards' flash, running build ${
      describeBuild(sample.builds.old)
    }) and ota.config.json`,
  );
  print("Go on with (README: 'Try it without Docker or a board'):");
  print(`  export ${SAMPLE_PASSWORD_ENV}=sample-pw`);
  for (const b of sample.boards) {
    print(
      `  ${
        run(
          "sim",
          `--device ${b.name} --flash ${dir.replace(/\/+$/, "")}/boards/${b.name}.flash --boot`,
        )
      } &`,
    );
  }
  print(`  ${run("status", "--fleet")}`);
  print(`  ${run("deploy", "--fleet --trigger --canary 1")}`);
  return 0;
}
