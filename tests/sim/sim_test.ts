/**
 * `deno task sim` as a user runs it, with `deno task deploy` against it: two processes
 * talking over 127.0.0.1, as with a real board.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { ROOT, runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import { startSimProcess } from "../../lib/sim/sim_process.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { equalBytes } from "../../lib/_bytes.ts";
import { markPath } from "../../lib/sim/flash_dump.ts";
import dgram from "node:dgram";

const KEY = `${VECTORS}test-key-512.pem`;
const APP = 0x3c000;

/** deploy's arguments for the sim on `port` with the test key, then `rest` (flags, FILE). */
function toSim(port: number, ...rest: string[]): string[] {
  return ["--ip", "127.0.0.1", "--device-port", String(port), "--key", KEY, ...rest];
}

/**
 * Starts `sim` with a flash file and `simArgs`, deploys a 48 KiB image to it (exit 0), and
 * waits for the reboot (and, with `until`, for that event too); returns the image, the
 * reboot event and the flash file as the device left it.
 */
async function deployThroughSim(
  simArgs: string[],
  seed: number,
  until?: string,
): Promise<{ image: Uint8Array; reboot: Record<string, unknown>; flash: Uint8Array }> {
  await using dir = await tempDir();
  const image = makeSampleFirmware({ size: 48 * 1024, seed });
  await Deno.writeFile(`${dir.path}/fw.bin`, image);
  const flashFile = `${dir.path}/flash.bin`;
  await using sim = await startSimProcess(["--key", KEY, "--flash", flashFile, ...simArgs]);
  const r = await runTaskFile(
    "deploy",
    toSim(sim.port, "--boot-check-window", "1", `${dir.path}/fw.bin`),
  );
  assertEquals(r.code, 0, r.stderr);
  const reboot = await sim.waitFor((e) => e.event === "reboot");
  if (until) await sim.waitFor((e) => e.event === until);
  return { image, reboot, flash: await Deno.readFile(flashFile) };
}

Deno.test("sim --once --json: deploy updates its flash file, it reports the reboot and exits", async () => {
  const { image, reboot, flash } = await deployThroughSim(
    ["--once", "--delay-ms", "1"],
    21,
    "exit",
  );
  assertEquals(reboot.boot, "ok");
  assertEquals(reboot.bootloaderOverwritten, false);
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
  const r = await runTaskFile(
    "deploy",
    toSim(sim.port, "--boot-check-window", "1", "--json", `${dir.path}/fw.bin`),
  );
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).block, 1024);
  assertEquals((await sim.waitFor((e) => e.event === "reboot")).boot, "ok");
});

Deno.test("sim --jitter-ms: datagrams held up on a jittery link, and the deploy still lands byte for byte", async () => {
  // A mean of 3 ms each way on a 1 ms link: replies a few ms late are not lost datagrams.
  const { image, reboot, flash } = await deployThroughSim(
    ["--delay-ms", "1", "--jitter-ms", "3", "--seed", "5"],
    24,
  );
  assertEquals(reboot.boot, "ok");
  assert(equalBytes(flash.subarray(APP, APP + image.length), image));
  const bad = await runTaskFile("sim", ["--key", KEY, "--jitter-ms", "-1"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "--jitter-ms expects milliseconds, got '-1'");
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
    // A flash image this test wrote, not one sim wrote: --force lets sim use it.
    "--force",
    "--boot",
    "--webrepl-password",
    "s3cr3t",
  ]);
  const r = await runTaskFile(
    "deploy",
    toSim(sim.port, "--trigger", "--json", `${dir.path}/fw.bin`),
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
  const r3 = await runTaskFile("sim", ["--key", KEY, "--listen-port", "70000"]);
  assertEquals(r3.code, 2);
  assertStringIncludes(r3.stderr, "--listen-port expects a port number from 0 to 65535");
  const r4 = await runTaskFile("sim", ["--key", KEY, "--priority=-21"]);
  assertEquals(r4.code, 2);
  assertStringIncludes(r4.stderr, "--priority expects a whole number from -20 to 19, got '-21'");
});

/**
 * A field of each thread's `stat` in Linux's /proc, counted from the state (field 3):
 * 16 is the nice value, 38 the scheduling policy (1: SCHED_FIFO).
 */
function threadStat(pid: number, field: number): number[] {
  return [...Deno.readDirSync(`/proc/${pid}/task`)].map((t) =>
    Number(
      Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`).split(") ")[1]!.split(" ")[field],
    )
  );
}
const threadNices = (pid: number) => threadStat(pid, 16);
const threadPolicies = (pid: number) => threadStat(pid, 38);

/** One datagram to the device on `port`: its threads started on the first packet then run. */
async function startLaterThreads(port: number): Promise<void> {
  const client = dgram.createSocket("udp4");
  client.send(new Uint8Array(16), port, "127.0.0.1");
  await new Promise((r) => setTimeout(r, 200));
  client.close();
}

Deno.test({
  name: "sim --priority: every thread of the device process runs at that nice value, and says so",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // Lowering a priority needs no privilege.
    await using sim = await startSimProcess(["--key", KEY, "--priority", "7"]);
    assertEquals(sim.nice, 7);
    // Its threads started later (the precise timer's, on the first packet) inherit it.
    await startLaterThreads(sim.port);
    const nices = threadNices(sim.pid);
    assert(nices.length > 1, `threads: ${nices}`);
    assertEquals(nices.filter((n) => n !== 7), [], `nice values of its threads: ${nices}`);
  },
});

Deno.test({
  name: "sim --priority below 0 without the privilege: a warning naming it, and the device runs",
  ignore: Deno.build.os !== "linux" || Deno.uid() === 0,
  async fn() {
    await using sim = await startSimProcess(["--key", KEY, "--priority=-10"]);
    assertEquals(sim.nice, 0);
    assertStringIncludes(
      sim.stderr(),
      "--priority -10: not permitted: raising it needs root or CAP_SYS_NICE; the device runs at nice 0",
    );
  },
});

Deno.test({
  name: "sim --realtime: every thread of the device process is in the real-time class, and says so",
  // Entering the class needs root or CAP_SYS_NICE.
  ignore: Deno.build.os !== "linux" || Deno.uid() !== 0,
  async fn() {
    await using sim = await startSimProcess(["--key", KEY, "--realtime"]);
    assertEquals(sim.realtime, true);
    await startLaterThreads(sim.port);
    const policies = threadPolicies(sim.pid);
    assert(policies.length > 1, `threads: ${policies}`);
    assertEquals(policies.filter((p) => p !== 1), [], `policies of its threads: ${policies}`);
  },
});

Deno.test({
  name: "sim --realtime without the privilege: a warning naming it, and the device runs",
  ignore: Deno.build.os !== "linux" || Deno.uid() === 0,
  async fn() {
    await using sim = await startSimProcess(["--key", KEY, "--realtime"]);
    assertEquals(sim.realtime, false);
    assertStringIncludes(
      sim.stderr(),
      "--realtime: not permitted: it needs root or CAP_SYS_NICE; the device stays in the ordinary class",
    );
    assertEquals(threadPolicies(sim.pid).filter((p) => p !== 0), []);
  },
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
    // A flash image this test wrote, not one sim wrote: --force lets sim use it.
    "--force",
    "--boot",
    "--no-rtc-trigger",
    "--webrepl-password",
    "s3cr3t",
  ]);
  const port = String(sim.port);
  const r = await deployBounded(
    toSim(sim.port, "--trigger", `${dir.path}/fw.bin`),
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
  assertStringIncludes(r.stderr, "a bootloader built by 'deno task build-bootloader --key ");
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
    toSim(sim.port, "--force", "--boot-check-window", "2", `${dir.path}/std.bin`),
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
      `with 'deno task deploy --key ${KEY} --device-port ${sim.port} --ip 127.0.0.1'.\n`,
  );
  assertEquals(r.stdout.includes("it runs the new image"), false, r.stdout);
});

// ---- The original ota_client.py against the default profile -------------------------------

/** python3 runs the original client's stand-in; without it these tests say "ignored". */
const PYTHON = (() => {
  try {
    return new Deno.Command("python3", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
const CLIENT = `${ROOT}tests/fixtures/original_client.py`;

/** A 48 KiB image and its canned .ota, made by `deno task sign` (256-byte blocks, as the original). */
async function cannedImage(dir: string, seed: number): Promise<{ image: Uint8Array; ota: string }> {
  const image = makeSampleFirmware({ size: 48 * 1024, seed });
  await Deno.writeFile(`${dir}/fw.bin`, image);
  const ota = `${dir}/fw.ota`;
  const signed = await runTaskFile("sign", [`${dir}/fw.bin`, "--key", KEY, "--out", ota]);
  assertEquals(signed.code, 0, signed.stderr);
  return { image, ota };
}

async function originalClient(
  port: number,
  ota: string,
  mode: "live" | "canned",
): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("python3", {
    args: [CLIENT, "127.0.0.1", String(port), ota, "--mode", mode, "--max-tries", "50"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

for (const mode of ["live", "canned"] as const) {
  const how = mode === "live"
    ? "live-ota: three end packets 0.1 s apart"
    : "ota FILE: each end packet waits out a 0.3 s receive timeout";
  Deno.test({
    name:
      `sim (default profile, --once): the original client completes (${how}); the flash holds the image [needs python3]`,
    ignore: !PYTHON,
    async fn() {
      await using dir = await tempDir();
      const { image, ota } = await cannedImage(dir.path, mode === "live" ? 31 : 32);
      const flashFile = `${dir.path}/flash.bin`;
      await using sim = await startSimProcess(["--key", KEY, "--flash", flashFile, "--once"]);
      const client = await originalClient(sim.port, ota, mode);
      assertEquals(client.code, 0, client.out);
      assertStringIncludes(client.out, "Done, rexmits:");
      // --once lingers through the reboot: it exits after the boot, not at the end packet.
      assertEquals((await sim.status).code, 0, sim.stderr());
      const reboot = sim.events.find((e) => e.event === "reboot");
      assertEquals(reboot?.boot, "ok");
      const packets = sim.events.filter((e) => e.event === "packet");
      const ends = packets.filter((e) => e.outcome === "end");
      assertEquals(ends.length, 1, "the first end packet reboots the device");
      // The other two arrive while it reboots: dropped without a word, not refused.
      const silent = packets.filter((e) => e.outcome === "rebooting");
      assertEquals(silent.length, 2, JSON.stringify(packets.slice(-4)));
      assertEquals(silent.map((e) => e.len), [0, 0]);
      const flash = await Deno.readFile(flashFile);
      assert(equalBytes(flash.subarray(APP, APP + image.length), image));
    },
  });
}

Deno.test({
  name:
    "sim --reboot-ms 20: the original client's connected socket sees the refusal (the check above can fail) [needs python3]",
  ignore: !PYTHON,
  async fn() {
    await using dir = await tempDir();
    const { ota } = await cannedImage(dir.path, 33);
    // Without --once: the device stays up, boots its app after 20 ms and closes its UDP port.
    await using sim = await startSimProcess(["--key", KEY, "--reboot-ms", "20"]);
    const client = await originalClient(sim.port, ota, "live");
    assertEquals(client.code, 2, client.out);
    assertStringIncludes(client.out, "ConnectionRefusedError");
  },
});

// ---- System faults: busy ports, --flash paths ----------------------------------------------

/** A UDP port this test holds. */
async function holdUdpPort(): Promise<{ port: number } & AsyncDisposable> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", () => resolve()));
  return {
    port: s.address().port,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => s.close(() => resolve())),
  };
}

function assertOneClearLine(stderr: string): void {
  assert(!stderr.includes("unexpected error"), stderr);
  assert(!/^\s+at /m.test(stderr), `a stack trace: ${stderr}`);
  assertEquals(stderr.trim().split("\n").length, 1, stderr);
}

Deno.test("sim on a UDP port in use: one line naming the port and --listen-port, exit 1", async () => {
  await using held = await holdUdpPort();
  const r = await runTaskFile("sim", ["--key", KEY, "--listen-port", String(held.port)]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(
    r.stderr,
    `UDP port ${held.port} on 127.0.0.1 (the OTA server) is already in use`,
  );
  assertStringIncludes(
    r.stderr,
    "choose another with --listen-port PORT (--listen-port 0 picks a free one)",
  );
  assertOneClearLine(r.stderr);
});

Deno.test("sim with WebREPL on a TCP port in use: one line naming the TCP port and --listen-port, exit 1", async () => {
  using held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (held.addr as Deno.NetAddr).port;
  const r = await runTaskFile("sim", [
    "--key",
    KEY,
    "--listen-port",
    String(port),
    "--webrepl-password",
    "pw",
  ]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(
    r.stderr,
    `TCP port ${port} on 127.0.0.1 (the app's WebREPL) is already in use`,
  );
  assertStringIncludes(r.stderr, "--listen-port");
  assertOneClearLine(r.stderr);
});

Deno.test("sim --host with an address this machine does not have: one line naming --host", async () => {
  const r = await runTaskFile("sim", ["--key", KEY, "--listen-port", "0", "--host", "192.0.2.1"]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(
    r.stderr,
    "cannot listen on 192.0.2.1: it is not an address of this machine",
  );
  assertStringIncludes(r.stderr, "--host");
  assertOneClearLine(r.stderr);
});

Deno.test("sim --flash naming a directory or a missing folder: one line each, nothing written", async () => {
  await using dir = await tempDir();
  const r = await runTaskFile("sim", ["--key", KEY, "--listen-port", "0", "--flash", dir.path]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, `--flash names a directory ('${dir.path}')`);
  assertStringIncludes(r.stderr, `${dir.path}/flash.bin`);
  assertOneClearLine(r.stderr);
  assertEquals([...Deno.readDirSync(dir.path)], []);
  const missing = `${dir.path}/no-such-folder/flash.bin`;
  const r2 = await runTaskFile("sim", ["--key", KEY, "--listen-port", "0", "--flash", missing]);
  assertEquals(r2.code, 1, r2.stderr);
  assertStringIncludes(r2.stderr, `cannot write the flash file '${missing}': No such file`);
  assertOneClearLine(r2.stderr);
});

Deno.test("sim --flash refuses a file it did not write, naming what it looks like; the file is unchanged", async () => {
  await using dir = await tempDir();
  const firmware = makeSampleFirmware({ size: 48 * 1024, seed: 34 });
  await Deno.writeFile(`${dir.path}/firmware.bin`, firmware);
  await Deno.writeFile(`${dir.path}/fw.ota`, vectorOta());
  await Deno.writeTextFile(`${dir.path}/notes.txt`, "my notes\n");
  const cases: [string, string][] = [
    ["firmware.bin", "looks like a firmware image"],
    ["fw.ota", "looks like a signed .ota file"],
    ["notes.txt", "looks like a text file"],
  ];
  for (const [name, looks] of cases) {
    const path = `${dir.path}/${name}`;
    const before = await Deno.readFile(path);
    const r = await runTaskFile("sim", ["--key", KEY, "--listen-port", "0", "--flash", path]);
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, `--flash '${path}' ${looks}`);
    assertStringIncludes(r.stderr, "Choose another path");
    assertStringIncludes(r.stderr, "--force");
    assertOneClearLine(r.stderr);
    assert(equalBytes(await Deno.readFile(path), before), `${name} was changed`);
    assert(!(await exists(markPath(path))), `${name} got a mark`);
  }
});

Deno.test("sim --flash: a dump sim wrote is marked and reused as it is; --force takes over a foreign file", async () => {
  await using dir = await tempDir();
  const flashFile = `${dir.path}/flash.bin`;
  {
    await using sim = await startSimProcess(["--key", KEY, "--flash", flashFile]);
    await sim.stop();
  }
  assert(await exists(markPath(flashFile)), "the dump is marked");
  const dump = await Deno.readFile(flashFile);
  assertEquals(dump.length, 0x100000);
  assert(dump.every((b) => b === 0xff), "an erased flash");
  // Changed since (as if a deploy wrote it): reused, read, not replaced.
  dump[APP] = 0x42;
  await Deno.writeFile(flashFile, dump);
  {
    await using sim = await startSimProcess(["--key", KEY, "--flash", flashFile]);
    await sim.stop();
  }
  assertEquals((await Deno.readFile(flashFile))[APP], 0x42);
  // A foreign file with --force: used and replaced by the flash, then marked.
  const foreign = `${dir.path}/firmware.bin`;
  // Longer than the flash: no tail of it may survive.
  const longer = new Uint8Array(0x180000).fill(0x5a);
  longer.set(makeSampleFirmware({ size: 48 * 1024, seed: 35 }));
  await Deno.writeFile(foreign, longer);
  {
    await using sim = await startSimProcess(["--key", KEY, "--flash", foreign, "--force"]);
    assertStringIncludes(sim.stderr(), "--force");
    await sim.stop();
  }
  const replaced = await Deno.readFile(foreign);
  assertEquals(replaced.length, 0x100000);
  assert(replaced.every((b) => b === 0xff));
  assert(await exists(markPath(foreign)));
});

function vectorOta(): Uint8Array {
  return Deno.readFileSync(`${VECTORS}fw-10000.key512.block256.ota`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
