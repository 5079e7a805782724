import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";
import { ROOT, runTaskFile, tempDir } from "../_helpers.ts";
import {
  buildEnv,
  dockerCalls,
  dockerRunArgs,
  type FakeGeneration,
  makeFakeMicroPythonTree,
  userArg,
} from "../fixtures/fake_trees.ts";
import { checkRuntime, commandFailed, commandLine, LineTail } from "../../lib/build/container.ts";
import { shellQuote } from "../../lib/_shell.ts";
import { explainMakeFailure } from "../../lib/build/make_failures.ts";
import { ContainerRuntimeError, ToolMissingError, UsageError } from "../../lib/errors.ts";
import { inspectImage } from "../../lib/format/inspect.ts";
import {
  evaluateLinkerExpression,
  parseIromSegment,
  renderLinkerScript,
} from "../../lib/build/linker_script.ts";
import { makeCommands, type MicroPythonTree } from "../../lib/build/micropython_tree.ts";
import { parseBuildOtaArgs } from "../../tasks/build_ota.ts";
import { readFrozenTable } from "../../lib/format/frozen_table.ts";
import { join } from "node:path";
import { createHash } from "node:crypto";

const UART_REMOTE =
  "import machine\n\n\nclass UartRemote:\n    def __init__(self, port):\n        self.port = port\n";
const IMAGE = "larsks/esp-open-sdk";
const OTA_TEMPLATE = Deno.readFileSync(join(ROOT, "templates", "ota.py"));

/** The OTA variant's make: only the image target, never the bootloader-and-signing rule. */
const VARIANT_MAKE = [
  "make",
  "BOARD=ESP8266_GENERIC",
  "BOARD_VARIANT=OTA",
  "--eval=yaota-ota-image: build-ESP8266_GENERIC-OTA/firmware.elf ; " +
  "$(or $(ESPTOOL),esptool.py) elf2image $< && " +
  "$(PYTHON) makeimg.py $(BUILD)/firmware.elf-0x00000.bin " +
  "$(BUILD)/firmware.elf-0x[0-5][1-f]000.bin $(BUILD)/firmware-ota.bin",
  "yaota-ota-image",
];

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** The calls before make: the runtime check, the compiler's version, the image's digest. */
function probeCalls(run: string[]): string[][] {
  const inspect = ["image", "inspect", "--format", "{{.Id}}", IMAGE];
  return [inspect, [...run, "xtensa-lx106-elf-gcc", "-dumpversion"], inspect];
}

/** A fake tree, a uartremote.py beside it, and the docker stand-in's log, in a temp dir. */
async function setup(dir: string, generation: FakeGeneration) {
  const tree = await makeFakeMicroPythonTree(dir, generation);
  await Deno.writeTextFile(join(dir, "uartremote.py"), UART_REMOTE);
  return { tree, dockerLog: join(dir, "docker.log"), dist: join(dir, "dist") };
}

// --- pure parts -------------------------------------------------------------------------

Deno.test("commandLine() builds the docker, podman and native argument vectors", () => {
  const settings = { image: IMAGE, mount: "/src/mp", user: { uid: 1000, gid: 100 } };
  const make = ["make", "ota"];
  assertEquals(commandLine({ ...settings, runtime: "docker" }, "/src/mp/ports/esp8266", make), {
    argv: [
      "docker",
      "run",
      "--rm",
      "-v",
      "/src/mp:/src/mp",
      "-w",
      "/src/mp/ports/esp8266",
      "-u",
      "1000:100",
      IMAGE,
      "make",
      "ota",
    ],
  });
  assertEquals(
    commandLine({ ...settings, runtime: "podman" }, "/src/mp/ports/esp8266", make).argv.slice(0, 4),
    ["podman", "run", "--rm", "--userns=keep-id"],
  );
  assertEquals(commandLine({ ...settings, runtime: "native" }, "/src/mp/ports/esp8266", make), {
    argv: ["make", "ota"],
    cwd: "/src/mp/ports/esp8266",
  });
  assertEquals(shellQuote(["make", "it's here", "A=b"]), `make 'it'\\''s here' A=b`);
});

Deno.test("makeCommands() builds mpy-cross first, then 'make ota' or the OTA variant", () => {
  const tree = (generation: MicroPythonTree["generation"], board: string): MicroPythonTree => ({
    root: "/mp",
    port: "/mp/ports/esp8266",
    generation,
    board,
    linkerScript: "/mp/ports/esp8266/boards/esp8266_ota.ld",
    modulesDir: "/mp/ports/esp8266/modules",
  });
  assertEquals(makeCommands(tree("make-ota", "GENERIC"), false), [
    ["make", "-C", "../../mpy-cross"],
    ["make", "ota"],
  ]);
  assertEquals(makeCommands(tree("make-ota", "GENERIC_1M"), true)[1], [
    "make",
    "BOARD=GENERIC_1M",
    "ota",
  ]);
  assertEquals(makeCommands(tree("ota-variant", "ESP8266_GENERIC"), false)[1], [
    "make",
    "BOARD=ESP8266_GENERIC",
    "BOARD_VARIANT=OTA",
  ]);
});

Deno.test("LineTail keeps the last lines of output that arrives in pieces", () => {
  const tail = new LineTail(3);
  tail.push("one\ntw");
  tail.push("o\nthree\r\nfour\nfi");
  assertEquals(tail.lines(), ["three", "four", "fi"]);
  tail.push("ve\n");
  assertEquals(tail.lines(), ["three", "four", "five"]);
  const error = commandFailed(2, ["a", "b"], { label: "make ota", where: "in docker image x" });
  assertEquals(
    error.message,
    "'make ota' failed with exit code 2 in docker image x.\nIts last 2 lines:\n  | a\n  | b",
  );
  assertEquals(error.exitCode, 2);
});

Deno.test("checkRuntime() names the missing runtime, the stopped daemon and the pull command", async () => {
  const which = (present: string[]) => (name: string) =>
    Promise.resolve(present.includes(name) ? `/usr/bin/${name}` : undefined);
  const probe = (code: number, output: string) => () => Promise.resolve({ code, output });
  await assertRejects(
    () => checkRuntime("podman", IMAGE, probe(0, ""), which(["docker"])),
    ToolMissingError,
    "podman is not installed (no 'podman' on PATH)",
  );
  await assertRejects(
    () =>
      checkRuntime(
        "docker",
        IMAGE,
        probe(
          1,
          "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
        ),
        which(["docker"]),
      ),
    ContainerRuntimeError,
    "the docker daemon is not running",
  );
  await assertRejects(
    () =>
      checkRuntime(
        "docker",
        IMAGE,
        probe(
          1,
          "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock",
        ),
        which(["docker"]),
      ),
    ContainerRuntimeError,
    "Add yourself to the 'docker' group",
  );
  await assertRejects(
    () =>
      checkRuntime(
        "podman",
        IMAGE,
        probe(125, "Error: larsks/esp-open-sdk: image not known"),
        which(["podman"]),
      ),
    ContainerRuntimeError,
    "Pull it first: podman pull larsks/esp-open-sdk",
  );
  await assertRejects(
    () => checkRuntime("native", IMAGE, probe(0, ""), which([])),
    ToolMissingError,
    "'make' is not installed",
  );
  await checkRuntime("docker", IMAGE, probe(0, "sha256:1"), which(["docker"]));
});

Deno.test("renderLinkerScript() puts the app offset, 0x9000 and the irom length in place", () => {
  const template = Deno.readTextFileSync(join(ROOT, "templates", "esp8266_ota.ld"));
  const text = renderLinkerScript(template, {
    appOffset: 0x3c000,
    include: "INCLUDE boards/esp8266_common.ld",
  });
  assertStringIncludes(text, "irom0_0_seg :  org = 0x40200000 + 0x3c000 + 0x9000, len = 0x8f000\n");
  assertStringIncludes(text, "\nINCLUDE boards/esp8266_common.ld\n");
  assertEquals(parseIromSegment(text), { org: 0x40245000, len: 0x8f000 });
  assertEquals(
    parseIromSegment(renderLinkerScript(template, { appOffset: 0x40000 })),
    { org: 0x40249000, len: 0x8b000 },
  );
  assertEquals(evaluateLinkerExpression("1M - 100k"), 0x100000 - 100 * 1024);
});

Deno.test("parseBuildOtaArgs() types the flags and refuses bad ones", () => {
  const args = parseBuildOtaArgs([
    "--micropython",
    "../mp",
    "--module",
    "a.py",
    "--module",
    "b.py",
    "--runtime",
    "podman",
    "--app-offset",
    "0x40000",
    "--dry-run",
  ]);
  assertEquals(args.modules, ["a.py", "b.py"]);
  assertEquals(args.runtime, "podman");
  assertEquals(args.appOffset, 0x40000);
  assertEquals(args.dryRun, true);
  assertEquals(args.force, false);
  assertThrows(
    () => parseBuildOtaArgs(["--runtime", "lxc"]),
    UsageError,
    "--runtime expects one of docker, podman, native, got 'lxc'",
  );
  assertThrows(() => parseBuildOtaArgs(["--app-offset", "0x3c001"]), UsageError, "4 KiB-aligned");
  assertThrows(() => parseBuildOtaArgs(["--app-offset", "lots"]), UsageError, "got 'lots'");
});

// --- the task, against fake trees -------------------------------------------------------

Deno.test("build-ota builds a 'make ota' tree (MicroPython 1.19) in docker: argv, linker script, modules, image, manifest", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog, dist } = await setup(dir.path, "make-ota");
  const r = await runTaskFile(
    "build_ota",
    ["--micropython", "micropython", "--module", "uartremote.py", "--out", "dist"],
    { cwd: dir.path, env: buildEnv(dockerLog) },
  );
  assertEquals(r.code, 0, r.stderr);
  const run = dockerRunArgs(tree.root, tree.port, IMAGE);
  assertEquals(await dockerCalls(dockerLog), [
    ...probeCalls(run),
    [...run, "make", "-C", "../../mpy-cross"],
    [...run, "make", "ota"],
  ]);
  // The linker script: the template for 0x3c000 with the tree's own INCLUDE line.
  const ld = await Deno.readTextFile(tree.ld);
  assertStringIncludes(
    ld,
    "    irom0_0_seg :  org = 0x40200000 + 0x3c000 + 0x9000, len = 0x8f000\n",
  );
  assertStringIncludes(ld, "\nINCLUDE boards/esp8266_common.ld\n");
  assertStringIncludes(ld, "Written by `deno task build-ota` from templates/esp8266_ota.ld");
  assertEquals(await Deno.readTextFile(`${tree.ld}.orig`), tree.ldOriginal);
  // The frozen modules.
  assertEquals(await Deno.readTextFile(join(tree.port, "modules", "uartremote.py")), UART_REMOTE);
  // ota.py is the template with this build's id (and no label) written in.
  const manifest = JSON.parse(await Deno.readTextFile(join(dist, "manifest.json")));
  const buildId: string = manifest.build.id;
  assert(/^[0-9a-f]{12}$/.test(buildId), buildId);
  const stampedOta = new TextDecoder().decode(OTA_TEMPLATE).replace(
    "BUILD = None",
    `BUILD = "${buildId}"`,
  ).replace("BUILD_STAMP = None", `BUILD_STAMP = "yaota-build:${buildId}"`);
  assertEquals(await Deno.readTextFile(join(tree.port, "modules", "ota.py")), stampedOta);
  assertEquals(
    await Deno.readTextFile(join(tree.port, "modules", "_boot.py")),
    "# MicroPython's own _boot.py\n",
  );
  // The image, collected and valid for 0x3c000.
  const image = await Deno.readFile(join(dist, "firmware-ota.bin"));
  assertEquals(image, await Deno.readFile(tree.output));
  assertEquals(inspectImage(image, { appOffset: 0x3c000 }).safe, true);
  // The frozen modules travel in the image (the fake make keeps their sources there).
  assertEquals(
    readFrozenTable(image).find((m) => m.name === "ota.py")?.source,
    stampedOta,
  );
  // The manifest.
  assertEquals(manifest.build, {
    id: buildId,
    builtAt: manifest.builtAt,
    reproducible: false,
    notCovered: ["the tree's sources (not a git checkout)"],
    tree: { commit: null, changed: false },
  });
  // The toolchain the id covers: esp-open-sdk's GCC 4.8 needs no extra flags.
  assertEquals(manifest.toolchain, {
    compiler: "4.8.5",
    cflagsExtra: [],
    imageDigest: `sha256:${"0".repeat(64)}`,
    makeVars: [],
  });
  assertEquals(manifest.image.flashUserStart, "0xd4000");
  assertEquals(manifest.image.filesystemStart, "0xd5000");
  assertEquals(manifest.micropython, {
    version: "1.19.1",
    tree: tree.root,
    generation: "make-ota",
    board: "GENERIC",
  });
  assertEquals(manifest.image.size, image.length);
  assertEquals(manifest.image.sha256, sha256(image));
  assertEquals(manifest.image.md5.ok, true);
  assertEquals(manifest.image.iromLinkBase, "0x40245000");
  assertEquals(manifest.image.appOffset, "0x3c000");
  assertEquals(manifest.image.version, "v1.19.1 on 2022-06-18");
  assertEquals(manifest.modules, [
    {
      name: "uartremote.py",
      source: join(dir.path, "uartremote.py"),
      sha256: sha256(new TextEncoder().encode(UART_REMOTE)),
    },
    {
      name: "ota.py",
      source: join(ROOT, "templates", "ota.py"),
      sha256: sha256(new TextEncoder().encode(stampedOta)),
    },
  ]);
  // Kept as a release: the same image and manifest under dist/releases/<id>/.
  assertEquals(await Deno.readFile(join(dist, "releases", buildId, "firmware-ota.bin")), image);
  assertEquals(
    await Deno.readTextFile(join(dist, "releases", buildId, "manifest.json")),
    await Deno.readTextFile(join(dist, "manifest.json")),
  );
  assertStringIncludes(r.stdout, `build ${buildId}, built ${manifest.builtAt}`);
  assertEquals(manifest.runtime, "docker");
  assertEquals(manifest.containerImage, IMAGE);
  assertEquals(typeof manifest.builtAt, "string");
  // The log holds the whole build; the result line is on stdout.
  const log = await Deno.readTextFile(join(dist, "build.log"));
  assertStringIncludes(log, "built mpy-cross");
  assertStringIncludes(log, "FREEZE modules/uartremote.py");
  assertStringIncludes(log, "FREEZE modules/ota.py");
  assertStringIncludes(r.stdout, "irom linked at 0x40245000: safe to push to app offset 0x3c000");
  assertStringIncludes(r.stderr, "kept the original as ports/esp8266/boards/esp8266_ota.ld.orig");
});

Deno.test("build-ota builds an OTA-variant tree (MicroPython 1.22) in docker for another app offset", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog, dist } = await setup(dir.path, "ota-variant");
  const r = await runTaskFile(
    "build_ota",
    ["--micropython", tree.port, "--module", "uartremote.py", "--app-offset", "0x40000"],
    { cwd: dir.path, env: buildEnv(dockerLog) },
  );
  assertEquals(r.code, 0, r.stderr);
  const run = dockerRunArgs(tree.root, tree.port, IMAGE);
  assertEquals((await dockerCalls(dockerLog)).slice(3), [
    [...run, "make", "-C", "../../mpy-cross"],
    [...run, ...VARIANT_MAKE],
  ]);
  const ld = await Deno.readTextFile(tree.ld);
  assertStringIncludes(
    ld,
    "    irom0_0_seg :  org = 0x40200000 + 0x40000 + 0x9000, len = 0x8b000\n",
  );
  assertStringIncludes(ld, "\nINCLUDE esp8266_common.ld\n");
  assertStringIncludes(
    r.stderr,
    "- irom0_0_seg :  org = 0x40200000 + 0x3c000 + 0x9000, len = 0x8f000",
  );
  assertStringIncludes(
    r.stderr,
    "+ irom0_0_seg :  org = 0x40200000 + 0x40000 + 0x9000, len = 0x8b000",
  );
  const image = await Deno.readFile(join(dist, "firmware-ota.bin"));
  assertEquals(image, await Deno.readFile(tree.output));
  const manifest = JSON.parse(await Deno.readTextFile(join(dist, "manifest.json")));
  assertEquals(manifest.micropython.version, "1.27.0");
  assertEquals(manifest.micropython.generation, "ota-variant");
  assertEquals(manifest.image.iromLinkBase, "0x40249000");
  assertEquals(manifest.image.expectedIromBase, "0x40249000");
  assertEquals(manifest.commands.at(-1).slice(-5), VARIANT_MAKE);
  // Only the image: neither the concatenation with the bootloader nor the signing ran.
  assertEquals(
    await Deno.stat(join(tree.port, "build-ESP8266_GENERIC-OTA", "firmware.bin")).catch(() =>
      "absent"
    ),
    "absent",
  );
});

Deno.test("build-ota --runtime native builds both tree generations with make on this machine", async () => {
  for (const generation of ["make-ota", "ota-variant"] as const) {
    await using dir = await tempDir();
    const { tree, dockerLog, dist } = await setup(dir.path, generation);
    const r = await runTaskFile(
      "build_ota",
      ["--micropython", tree.root, "--module", "uartremote.py", "--runtime", "native"],
      { cwd: dir.path, env: buildEnv(dockerLog) },
    );
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await dockerCalls(dockerLog), [], "native builds do not call docker");
    assertEquals(
      await Deno.readFile(join(dist, "firmware-ota.bin")),
      await Deno.readFile(tree.output),
    );
    const manifest = JSON.parse(await Deno.readTextFile(join(dist, "manifest.json")));
    assertEquals(manifest.runtime, "native");
    assertEquals(manifest.containerImage, null);
    assertEquals(
      manifest.commands[1],
      generation === "make-ota" ? ["make", "ota"] : VARIANT_MAKE,
    );
    assertStringIncludes(r.stderr, `$ ${shellQuote(manifest.commands[1])}`);
  }
});

Deno.test("build-ota is idempotent: a second run changes nothing in the tree and keeps the first .orig", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog } = await setup(dir.path, "make-ota");
  const args = ["--micropython", tree.root, "--module", "uartremote.py", "--runtime", "native"];
  const first = await runTaskFile("build_ota", args, { cwd: dir.path, env: buildEnv(dockerLog) });
  assertEquals(first.code, 0, first.stderr);
  const files = [
    tree.ld,
    `${tree.ld}.orig`,
    join(tree.port, "modules", "uartremote.py"),
    join(tree.port, "modules", "ota.py"),
    join(tree.port, ".yaota-frozen.json"),
  ];
  const before = await Promise.all(
    files.map(async (f) => ({ bytes: await Deno.readFile(f), mtime: (await Deno.stat(f)).mtime })),
  );
  const second = await runTaskFile("build_ota", args, { cwd: dir.path, env: buildEnv(dockerLog) });
  assertEquals(second.code, 0, second.stderr);
  for (const [i, f] of files.entries()) {
    assertEquals(await Deno.readFile(f), before[i]!.bytes, f);
    assertEquals((await Deno.stat(f)).mtime, before[i]!.mtime, `${f} was rewritten`);
  }
  assertEquals(await Deno.readTextFile(`${tree.ld}.orig`), tree.ldOriginal);
  assertStringIncludes(
    second.stderr,
    "linker script ports/esp8266/boards/esp8266_ota.ld: up to date",
  );
  assertStringIncludes(
    second.stderr,
    "frozen module ports/esp8266/modules/uartremote.py: up to date",
  );
  // A changed module replaces our own copy; one no longer asked for is removed.
  await Deno.writeTextFile(join(dir.path, "uartremote.py"), UART_REMOTE + "VERSION = 2\n");
  await Deno.writeTextFile(join(dir.path, "extra.py"), "X = 1\n");
  const third = await runTaskFile("build_ota", [...args, "--module", "extra.py"], {
    cwd: dir.path,
    env: buildEnv(dockerLog),
  });
  assertEquals(third.code, 0, third.stderr);
  assertStringIncludes(third.stderr, "(replacing the older copy)");
  const fourth = await runTaskFile("build_ota", args, { cwd: dir.path, env: buildEnv(dockerLog) });
  assertEquals(fourth.code, 0, fourth.stderr);
  assertStringIncludes(fourth.stderr, "removed ports/esp8266/modules/extra.py");
  assertEquals(await Deno.stat(join(tree.port, "modules", "extra.py")).catch(() => "gone"), "gone");
});

Deno.test("build-ota refuses a module with a syntax error before anything is changed or built", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog, dist } = await setup(dir.path, "make-ota");
  await Deno.writeTextFile(join(dir.path, "broken.py"), "import machine\ndef start(:\n    pass\n");
  const r = await runTaskFile(
    "build_ota",
    ["--micropython", tree.root, "--module", "uartremote.py", "--module", "broken.py"],
    { cwd: dir.path, env: buildEnv(dockerLog) },
  );
  assertEquals(r.code, 1);
  assertStringIncludes(
    r.stderr,
    `error: a module does not compile, nothing was built: File "${
      join(dir.path, "broken.py")
    }", line 2: SyntaxError: invalid syntax`,
  );
  assertEquals(await dockerCalls(dockerLog), []);
  assertEquals(await Deno.readTextFile(tree.ld), tree.ldOriginal);
  assertEquals(
    await Deno.stat(join(tree.port, "modules", "uartremote.py")).catch(() => "absent"),
    "absent",
  );
  assertEquals(await Deno.stat(dist).catch(() => "absent"), "absent");
});

Deno.test("build-ota refuses a module that shadows one of MicroPython's own unless --force", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog } = await setup(dir.path, "make-ota");
  await Deno.writeTextFile(join(dir.path, "machine.py"), "X = 1\n");
  await Deno.writeTextFile(join(dir.path, "webrepl.py"), "X = 1\n");
  const shadow = await runTaskFile("build_ota", [
    "--micropython",
    tree.root,
    "--module",
    "machine.py",
  ], { cwd: dir.path, env: buildEnv(dockerLog) });
  assertEquals(shadow.code, 2);
  assertStringIncludes(
    shadow.stderr,
    "the module 'machine.py' would shadow MicroPython's own 'machine' module; rename it, or pass --force",
  );
  const inTree = await runTaskFile("build_ota", [
    "--micropython",
    tree.root,
    "--module",
    "webrepl.py",
  ], { cwd: dir.path, env: buildEnv(dockerLog) });
  assertEquals(inTree.code, 2);
  assertStringIncludes(
    inTree.stderr,
    "the module 'webrepl.py' would shadow MicroPython's own 'webrepl' module",
  );
  const forced = await runTaskFile("build_ota", [
    "--micropython",
    tree.root,
    "--module",
    "machine.py",
    "--force",
    "--dry-run",
  ], { cwd: dir.path, env: buildEnv(dockerLog) });
  assertEquals(forced.code, 0, forced.stderr);
  assertStringIncludes(
    forced.stdout,
    `would copy ${join(dir.path, "machine.py")} to ports/esp8266/modules/machine.py`,
  );
});

Deno.test("build-ota --dry-run prints every file change and command and changes nothing", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog, dist } = await setup(dir.path, "make-ota");
  const r = await runTaskFile(
    "build_ota",
    ["--micropython", tree.root, "--module", "uartremote.py", "--dry-run"],
    { cwd: dir.path, env: buildEnv(dockerLog) },
  );
  assertEquals(r.code, 0, r.stderr);
  const run =
    `docker run --rm -v ${tree.root}:${tree.root} -w ${tree.port} -u ${userArg()} ${IMAGE}`;
  for (
    const line of [
      "would write linker script ports/esp8266/boards/esp8266_ota.ld: irom0_0_seg at 0x40245000, len 0x8f000",
      "  would keep the original as ports/esp8266/boards/esp8266_ota.ld.orig",
      `would copy ${join(dir.path, "uartremote.py")} to ports/esp8266/modules/uartremote.py`,
      `would copy ${join(ROOT, "templates", "ota.py")} to ports/esp8266/modules/ota.py`,
      `would run: ${run} make -C ../../mpy-cross`,
      `would run: ${run} make ota`,
      "dry run: nothing was changed",
    ]
  ) assertStringIncludes(r.stdout, line + "\n");
  assertEquals(await dockerCalls(dockerLog), []);
  assertEquals(await Deno.readTextFile(tree.ld), tree.ldOriginal);
  assertEquals(await Deno.stat(`${tree.ld}.orig`).catch(() => "absent"), "absent");
  assertEquals(await Deno.stat(dist).catch(() => "absent"), "absent");
});

Deno.test("build-ota says what to do when docker is missing, its daemon is down or the image is missing, and changes nothing", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog } = await setup(dir.path, "make-ota");
  const args = ["--micropython", tree.root];
  const emptyPath = join(dir.path, "empty-bin");
  await Deno.mkdir(emptyPath);
  const missing = await runTaskFile("build_ota", args, {
    cwd: dir.path,
    env: { ...buildEnv(dockerLog), PATH: emptyPath },
  });
  assertEquals(missing.code, 1);
  assertStringIncludes(
    missing.stderr,
    "error: docker is not installed (no 'docker' on PATH). Install Docker",
  );
  const down = await runTaskFile("build_ota", args, {
    cwd: dir.path,
    env: buildEnv(dockerLog, { DOCKER_STANDIN_DAEMON: "down" }),
  });
  assertEquals(down.code, 1);
  assertStringIncludes(
    down.stderr,
    "error: the docker daemon is not running (Cannot connect to the Docker daemon",
  );
  assertStringIncludes(
    down.stderr,
    "Start it ('sudo systemctl start docker', or open Docker Desktop)",
  );
  const noImage = await runTaskFile("build_ota", args, {
    cwd: dir.path,
    env: buildEnv(dockerLog, { DOCKER_STANDIN_MISSING_IMAGES: IMAGE }),
  });
  assertEquals(noImage.code, 1);
  assertStringIncludes(
    noImage.stderr,
    `error: the image '${IMAGE}' is not on this machine. Pull it first: docker pull ${IMAGE}`,
  );
  assertStringIncludes(noImage.stderr, "(or make the project's own, yaota/esp8266-build");
  const noOwn = await runTaskFile("build_ota", [...args, "--image", "yaota/esp8266-build"], {
    cwd: dir.path,
    env: buildEnv(dockerLog, { DOCKER_STANDIN_MISSING_IMAGES: "yaota/esp8266-build" }),
  });
  assertStringIncludes(
    noOwn.stderr,
    "error: the image 'yaota/esp8266-build' is not on this machine: make it from docker/Dockerfile",
  );
  // Check first, act second: the tree is as it was.
  assertEquals(await Deno.readTextFile(tree.ld), tree.ldOriginal);
  assertEquals((await dockerCalls(dockerLog)).filter((c) => c[0] === "run"), []);
});

Deno.test("build-ota reports a make failure with its last 30 lines and where the full log is", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog, dist } = await setup(dir.path, "make-ota");
  const r = await runTaskFile("build_ota", ["--micropython", tree.root], {
    cwd: dir.path,
    env: buildEnv(dockerLog, { FAKE_MAKE_FAIL: "1" }),
  });
  assertEquals(r.code, 1);
  const logPath = join(dist, "build.log");
  assertStringIncludes(
    r.stderr,
    `error: 'make ota' failed with exit code 2 in docker image ${IMAGE}.\nIts last 30 lines:\n`,
  );
  assertStringIncludes(r.stderr, "  | fake.c:1:1: error: the build broke (line 41 of the build)\n");
  assertStringIncludes(r.stderr, `The full output is in ${logPath}.`);
  const tail = r.stderr.slice(
    r.stderr.indexOf("Its last 30 lines:"),
    r.stderr.indexOf("The full output"),
  );
  const shown = tail.split("\n").filter((l) => l.startsWith("  | "));
  assertEquals(shown.length, 30);
  // stdout and stderr are separate pipes: their last lines may come in either order.
  assert(shown.includes("  | make: *** [Makefile:16: ota] Error 2"), tail);
  assert(!tail.includes("(line 1 of the build)"), "only the last 30 lines");
  assertStringIncludes(await Deno.readTextFile(logPath), "(line 1 of the build)");
  assertEquals(await Deno.stat(join(dist, "firmware-ota.bin")).catch(() => "absent"), "absent");
});

Deno.test("build-ota names a missing tree and a folder that is not a MicroPython tree", async () => {
  await using dir = await tempDir();
  const env = buildEnv(join(dir.path, "docker.log"));
  const missing = await runTaskFile("build_ota", ["--micropython", "nowhere"], {
    cwd: dir.path,
    env,
  });
  assertEquals(missing.code, 1);
  assertStringIncludes(
    missing.stderr,
    `error: no MicroPython tree at '${join(dir.path, "nowhere")}'`,
  );
  const notTree = await runTaskFile("build_ota", ["--micropython", "."], { cwd: dir.path, env });
  assertEquals(notTree.code, 1);
  assertStringIncludes(
    notTree.stderr,
    `error: '${dir.path}' is not a MicroPython tree: no ports/esp8266 and py/ in it or above it`,
  );
});

Deno.test("build-ota refuses an image linked for the standard address and moves dist/firmware-ota.bin aside", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog, dist } = await setup(dir.path, "make-ota");
  await Deno.mkdir(dist);
  await Deno.writeTextFile(join(dist, "firmware-ota.bin"), "an older build");
  const r = await runTaskFile("build_ota", ["--micropython", tree.root, "--runtime", "native"], {
    cwd: dir.path,
    env: buildEnv(dockerLog, { FAKE_LINK_BASE: "0x40209000" }),
  });
  assertEquals(r.code, 3); // an unsafe image (lib/exit_codes.ts)
  assertStringIncludes(
    r.stderr,
    "error: the build wrote an image that is not safe to push to app offset 0x3c000: link address: " +
      "a standard (non-OTA) build, linked at 0x40209000: it would boot-loop",
  );
  assertEquals(await Deno.stat(join(dist, "firmware-ota.bin")).catch(() => "absent"), "absent");
  assertEquals(await Deno.readTextFile(join(dist, "stale", "firmware-ota.bin")), "an older build");
  assertEquals(
    await Deno.readFile(join(dist, "firmware-ota.rejected.bin")),
    await Deno.readFile(tree.output),
  );
});

Deno.test("build-ota removes the previous image first, so a make that does not relink cannot hand back a stale one", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog, dist } = await setup(dir.path, "ota-variant");
  const env = buildEnv(dockerLog);
  const args = ["--micropython", tree.root, "--runtime", "native"];
  assertEquals((await runTaskFile("build_ota", args, { cwd: dir.path, env })).code, 0);
  const dry = await runTaskFile("build_ota", [...args, "--app-offset", "0x40000", "--dry-run"], {
    cwd: dir.path,
    env,
  });
  assertStringIncludes(
    dry.stdout,
    "would remove ports/esp8266/build-ESP8266_GENERIC-OTA/firmware-ota.bin (so that make relinks)\n",
  );
  // make finds nothing to do (its ELF does not depend on the linker script).
  const r = await runTaskFile("build_ota", [...args, "--app-offset", "0x40000"], {
    cwd: dir.path,
    env: { ...env, FAKE_MAKE_NOOP: "1" },
  });
  assertEquals(r.code, 1);
  assertStringIncludes(
    r.stderr,
    "removed the previous build's build-ESP8266_GENERIC-OTA/firmware-ota.bin",
  );
  assertStringIncludes(
    r.stderr,
    "error: make finished but wrote none of ports/esp8266/build-ESP8266_GENERIC-OTA/firmware-ota.bin",
  );
  assertEquals(await Deno.stat(tree.output).catch(() => "absent"), "absent");
  // The earlier, valid build for 0x3c000 is out of deploy's way, in dist/stale/.
  assertEquals(await Deno.stat(join(dist, "firmware-ota.bin")).catch(() => "absent"), "absent");
  assertEquals(
    JSON.parse(await Deno.readTextFile(join(dist, "stale", "manifest.json"))).image.appOffset,
    "0x3c000",
  );
});

Deno.test("build-ota --force keeps the tree's own module it replaces and puts it back later", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog } = await setup(dir.path, "make-ota");
  const env = buildEnv(dockerLog);
  const own = join(tree.port, "modules", "webrepl.py");
  await Deno.writeTextFile(join(dir.path, "webrepl.py"), "# my webrepl\n");
  const args = ["--micropython", tree.root, "--runtime", "native"];
  const forced = await runTaskFile("build_ota", [...args, "--module", "webrepl.py", "--force"], {
    cwd: dir.path,
    env,
  });
  assertEquals(forced.code, 0, forced.stderr);
  assertStringIncludes(
    forced.stderr,
    "(keeping the tree's own as ports/esp8266/modules/webrepl.py.orig)",
  );
  assertEquals(await Deno.readTextFile(own), "# my webrepl\n");
  assertEquals(await Deno.readTextFile(`${own}.orig`), "# MicroPython's own webrepl.py\n");
  const later = await runTaskFile("build_ota", args, { cwd: dir.path, env });
  assertEquals(later.code, 0, later.stderr);
  assertStringIncludes(later.stderr, "put back the tree's own ports/esp8266/modules/webrepl.py");
  assertEquals(await Deno.readTextFile(own), "# MicroPython's own webrepl.py\n");
  assertEquals(await Deno.stat(`${own}.orig`).catch(() => "absent"), "absent");
});

Deno.test("build-ota builds the in-board OTA variant of 1.21-1.23 and refuses 1.28, naming 1.27.0", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog, dist } = await setup(dir.path, "board-variant");
  const env = buildEnv(dockerLog);
  for (const board of [[], ["--board", "ESP8266_GENERIC"]]) {
    const r = await runTaskFile("build_ota", [
      "--micropython",
      tree.root,
      "--runtime",
      "native",
      ...board,
    ], { cwd: dir.path, env });
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(
      r.stderr,
      "OTA board variant build (defined in boards/ESP8266_GENERIC/mpconfigboard.mk)",
    );
    const manifest = JSON.parse(await Deno.readTextFile(join(dist, "manifest.json")));
    assertEquals(manifest.micropython.version, "1.22.2");
    assertEquals(manifest.commands[1], VARIANT_MAKE);
  }
  await using newer = await tempDir();
  const t128 = await makeFakeMicroPythonTree(newer.path, "no-ota");
  const r = await runTaskFile("build_ota", ["--micropython", t128.root, "--runtime", "native"], {
    cwd: newer.path,
    env,
  });
  assertEquals(r.code, 1);
  assertStringIncludes(
    r.stderr,
    "error: MicroPython 1.28.0 has no ESP8266 OTA build: 1.28 removed the OTA board variant",
  );
  assertStringIncludes(r.stderr, "1.27.0 is the last release with one");
});

Deno.test("build-ota gives a GCC 12 the flags these releases need, records them, and a change of compiler cleans the build folder", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog, dist } = await setup(dir.path, "ota-variant");
  const args = ["--micropython", tree.root, "--runtime", "native"];
  const gcc12 = buildEnv(dockerLog, { FAKE_GCC_VERSION: "12.2.0" });
  // Without the flags, the fake GCC 12 fails the way the real one does.
  const bare = await new Deno.Command("make", {
    args: ["BOARD_VARIANT=OTA"],
    cwd: tree.port,
    env: gcc12,
    stdout: "null",
    stderr: "piped",
  }).output();
  assertStringIncludes(
    new TextDecoder().decode(bare.stderr),
    "multiple definition of `pyb_pin_obj'",
  );
  const r = await runTaskFile("build_ota", args, { cwd: dir.path, env: gcc12 });
  assertEquals(r.code, 0, r.stderr);
  const manifest = JSON.parse(await Deno.readTextFile(join(dist, "manifest.json")));
  const flags = ["-fcommon", "-Wno-array-bounds", "-Wno-error=unused-const-variable"];
  assertEquals(manifest.toolchain.compiler, "12.2.0");
  assertEquals(manifest.toolchain.cflagsExtra, flags);
  assertEquals(manifest.commands[1][1], `CFLAGS_EXTRA=${flags.join(" ")}`);
  assertStringIncludes(
    r.stderr,
    `compiler xtensa-lx106-elf-gcc 12.2.0: CFLAGS_EXTRA=${flags.join(" ")}`,
  );
  // No file of ours in modules/ (MicroPython warns about each it cannot freeze).
  const inModules = [];
  for await (const e of Deno.readDir(join(tree.port, "modules"))) inModules.push(e.name);
  assertEquals(inModules.filter((n) => n.startsWith(".")), []);
  // The same toolchain again: the build folder stays; another compiler: it goes.
  const same = await runTaskFile("build_ota", args, { cwd: dir.path, env: gcc12 });
  assertEquals(same.stderr.includes("so that everything is compiled again"), false, same.stderr);
  const other = await runTaskFile("build_ota", args, {
    cwd: dir.path,
    env: buildEnv(dockerLog, { FAKE_GCC_VERSION: "10.3.0" }),
  });
  assertEquals(other.code, 0, other.stderr);
  assertStringIncludes(
    other.stderr,
    "removed build-ESP8266_GENERIC-OTA/ so that everything is compiled again: the compiler, its flags or the image changed",
  );
  const id10 = JSON.parse(await Deno.readTextFile(join(dist, "manifest.json"))).build.id;
  assert(id10 !== manifest.build.id, "the build id covers the compiler");
  const forced = await runTaskFile("build_ota", [...args, "--clean"], {
    cwd: dir.path,
    env: buildEnv(dockerLog, { FAKE_GCC_VERSION: "10.3.0" }),
  });
  assertStringIncludes(forced.stderr, "so that everything is compiled again: --clean");
});

Deno.test("build-ota refuses an image too large for the irom with the bytes over and the remedies, and builds once one is taken", async () => {
  await using dir = await tempDir();
  const { tree, dockerLog, dist } = await setup(dir.path, "ota-variant");
  const args = ["--micropython", tree.root, "--runtime", "native", "--module", "uartremote.py"];
  // The firmware alone leaves 100 bytes of the irom free; ota.py and uartremote.py do not fit.
  const env = buildEnv(dockerLog, { FAKE_IROM_USED: String(0x8f000 - 100) });
  const r = await runTaskFile("build_ota", args, { cwd: dir.path, env });
  assertEquals(r.code, 1);
  // Every .py in modules/ is frozen: MicroPython's own, uartremote.py and the stamped ota.py.
  let frozen = 0;
  for await (const e of Deno.readDir(join(tree.port, "modules"))) {
    if (e.name.endsWith(".py")) {
      frozen += (await Deno.readFile(join(tree.port, "modules", e.name))).length;
    }
  }
  const over = frozen - 100;
  assertStringIncludes(
    r.stderr,
    `error: the firmware does not fit: region irom0_0_seg overflowed by ${over} bytes.`,
  );
  assertStringIncludes(r.stderr, "(1) freeze fewer or smaller modules (uartremote.py ");
  assertStringIncludes(r.stderr, "where the board's filesystem starts (0xd5000)");
  assertStringIncludes(r.stderr, "--make-var MICROPY_PY_ESPNOW=0");
  assertStringIncludes(r.stderr, "--move-filesystem-to 0xd6000");
  assertEquals(await Deno.stat(join(dist, "firmware-ota.bin")).catch(() => "absent"), "absent");
  // A smaller feature set fits the unchanged layout.
  const smaller = await runTaskFile("build_ota", [...args, "--make-var", "MICROPY_PY_ESPNOW=0"], {
    cwd: dir.path,
    env,
  });
  assertEquals(smaller.code, 0, smaller.stderr);
  const small = JSON.parse(await Deno.readTextFile(join(dist, "manifest.json")));
  assertEquals(small.image.filesystemStart, "0xd5000");
  assertEquals(small.toolchain.makeVars, ["MICROPY_PY_ESPNOW=0"]);
  // The explicit move: a larger irom, the new filesystem start in the manifest.
  const moved = await runTaskFile("build_ota", [...args, "--move-filesystem-to", "0xd6000"], {
    cwd: dir.path,
    env,
  });
  assertEquals(moved.code, 0, moved.stderr);
  const manifest = JSON.parse(await Deno.readTextFile(join(dist, "manifest.json")));
  assertEquals(manifest.image.filesystemStart, "0xd6000");
  assertEquals(manifest.image.flashUserStart, "0xd5000");
  assertStringIncludes(await Deno.readTextFile(tree.ld), "len = 0x90000");
});

Deno.test("parseBuildOtaArgs() takes --clean, --make-var and --move-filesystem-to, and refuses bad ones", () => {
  const args = parseBuildOtaArgs([
    "--clean",
    "--make-var",
    "MICROPY_PY_ESPNOW=0",
    "--move-filesystem-to",
    "0xd8000",
  ]);
  assertEquals([args.clean, args.makeVars, args.filesystemStart], [
    true,
    ["MICROPY_PY_ESPNOW=0"],
    0xd8000,
  ]);
  assertThrows(() => parseBuildOtaArgs(["--make-var", "X=$(rm -rf /)"]), UsageError, "NAME=VALUE");
  assertThrows(() => parseBuildOtaArgs(["--move-filesystem-to", "far"]), UsageError, "0xd8000");
});

Deno.test("explainMakeFailure() names picolibc's assert.h and objects of another toolchain, and keeps other failures", () => {
  const ctx = {
    modules: [],
    boards: ["ESP8266_GENERIC"],
    board: "ESP8266_GENERIC",
    features: [],
    filesystemStart: 0xd5000,
    flashSize: 0x100000,
  };
  const failed = (lines: string[]) => new ContainerRuntimeError("'make ota' failed", 2, lines);
  const header = explainMakeFailure(
    failed([
      "In file included from ../../py/mpconfig.h:900,",
      "/usr/lib/picolibc/xtensa-lx106-elf/include/assert.h:50:6: error: conflicting types for " +
      "'__assert'; have 'void(const char *, int,  const char *)'",
    ]),
    ctx,
  );
  assertStringIncludes(header.message, "picolibc's assert.h before newlib's");
  assertStringIncludes(header.message, "-isystem /usr/include/newlib");
  const stale = explainMakeFailure(
    failed([
      "xtensa-lx106-elf-ld: build-GENERIC/py/nlr.o: undefined reference to `errno'",
    ]),
    ctx,
  );
  assertStringIncludes(stale.message, "run again with --clean");
  const other = failed(["main.c:1:1: error: expected ';'"]);
  assertEquals(explainMakeFailure(other, ctx), other);
  const over = explainMakeFailure(
    failed([
      "xtensa-lx106-elf-ld: region `irom0_0_seg' overflowed by 2788 bytes",
    ]),
    ctx,
  );
  assertStringIncludes(over.message, "overflowed by 2788 bytes");
  assertStringIncludes(over.message, "--move-filesystem-to 0xd6000");
});
