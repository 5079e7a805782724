/**
 * `deno task sim` as a user runs it, with `deno task deploy` against it: two processes
 * talking over 127.0.0.1, as with a real board.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { ROOT, runTaskFile, tempDir, VECTORS } from "./_helpers.ts";
import { startSimProcess } from "../lib/sim_process.ts";
import { makeSampleFirmware } from "../lib/sample_firmware.ts";
import { equalBytes } from "../lib/_bytes.ts";

const KEY = `${VECTORS}test-key-512.pem`;
const APP = 0x3c000;

Deno.test("sim --once --json: deploy updates its flash file, it reports the reboot and exits", async () => {
  await using dir = await tempDir();
  const image = makeSampleFirmware({ size: 48 * 1024, seed: 21 });
  await Deno.writeFile(`${dir.path}/fw.bin`, image);
  const flashFile = `${dir.path}/flash.bin`;
  await using sim = await startSimProcess([
    "--key",
    KEY,
    "--flash",
    flashFile,
    "--once",
    "--delay-ms",
    "1",
  ]);
  const r = await runTaskFile("deploy", [
    "--ip",
    "127.0.0.1",
    "--port",
    String(sim.port),
    "--key",
    KEY,
    "--boot-check-window",
    "1",
    `${dir.path}/fw.bin`,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const reboot = await sim.waitFor((e) => e.event === "reboot");
  assertEquals(reboot.boot, "ok");
  assertEquals(reboot.bootloaderOverwritten, false);
  await sim.waitFor((e) => e.event === "exit");
  const flash = await Deno.readFile(flashFile);
  assertEquals(flash.length, 0x100000);
  assert(equalBytes(flash.subarray(APP, APP + image.length), image));
});

Deno.test("sim --lose-reply 0:1024: the probe was accepted but its reply lost, the deploy still completes", async () => {
  await using dir = await tempDir();
  const image = makeSampleFirmware({ size: 48 * 1024, seed: 22 });
  await Deno.writeFile(`${dir.path}/fw.bin`, image);
  await using sim = await startSimProcess([
    "--key",
    KEY,
    "--lose-reply",
    "0:1024",
    "--delay-ms",
    "1",
  ]);
  const r = await runTaskFile("deploy", [
    "--ip",
    "127.0.0.1",
    "--port",
    String(sim.port),
    "--key",
    KEY,
    "--boot-check-window",
    "1",
    "--json",
    `${dir.path}/fw.bin`,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).block, 1024);
  assertEquals((await sim.waitFor((e) => e.event === "reboot")).boot, "ok");
});

Deno.test("sim --boot --webrepl-password: deploy --trigger takes the running app to the new version", async () => {
  await using dir = await tempDir();
  const flashFile = `${dir.path}/flash.bin`;
  const flash = new Uint8Array(0x100000).fill(0xff);
  flash.set(makeSampleFirmware({ size: 48 * 1024, version: "v1.19.1-old" }), APP);
  await Deno.writeFile(flashFile, flash);
  const image = makeSampleFirmware({ size: 48 * 1024, version: "v1.20.0-new", seed: 23 });
  await Deno.writeFile(`${dir.path}/fw.bin`, image);
  await using sim = await startSimProcess([
    "--key",
    KEY,
    "--flash",
    flashFile,
    "--boot",
    "--webrepl-password",
    "s3cr3t",
  ]);
  const r = await runTaskFile(
    "deploy",
    [
      "--ip",
      "127.0.0.1",
      "--port",
      String(sim.port),
      "--key",
      KEY,
      "--trigger",
      "--json",
      `${dir.path}/fw.bin`,
    ],
    { env: { WEBREPL_PASSWORD: "s3cr3t" } },
  );
  assertEquals(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout);
  assertStringIncludes(json.versionBefore, "v1.19.1-old");
  assertStringIncludes(json.versionAfter, "v1.20.0-new");
  assert(!r.stdout.includes("s3cr3t") && !r.stderr.includes("s3cr3t"), "the password was printed");
});

Deno.test("sim refuses bad arguments with exit code 2", async () => {
  const r = await runTaskFile("sim", ["--key", KEY, "--loss", "2"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "--loss expects a probability from 0 to 1, got '2'");
  const r2 = await runTaskFile("sim", ["--key", KEY, "--outage-after", "1000"]);
  assertEquals(r2.code, 2);
  assertStringIncludes(r2.stderr, "--outage-after and --outage-ms go together");
});

/** `deno task deploy ARGS`, killed if it runs longer than `limitMs` (a bounded wait, not a timing check). */
async function deployBounded(args: string[], env: Record<string, string>, limitMs = 30000) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tasks/deploy.ts`, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(limitMs),
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    signal: out.signal,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}

Deno.test("deploy --trigger against sim --no-rtc-trigger fails as soon as the app is back, naming the bootloader", async () => {
  await using dir = await tempDir();
  const flashFile = `${dir.path}/flash.bin`;
  const flash = new Uint8Array(0x100000).fill(0xff);
  const old = makeSampleFirmware({ size: 48 * 1024, version: "v1.19.1-old" });
  flash.set(old, APP);
  await Deno.writeFile(flashFile, flash);
  await Deno.writeFile(
    `${dir.path}/fw.bin`,
    makeSampleFirmware({ size: 48 * 1024, version: "v1.20.0-new", seed: 23 }),
  );
  await using sim = await startSimProcess([
    "--key",
    KEY,
    "--flash",
    flashFile,
    "--boot",
    "--no-rtc-trigger",
    "--webrepl-password",
    "s3cr3t",
  ]);
  const port = String(sim.port);
  const r = await deployBounded(
    ["--ip", "127.0.0.1", "--port", port, "--key", KEY, "--trigger", `${dir.path}/fw.bin`],
    { WEBREPL_PASSWORD: "s3cr3t" },
  );
  assertEquals(r.signal, null, "deploy was still waiting after 30 s");
  assertEquals(r.code, 1, r.stderr);
  assertMatch(
    r.stderr,
    new RegExp(
      `\\nerror: 127\\.0\\.0\\.1:${port} came back in its app \\d+\\.\\d s after ota\\.start\\(\\) ` +
        "instead of entering the OTA server: its bootloader most likely has no RTC check",
    ),
  );
  assertStringIncludes(r.stderr, "press its BOOT button within 3 s of a reset");
  assertStringIncludes(r.stderr, "a bootloader built by 'deno task build-bootloader'");
  assertEquals(r.stdout, "");
  // It rebooted into its app and nothing was written.
  const appBoots = () => sim.events.filter((e) => e.event === "reboot" && e.mode === "app");
  await sim.waitFor(() => appBoots().length >= 2, 5000);
  assertEquals(sim.events.filter((e) => e.event === "flash-write"), []);
  const boots = sim.events.filter((e) => e.event === "reboot").map((e) => `${e.boot}:${e.mode}`);
  assertEquals(boots.at(-1), "ok:app");
  assert(!boots.includes("ota-requested:ota"), boots.join());
  assert(equalBytes((await Deno.readFile(flashFile)).subarray(APP, APP + old.length), old));
  assert(!r.stderr.includes("s3cr3t"), "the password was printed");
});

Deno.test("deploy --force of a standard build ends by saying the board will boot-loop, not that it runs", async () => {
  await using dir = await tempDir();
  // Linked for 0x40209000: boot8266's MD5 check passes, the code cannot run at 0x3c000.
  const standard = makeSampleFirmware({ size: 48 * 1024, linkBase: 0x40209000, seed: 29 });
  await Deno.writeFile(`${dir.path}/std.bin`, standard);
  await using sim = await startSimProcess(["--key", KEY]);
  const r = await deployBounded(
    [
      "--ip",
      "127.0.0.1",
      "--port",
      String(sim.port),
      "--key",
      KEY,
      "--force",
      "--boot-check-window",
      "2",
      `${dir.path}/std.bin`,
    ],
    {},
  );
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stderr, "warning: --force: sending an image that failed inspection");
  assertStringIncludes(
    r.stdout,
    "the board will boot-loop: boot8266 accepts this image (its MD5 trailer is right) but its code " +
      "cannot run there (irom linked at 0x40209000",
  );
  assertStringIncludes(
    r.stdout,
    "press its BOOT button within 3 s of a reset, then send an OTA build ('deno task build-ota') " +
      "with 'deno task deploy --ip 127.0.0.1'.\n",
  );
  assertEquals(r.stdout.includes("it runs the new image"), false, r.stdout);
});
