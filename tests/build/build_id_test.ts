import { findImageBuild } from "../../lib/format/ota_module.ts";
import { buildOtaImage, DEFAULT_APP_OFFSET, parseImage } from "../../lib/format/image.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { startVirtualDevice } from "../../lib/sim/virtual_device.ts";
import { readBoardState } from "../../lib/deploy/board_state.ts";
import { inspectImage } from "../../lib/format/inspect.ts";
import { assert, assertEquals, assertNotEquals, assertThrows } from "../_assert.ts";
import { ROOT, runTaskFile, tempDir, vectorText } from "../_helpers.ts";
import { buildEnv, makeFakeMicroPythonTree } from "../fixtures/fake_trees.ts";
import { type BuildInputs, computeBuildId, describeBuild } from "../../lib/build/build_id.ts";
import { parseBoardBuild, renderOtaModule } from "../../lib/format/ota_module.ts";
import { readTreeState } from "../../lib/build/tree_state.ts";
import { chooseRelease, type Release, ReleaseNotFoundError } from "../../lib/build/releases.ts";
import { encodeFrozenTable, readFrozenTable } from "../../lib/format/frozen_table.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { parseVersionLabel } from "../../lib/config/values.ts";
import { UsageError } from "../../lib/errors.ts";
import { join } from "node:path";

const TEMPLATE = Deno.readTextFileSync(join(ROOT, "templates", "ota.py"));

const INPUTS: BuildInputs = {
  modules: [{ name: "uartremote.py", sha256: "aa".repeat(32) }, {
    name: "ota.py",
    sha256: "bb".repeat(32),
  }],
  tree: {
    version: "1.19.1",
    generation: "make-ota",
    board: "GENERIC",
    state: { commit: "c0ffee".repeat(6) + "abcd" },
  },
  appOffset: "0x3c000",
  toolchain: { runtime: "docker", image: "larsks/esp-open-sdk" },
};

Deno.test("computeBuildId() is the same for the same inputs and changes with each of them", () => {
  const id = computeBuildId(INPUTS);
  assert(/^[0-9a-f]{12}$/.test(id), id);
  assertEquals(computeBuildId(structuredClone(INPUTS)), id);
  const variants: BuildInputs[] = [
    {
      ...INPUTS,
      modules: [{ ...INPUTS.modules[0]!, sha256: "ab".repeat(32) }, INPUTS.modules[1]!],
    },
    { ...INPUTS, modules: INPUTS.modules.slice(1) },
    { ...INPUTS, tree: { ...INPUTS.tree, state: { commit: "d".repeat(40) } } },
    {
      ...INPUTS,
      tree: { ...INPUTS.tree, state: { ...INPUTS.tree.state!, changes: "e".repeat(64) } },
    },
    { ...INPUTS, tree: { ...INPUTS.tree, state: undefined } },
    { ...INPUTS, tree: { ...INPUTS.tree, version: "1.19.0" } },
    { ...INPUTS, tree: { ...INPUTS.tree, board: "ESP8266_GENERIC" } },
    { ...INPUTS, appOffset: "0x40000" },
    { ...INPUTS, toolchain: { runtime: "native", image: null } },
    { ...INPUTS, version: "1.4.0" },
  ];
  const ids = variants.map(computeBuildId);
  assertEquals(new Set([id, ...ids]).size, variants.length + 1, ids.join(" "));
  assertEquals(describeBuild({ id, version: "1.4.0" }), `${id} (1.4.0)`);
  assertEquals(describeBuild({ id }), id);
});

Deno.test("renderOtaModule() writes BUILD and VERSION once, the same way every time", () => {
  const once = renderOtaModule(TEMPLATE, { build: "3f2a9c1e0b7d", version: "1.4.0" });
  assert(once.includes('\nBUILD = "3f2a9c1e0b7d"\nVERSION = "1.4.0"\n'), once);
  assertEquals(renderOtaModule(once, { build: "3f2a9c1e0b7d", version: "1.4.0" }), once);
  // A later build replaces the values; without a label VERSION is None again.
  const later = renderOtaModule(once, { build: "0123456789ab" });
  assert(later.includes('\nBUILD = "0123456789ab"\nVERSION = None\n'), later);
  assert(later.includes('\nBUILD_STAMP = "yaota-build:0123456789ab"\n'), later);
  assertEquals(
    later.replace('"0123456789ab"', "None").replace('"yaota-build:0123456789ab"', "None"),
    TEMPLATE,
  );
  assertThrows(
    () => renderOtaModule("import machine\n", { build: "x" }),
    Error,
    "templates/ota.py must assign BUILD once at the start of a line (found 0)",
  );
});

Deno.test("parseBoardBuild() reads what the board's ota module names; old firmware is an unknown build", () => {
  assertEquals(parseBoardBuild('ota ["3f2a9c1e0b7d", "1.4.0"]\n'), {
    ota: true,
    id: "3f2a9c1e0b7d",
    version: "1.4.0",
  });
  assertEquals(parseBoardBuild("ota [null, null]\n"), { ota: true });
  assertEquals(parseBoardBuild("no-ota\n"), { ota: false });
  assertEquals(parseBoardBuild("Traceback (most recent call last):\n"), undefined);
});

Deno.test("parseVersionLabel() takes short labels only", () => {
  assertEquals(parseVersionLabel("1.4.0-rc1+b2", { flag: "version" }), "1.4.0-rc1+b2");
  for (const bad of ["", "-x", "a b", 'a"b', "x".repeat(33)]) {
    assertThrows(
      () => parseVersionLabel(bad, { flag: "version" }),
      UsageError,
      "--version expects",
    );
  }
});

Deno.test("readFrozenTable() finds the modules a sample image carries, and none in an image without", () => {
  const modules = [{ name: "ota.py", source: 'BUILD = "x"\n' }, {
    name: "a.py",
    source: "é = 1\n",
  }];
  const image = makeSampleFirmware({ size: 48 * 1024, frozen: modules });
  assertEquals(readFrozenTable(image), modules);
  // In flash, bytes after the image (an older, longer one's) are not read.
  const flash = new Uint8Array(image.length + 8192).fill(0xff);
  flash.set(image);
  flash.set(encodeFrozenTable([{ name: "old.py", source: "" }]), image.length + 16);
  assertEquals(readFrozenTable(flash), modules);
  assertEquals(readFrozenTable(makeSampleFirmware({ size: 48 * 1024 })), []);
  assertThrows(() => encodeFrozenTable([{ name: "a.py", source: "\0" }]), Error, "cannot go");
});

const RELEASES: Release[] = [
  { id: "aaaa11112222", builtAt: "2024-01-01T00:00:00.000Z", dir: "r/a", firmware: "r/a/f" },
  {
    id: "aaaa33334444",
    builtAt: "2024-02-01T00:00:00.000Z",
    version: "1.1",
    dir: "r/b",
    firmware: "r/b/f",
  },
  { id: "cccc55556666", builtAt: "2024-03-01T00:00:00.000Z", dir: "r/c", firmware: "r/c/f" },
];

Deno.test("chooseRelease() finds a build by id or prefix, and 'previous' before the current build", () => {
  assertEquals(chooseRelease(RELEASES, "cccc", undefined).id, "cccc55556666");
  assertEquals(chooseRelease(RELEASES, "aaaa33334444", undefined).id, "aaaa33334444");
  assertEquals(chooseRelease(RELEASES, "previous", RELEASES[2]).id, "aaaa33334444");
  assertEquals(chooseRelease(RELEASES, "previous", RELEASES[1]).id, "aaaa11112222");
  assertEquals(chooseRelease(RELEASES, "previous", undefined).id, "aaaa33334444");
  assertThrows(
    () => chooseRelease(RELEASES, "previous", RELEASES[0]),
    ReleaseNotFoundError,
    "no release before the current build aaaa11112222 in dist/releases (kept there: aaaa11112222, aaaa33334444 (1.1), cccc55556666)",
  );
  assertThrows(
    () => chooseRelease(RELEASES, "aaaa", undefined),
    ReleaseNotFoundError,
    "'aaaa' names 2 releases in dist/releases: give more digits (aaaa11112222, aaaa33334444)",
  );
  assertThrows(
    () => chooseRelease([], "abcd", undefined),
    ReleaseNotFoundError,
    "no release 'abcd' in dist/releases (none is kept there yet: each successful 'deno task build-ota' keeps one). Name a build id or 'previous'.",
  );
  // Fewer than 4 digits, nothing, or not hex: the argument is wrong, not the releases.
  assertThrows(
    () => chooseRelease(RELEASES, "ccc", undefined),
    UsageError,
    "--release 'ccc' has 3 digits: give at least 4 digits of a build id, or 'previous'",
  );
  assertThrows(
    () => chooseRelease(RELEASES, "", undefined),
    UsageError,
    "--release is empty: give a build id (at least 4 of its hex digits) or 'previous'",
  );
  assertThrows(
    () => chooseRelease(RELEASES, "latest", undefined),
    UsageError,
    "--release 'latest' is not a build id",
  );
});

async function git(dir: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("git", {
    args: ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
}

Deno.test("readTreeState() names the commit and any change to it, leaving out the files build-ota writes", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeMicroPythonTree(dir.path, "make-ota");
  assertEquals(await readTreeState(tree.root, []), undefined, "not a git checkout");
  await Deno.writeTextFile(join(tree.root, ".gitignore"), "build-*/\n");
  await git(tree.root, "init", "-q");
  await git(tree.root, "add", "-A");
  await git(tree.root, "commit", "-q", "-m", "fake tree");
  const clean = await readTreeState(tree.root, [tree.ld]);
  assert(clean && /^[0-9a-f]{40}$/.test(clean.commit), JSON.stringify(clean));
  assertEquals(clean.changes, undefined);
  // build-ota's own edits (here the linker script and a frozen module) do not count...
  await Deno.writeTextFile(tree.ld, "changed by build-ota\n");
  await Deno.writeTextFile(join(tree.port, "modules", "ota.py"), "BUILD = None\n");
  await Deno.mkdir(join(tree.port, "build-GENERIC"));
  await Deno.writeTextFile(join(tree.port, "build-GENERIC", "firmware.elf"), "ignored\n");
  const managed = [tree.ld, join(tree.port, "modules", "ota.py")];
  assertEquals(await readTreeState(tree.root, managed), clean);
  // ...a change to the sources does, tracked or not, and the same change hashes the same.
  await Deno.writeTextFile(join(tree.port, "main.c"), "int main;\n");
  const changed = await readTreeState(tree.root, managed);
  assertEquals(changed?.commit, clean.commit);
  assert(changed?.changes !== undefined);
  assertEquals(await readTreeState(tree.root, managed), changed);
  await Deno.writeTextFile(join(tree.port, "main.c"), "int main2;\n");
  assertNotEquals((await readTreeState(tree.root, managed))?.changes, changed.changes);
});

Deno.test("build-ota gives the same build id to the same inputs, another to a new commit or --version", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeMicroPythonTree(dir.path, "make-ota");
  await Deno.writeTextFile(join(tree.root, ".gitignore"), "build-*/\nbuild/\n");
  await git(tree.root, "init", "-q");
  await git(tree.root, "add", "-A");
  await git(tree.root, "commit", "-q", "-m", "fake tree");
  const env = buildEnv(join(dir.path, "docker.log"));
  const build = async (...extra: string[]) => {
    const r = await runTaskFile("build_ota", ["--micropython", tree.root, ...extra], {
      cwd: dir.path,
      env,
    });
    assertEquals(r.code, 0, r.stderr);
    const manifest = JSON.parse(await Deno.readTextFile(join(dir.path, "dist", "manifest.json")));
    return {
      manifest,
      stderr: r.stderr,
      ota: await Deno.readTextFile(join(tree.port, "modules", "ota.py")),
    };
  };
  const first = await build();
  const id = first.manifest.build.id;
  assertEquals(first.manifest.build.reproducible, true);
  assertEquals(first.manifest.build.tree.changed, false);
  assertStringIncludesAll(first.stderr, [
    `build id ${id} (git `,
    "kept as release dist/releases/" + id,
  ]);
  // The tree now holds build-ota's edits; they do not change the id.
  const second = await build();
  assertEquals(second.manifest.build.id, id);
  assertEquals(second.ota, first.ota);
  assert(second.manifest.builtAt >= first.manifest.builtAt);
  // A label is part of the id and reaches the board as ota.VERSION.
  const labelled = await build("--version", "1.4.0");
  assertNotEquals(labelled.manifest.build.id, id);
  assertEquals(labelled.manifest.build.version, "1.4.0");
  assert(labelled.ota.includes(`BUILD = "${labelled.manifest.build.id}"\nVERSION = "1.4.0"\n`));
  // A new commit of the sources is another build.
  await Deno.writeTextFile(join(tree.port, "main.c"), "int main;\n");
  const dirty = await build();
  assertNotEquals(dirty.manifest.build.id, id);
  assertEquals(dirty.manifest.build.tree.changed, true);
  await git(tree.root, "add", "ports/esp8266/main.c");
  await git(tree.root, "commit", "-q", "-m", "main");
  const committed = await build();
  assertEquals(committed.manifest.build.tree.changed, false);
  assertEquals(
    new Set([id, labelled.manifest.build.id, dirty.manifest.build.id, committed.manifest.build.id])
      .size,
    4,
  );
  const releases = [];
  for await (const e of Deno.readDir(join(dir.path, "dist", "releases"))) releases.push(e.name);
  assertEquals(releases.length, 4);
});

function assertStringIncludesAll(text: string, parts: string[]): void {
  for (const p of parts) assert(text.includes(p), `missing '${p}' in:\n${text}`);
}

Deno.test("findImageBuild() reads the build from a real image's interned strings, and inspect reports it", () => {
  const enc = (t: string) => new TextEncoder().encode(t);
  // As MicroPython's frozen bytecode keeps ota.py's strings: NUL-terminated, side by side.
  const stamped = enc(
    "\x00MAGIC\x00BUILD\x00BUILD_STAMP\x00yaota-build:3f2a9c1e0b7d:1.4.0\x00uartremote\x00",
  );
  assertEquals(findImageBuild(stamped), { id: "3f2a9c1e0b7d", version: "1.4.0" });
  // An image frozen before BUILD_STAMP existed (a v1.19.1 build): the id after BUILD.
  assertEquals(findImageBuild(enc("yaotaota\x00BUILD\x00771c04d0bd72\x00uartrem")), {
    id: "771c04d0bd72",
  });
  assertEquals(findImageBuild(enc("\x00BUILD\x00VERSION\x00start\x00")), undefined);
  // A test image keeps ota.py's source: the same reading.
  const ota = renderOtaModule(TEMPLATE, { build: "0123456789ab" });
  const image = makeSampleFirmware({ frozen: [{ name: "ota.py", source: ota }] });
  const report = inspectImage(image);
  assertEquals(report.build, { id: "0123456789ab" });
  assertEquals(report.version?.startsWith("v1."), true);
});

Deno.test("the virtual device reads the build id of a real image, whose frozen bytecode it cannot run, as inspect does", async () => {
  // A real build's shape: no frozen sources, ota.py's strings interned in the irom.
  const sample = parseImage(makeSampleFirmware({ version: "v1.27.0", size: 64 * 1024 }));
  const irom = sample.irom!.slice();
  const interned = new TextEncoder().encode(
    "\x00MAGIC\x00yaotaota\x00BUILD\x00VERSION\x00BUILD_STAMP\x00yaota-build:02998b03715d:2.0\x00start\x00",
  );
  irom.set(interned, irom.length - interned.length - 4);
  const image = buildOtaImage({ segments: sample.segments, entry: sample.entry, irom });
  assertEquals(readFrozenTable(image), []);
  assertEquals(inspectImage(image).build, { id: "02998b03715d", version: "2.0" });
  const flash = new Uint8Array(0x100000).fill(0xff);
  flash.set(image, DEFAULT_APP_OFFSET);
  const modulus = parsePrivateKey(vectorText("test-key-512.pem")).modulus;
  await using device = await startVirtualDevice({
    modulus,
    flash,
    start: "boot",
    webrepl: { password: "pw-Zq7x4" },
  });
  const state = await readBoardState({
    host: "127.0.0.1",
    port: device.port,
    password: "pw-Zq7x4",
  });
  assertEquals(state.build, {
    ota: true,
    id: "02998b03715d",
    version: "2.0",
    flashUserStart: 0xd4000,
  });
});
