import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { renderStatusHeading } from "../../lib/cli/status_report.ts";
import { runTaskFile, tempDir, vectorText } from "../_helpers.ts";
import { buildEnv, makeFakeMicroPythonTree } from "../fixtures/fake_trees.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";

const absent = (path: string) => Deno.stat(path).then(() => false, () => true);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

Deno.test("a failed build-ota moves the previous build to dist/stale/ and says so; a plain deploy names it", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeMicroPythonTree(dir.path, "make-ota");
  const dist = join(dir.path, "dist");
  const env = buildEnv(join(dir.path, "docker.log"));
  const build = ["--micropython", tree.root, "--runtime", "native"];
  const good = await runTaskFile("build_ota", build, { cwd: dir.path, env });
  assertEquals(good.code, 0, good.stderr);
  const image = await Deno.readFile(join(dist, "firmware-ota.bin"));
  const manifest = await Deno.readTextFile(join(dist, "manifest.json"));

  for (let attempt = 1; attempt <= 2; attempt++) {
    const failed = await runTaskFile("build_ota", build, {
      cwd: dir.path,
      env: { ...env, FAKE_MAKE_FAIL: "1" },
    });
    assertEquals(failed.code, 1);
    assertStringIncludes(
      failed.stderr,
      `warning: the build failed, so there is no ${dist}/firmware-ota.bin for 'deno task deploy' ` +
        `to send by mistake: the previous build is in ${dist}/stale/ (see README.txt there)`,
    );
    assertStringIncludes(failed.stderr, "error: 'make ota' failed with exit code 2");
    assertEquals(await absent(join(dist, "firmware-ota.bin")), true);
    assertEquals(await absent(join(dist, "manifest.json")), true);
    // A second failure keeps the last good build, not nothing.
    assertEquals(await Deno.readFile(join(dist, "stale", "firmware-ota.bin")), image, `${attempt}`);
    assertEquals(await Deno.readTextFile(join(dist, "stale", "manifest.json")), manifest);
  }
  const note = await Deno.readTextFile(join(dist, "stale", "README.txt"));
  assertStringIncludes(note, `deno task deploy --ip ADDR ${dist}/stale/firmware-ota.bin\n`);

  // Without FILE, or naming the build's output: the same answer.
  for (const file of [[], ["dist/firmware-ota.bin"]]) {
    const deploy = await runTaskFile("deploy", ["--ip", "127.0.0.1", ...file], { cwd: dir.path });
    assertEquals(deploy.code, 1);
    assertEquals(
      deploy.stderr,
      "error: no dist/firmware-ota.bin: the last 'deno task build-ota' did not succeed (see " +
        "dist/build.log), and the build before it was moved to dist/stale/. Fix and run the " +
        "build again, or send the older build by naming it: deno task deploy --ip ADDR " +
        "dist/stale/firmware-ota.bin\n",
    );
  }

  const again = await runTaskFile("build_ota", build, { cwd: dir.path, env });
  assertEquals(again.code, 0, again.stderr);
  assertEquals(await absent(join(dist, "stale")), true, "a good build clears stale/");
  assertEquals(await Deno.readFile(join(dist, "firmware-ota.bin")), image);
});

Deno.test("a build-ota that fails before make (module does not compile) leaves the previous build where it is", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeMicroPythonTree(dir.path, "make-ota");
  const dist = join(dir.path, "dist");
  await Deno.mkdir(dist);
  await Deno.writeTextFile(join(dist, "firmware-ota.bin"), "the previous build");
  await Deno.writeTextFile(join(dir.path, "broken.py"), "def f(:\n");
  const r = await runTaskFile(
    "build_ota",
    ["--micropython", tree.root, "--runtime", "native", "--module", "broken.py"],
    { cwd: dir.path, env: buildEnv(join(dir.path, "docker.log")) },
  );
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "a module does not compile, nothing was built");
  assertEquals(await absent(join(dist, "stale")), true);
  assertEquals(await Deno.readTextFile(join(dist, "firmware-ota.bin")), "the previous build");
});

/** dist/firmware-ota.bin (a safe image for `linkFor`) and a manifest saying `image`. */
async function distWith(dir: string, image: Record<string, unknown>, linkFor = 0x3c000) {
  const dist = join(dir, "dist");
  await Deno.mkdir(dist, { recursive: true });
  const bytes = makeSampleFirmware({ appOffset: linkFor });
  await Deno.writeFile(join(dist, "firmware-ota.bin"), bytes);
  await Deno.writeTextFile(
    join(dist, "manifest.json"),
    JSON.stringify({ firmware: "firmware-ota.bin", image: { sha256: sha256(bytes), ...image } }),
  );
  return bytes;
}

const NO_KEY = "error: no key at 'keys/priv.key'. Create one with 'deno task keygen', or name " +
  "yours with --key.\n";

Deno.test("deploy without FILE checks dist/firmware-ota.bin against its manifest; naming the file does not", async () => {
  await using dir = await tempDir();
  const deploy = (...args: string[]) =>
    runTaskFile("deploy", ["--ip", "127.0.0.1", ...args], { cwd: dir.path });
  // The manifest matches: the preflight goes on (to the key, absent here).
  await distWith(dir.path, { appOffset: "0x3c000" });
  assertEquals((await deploy()).stderr, NO_KEY);

  // The image changed after the build wrote the manifest.
  await distWith(dir.path, { appOffset: "0x3c000", sha256: "ab".repeat(32) });
  const image = await Deno.readFile(join(dir.path, "dist", "firmware-ota.bin"));
  const changed = await deploy();
  assertEquals(changed.code, 1);
  assertEquals(
    changed.stderr,
    `error: dist/firmware-ota.bin is not the image dist/manifest.json describes (sha256 ${
      sha256(image).slice(0, 12)
    }…, not abababababab…): it changed after 'deno task build-ota' wrote both. Build again, or ` +
      "name the file to send it as it is: deno task deploy --ip ADDR dist/firmware-ota.bin\n",
  );
  assertEquals((await deploy("dist/firmware-ota.bin")).stderr, NO_KEY);

  // Built for another app offset than the device's.
  await distWith(dir.path, { appOffset: "0x40000" }, 0x40000);
  const other = await deploy();
  assertEquals(other.code, 3); // an image refused before sending (lib/exit_codes.ts)
  assertEquals(
    other.stderr,
    "error: dist/firmware-ota.bin was built for app offset 0x40000 (dist/manifest.json), but " +
      "the device's is 0x3c000: it would not boot there. Build for 0x3c000 ('deno task " +
      "build-ota --app-offset 0x3c000'), or give the device's real app offset (--app-offset, " +
      "or 'appOffset' in ota.config.json)\n",
  );
  assertEquals((await deploy("--app-offset", "0x40000")).stderr, NO_KEY);

  // The manifest's app offset goes through the same check as the flag's.
  await distWith(dir.path, { appOffset: "0x3c001" });
  const bad = await deploy();
  assertEquals(bad.code, 1);
  assertEquals(
    bad.stderr,
    "error: dist/manifest.json: image.appOffset: expected a 4 KiB-aligned flash offset from " +
      '0x10000 to 0xbb000, such as 0x3c000, got "0x3c001" (0x3c001 is not a multiple of ' +
      "0x1000: the nearest are 0x3c000 and 0x3d000)\n",
  );
});

Deno.test('deploy without FILE takes the image from the config\'s "out" folder', async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(join(dir.path, "ota.config.json"), '{ "out": "build" }');
  const r = await runTaskFile("deploy", ["--ip", "127.0.0.1"], { cwd: dir.path });
  assertEquals(r.code, 1);
  assertEquals(
    r.stderr,
    `error: no file at '${join(dir.path, "build", "firmware-ota.bin")}'. Build one with ` +
      "'deno task build-ota', or name the image to send.\n",
  );
});

Deno.test("flash and verify name the stale build when a failed build-ota left no firmware", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, "dist", "stale"), { recursive: true });
  await Deno.writeFile(join(dir.path, "dist", "stale", "firmware-ota.bin"), makeSampleFirmware());
  const hint = "the last 'deno task build-ota' did not succeed and the build before it is in " +
    "dist/stale/firmware-ota.bin: fix the build, or name that one with --firmware";
  await Deno.mkdir(join(dir.path, "keys"));
  await Deno.writeTextFile(join(dir.path, "keys", "priv.key"), vectorText("test-key-512.pem"), {
    mode: 0o600,
  });
  await Deno.writeFile(join(dir.path, "boot.bin"), new Uint8Array(4096));
  const flash = await runTaskFile(
    "flash",
    ["--serial", "/dev/null", "--bootloader", "boot.bin", "--dry-run"],
    { cwd: dir.path },
  );
  assertEquals(flash.code, 1);
  assertEquals(flash.stderr, `error: no firmware at 'dist/firmware-ota.bin': ${hint}\n`);
  const verify = await runTaskFile("verify", [], { cwd: dir.path });
  assertStringIncludes(verify.stdout, `skip firmware    no dist/firmware-ota.bin (${hint})\n`);
});

/** A fake 1.19 tree in `dir`, built once natively: dist/ holds a good build. */
async function builtOnce(dir: string) {
  const tree = await makeFakeMicroPythonTree(dir, "make-ota");
  const dist = join(dir, "dist");
  const env = buildEnv(join(dir, "docker.log"));
  const build = ["--micropython", tree.root, "--runtime", "native"];
  assertEquals((await runTaskFile("build_ota", build, { cwd: dir, env })).code, 0);
  return { dist, env, build };
}

Deno.test("build-ota checks every input before it touches dist/: a mistyped tree, module or board moves nothing", async () => {
  await using dir = await tempDir();
  const { dist, env, build } = await builtOnce(dir.path);
  const image = await Deno.readFile(join(dist, "firmware-ota.bin"));
  const manifest = await Deno.readTextFile(join(dist, "manifest.json"));
  const log = await Deno.readTextFile(join(dist, "build.log"));
  const mistakes = [
    ["--micropython", join(dir.path, "micropyhton"), "--runtime", "native"],
    [...build, "--module", "uartremte.py"],
    [...build, "--board", "GENERIC_2M"],
  ];
  for (const args of mistakes) {
    const r = await runTaskFile("build_ota", args, { cwd: dir.path, env });
    assertEquals(r.code === 1 || r.code === 2, true, `${args}: ${r.code} ${r.stderr}`);
    assertEquals(r.stderr.includes("stale"), false, r.stderr);
    assertEquals(await absent(join(dist, "stale")), true, `${args}`);
    assertEquals(await Deno.readFile(join(dist, "firmware-ota.bin")), image);
    assertEquals(await Deno.readTextFile(join(dist, "manifest.json")), manifest);
    assertEquals(
      await Deno.readTextFile(join(dist, "build.log")),
      log,
      "the log is the last build's",
    );
  }
});

Deno.test("a build-ota whose make failed names the log it wrote and the kept release of the previous build", async () => {
  await using dir = await tempDir();
  const { dist, env, build } = await builtOnce(dir.path);
  const id = JSON.parse(await Deno.readTextFile(join(dist, "manifest.json"))).build.id;
  const failed = await runTaskFile("build_ota", [...build, "--version", "2.0"], {
    cwd: dir.path,
    env: { ...env, FAKE_MAKE_FAIL: "1" },
  });
  assertEquals(failed.code, 1);
  assertStringIncludes(
    failed.stderr,
    `; it is also kept as release ${id}: 'deno task deploy --release ${id}' sends it`,
  );
  assertStringIncludes(await Deno.readTextFile(join(dist, "build.log")), "the build broke");
  const note = await Deno.readTextFile(join(dist, "stale", "README.txt"));
  assertStringIncludes(note, `  deno task deploy --ip ADDR --release ${id}\n`);
});

Deno.test("status names a missing dist/manifest.json as missing, not as one without a build id", () => {
  const report = { manifest: null, devices: [] };
  assertEquals(
    renderStatusHeading(report, "dist/manifest.json", false),
    "no dist/manifest.json (no successful 'deno task build-ota' there): 'vs dist' is unknown",
  );
  assertStringIncludes(renderStatusHeading(report, "dist/manifest.json"), "names no build id");
});
