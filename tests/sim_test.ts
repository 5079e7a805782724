/**
 * `deno task sim` as a user runs it, with `deno task deploy` against it: two processes
 * talking over 127.0.0.1, as with a real board.
 */
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "./_helpers.ts";
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
