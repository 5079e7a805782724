/**
 * `yaota TASK …`, the one command: the same tasks, flags and help as `deno task TASK`,
 * `--version`, and installed as the README says (`deno install`, `deno compile`).
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { hermeticEnv, ROOT, type TaskResult, tempDir, VECTORS } from "../_helpers.ts";
import { REPOSITORY_TASKS, TASKS } from "../../yaota.ts";
import { VERSION } from "../../lib/cli/version.ts";
import { startVirtualDevice } from "../../lib/sim/virtual_device.ts";
import { simTaskArgs } from "../../lib/sim/sim_process.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { equalBytes } from "../../lib/_bytes.ts";
import { buildEnv, makeFakeMicroPythonTree, makeFakeYaotaTree } from "../fixtures/fake_trees.ts";
import { parseIromSegment } from "../../lib/build/linker_script.ts";
import { join } from "node:path";
import { compileArgs } from "../../tasks/compile.ts";
import { fromFileUrl } from "../../lib/_paths.ts";
import { pathToFileURL } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };

const decoder = new TextDecoder();

async function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<TaskResult> {
  const out = await new Deno.Command(command, {
    args,
    cwd: options.cwd ?? ROOT,
    env: options.clearEnv
      ? { NO_COLOR: "1", ...options.env }
      : { ...hermeticEnv(), NO_COLOR: "1", ...options.env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** `yaota ARGS` from the checkout, as `deno run -A yaota.ts ARGS`. */
const yaota = (args: string[], cwd?: string) =>
  run(Deno.execPath(), ["run", "-A", `${ROOT}yaota.ts`, ...args], { cwd });

/** `deno task -q NAME ARGS`, as the README shows it. */
const denoTask = (name: string, args: string[]) =>
  run(Deno.execPath(), ["task", "-q", name, ...args]);

async function gitCommit(): Promise<string> {
  const r = await run("git", ["-C", ROOT, "rev-parse", "--short=12", "HEAD"]);
  assertEquals(r.code, 0, r.stderr);
  return r.stdout.trim();
}

Deno.test("yaota --version prints deno.json's version and the checkout's commit", async () => {
  assertMatch(VERSION, /^\d+\.\d+\.\d+$/);
  const r = await yaota(["--version"]);
  assertEquals(r.code, 0, r.stderr);
  const commit = await gitCommit();
  assertMatch(
    r.stdout,
    new RegExp(
      `^yaota ${VERSION.replaceAll(".", "\\.")} \\(commit ${commit}(-dirty)?, deno ${
        Deno.version.deno.replaceAll(".", "\\.")
      }, ${Deno.build.target}\\)\\n$`,
    ),
  );
});

Deno.test("yaota help lists every task with its one-line summary", async () => {
  const r = await yaota(["help"]);
  assertEquals(r.code, 0, r.stderr);
  for (const [name, load] of Object.entries(TASKS)) {
    const { spec } = await load();
    assertEquals(spec.name, name, "a task's spec names it as the table does");
    assertMatch(r.stdout, new RegExp(`^  ${name} +${RegExp.escape(spec.summary)}$`, "m"));
  }
  assertEquals((await yaota(["--help"])).stdout, r.stdout);
  assertEquals((await yaota([])).stdout, r.stdout);
});

Deno.test("yaota TASK --help prints the same text as deno task TASK --help, for every task", async () => {
  for (const name of Object.keys(TASKS)) {
    const [mine, theirs] = await Promise.all([yaota([name, "--help"]), denoTask(name, ["--help"])]);
    assertEquals([mine.code, theirs.code], [0, 0], `${name}: ${mine.stderr}${theirs.stderr}`);
    assertEquals(mine.stdout, theirs.stdout, name);
    assertStringIncludes(mine.stdout, `Usage: yaota ${name} [options]`);
    assertStringIncludes(mine.stdout, `       deno task ${name} [options]`);
  }
  assertEquals((await yaota(["help", "deploy"])).stdout, (await yaota(["deploy", "-h"])).stdout);
});

Deno.test("yaota with an unknown task or no task exits 2 and lists the tasks", async () => {
  const r = await yaota(["deplyo", "--ip", "1.2.3.4"]);
  assertEquals(r.code, 2);
  assertEquals(r.stdout, "");
  assert(
    r.stderr.startsWith("error: unknown task 'deplyo' (did you mean 'deploy'?)\n"),
    r.stderr,
  );
  assertStringIncludes(r.stderr, "\nTasks:\n");
  assertMatch(r.stderr, /^ {2}deploy +Send firmware/m);
  const option = await yaota(["--ip", "1.2.3.4"]);
  assertEquals(option.code, 2);
  assert(option.stderr.startsWith("error: unknown option '--ip': name a task first\n"));
  const help = await yaota(["help", "nope"]);
  assertEquals([help.code, help.stderr.split("\n")[0]], [2, "error: unknown task 'nope'"]);
});

Deno.test("yaota runs the task with its flags and names itself in hints", async () => {
  const bad = await yaota(["deploy", "--ip", "127.0.0.1", "--device-port", "x"]);
  assertEquals(bad.code, 2);
  assertEquals(
    bad.stderr,
    "error: deploy: --device-port expects a port number from 1 to 65535, got 'x'\n" +
      "Run 'yaota deploy --help' for the options.\n",
  );
  const inspect = await yaota(["inspect", `${VECTORS}fw-10000.bin`, "--json"]);
  const same = await denoTask("inspect", [`${VECTORS}fw-10000.bin`, "--json"]);
  assertEquals([inspect.code, inspect.stdout], [same.code, same.stdout]);
  assert(inspect.stdout.startsWith("{"), inspect.stdout);
});

Deno.test("every deno.json task is in yaota's table, and every table entry in deno.json", async () => {
  const tasks = denoJson.tasks as Record<string, string>;
  const inJson = Object.keys(tasks).filter((t) => !REPOSITORY_TASKS.includes(t)).sort();
  assertEquals(Object.keys(TASKS).sort(), inJson);
  for (const name of REPOSITORY_TASKS) assert(name in tasks, `${name} is a deno.json task`);
  const compile = await denoTask("compile", ["--help"]);
  assert(compile.stdout.includes("\nUsage: deno task compile [options]\n"), compile.stdout);
  assert(!compile.stdout.includes("yaota compile"), "not a yaota command");
  // Each runs the file the table loads: `deno task X` and `yaota X` are one program.
  for (const [name, load] of Object.entries(TASKS)) {
    const file = /tasks\/(\w+)\.ts/.exec(tasks[name]!)?.[1];
    assert(file, `${name}: ${tasks[name]}`);
    assertStringIncludes(load.toString(), `./tasks/${file}.ts`, name);
  }
});

// ---- installed as the README says -------------------------------------------------------

const README = Deno.readTextFileSync(`${ROOT}README.md`);

/** The README's `deno install` lines, as argv (after `deno`). */
function installLines(): string[][] {
  const lines = README.split("\n").filter((l) => l.startsWith("deno install -g "));
  return lines.map((l) => l.replace(/\s+#.*$/, "").trim().split(/\s+/).slice(1));
}

/** Deploys a sample image with `yaota` to a virtual device; returns whether the flash holds it. */
async function deployWith(
  command: string,
  cwd: string,
): Promise<TaskResult & { held: boolean; size: number }> {
  const pem = Deno.readTextFileSync(`${VECTORS}test-key-512.pem`);
  const key = `${cwd}/priv.key`;
  await Deno.writeTextFile(key, pem, { mode: 0o600 });
  const image = makeSampleFirmware({ size: 40 * 1024 });
  await Deno.writeFile(`${cwd}/fw.bin`, image);
  await using device = await startVirtualDevice({
    modulus: parsePrivateKey(pem).modulus,
    flash: new Uint8Array(0x100000).fill(0xff),
    profile: PROFILES.instant,
    link: { delayMs: 1 },
  });
  const r = await run(command, [
    "deploy",
    "--ip",
    "127.0.0.1",
    "--port",
    String(device.port),
    "--key",
    key,
    "--boot-check-window",
    "1",
    "--json",
    "fw.bin",
  ], { cwd });
  const held = equalBytes(device.model.flash.subarray(0x3c000, 0x3c000 + image.length), image);
  return { ...r, held, size: image.length };
}

Deno.test("the README's install line from a checkout gives a yaota that deploys", async () => {
  const line = installLines().find((l) => l.includes("--config"));
  assert(line, "the README shows a `deno install -g` line for a checkout");
  assertEquals(line, [
    "install",
    "-g",
    "-A",
    "-f",
    "-n",
    "yaota",
    "--config",
    "deno.json",
    "--lock",
    "deno.lock",
    "yaota.ts",
  ]);
  await using root = await tempDir();
  const install = await run(Deno.execPath(), line, { env: { DENO_INSTALL_ROOT: root.path } });
  assertEquals(install.code, 0, install.stderr);
  const bin = `${root.path}/bin/yaota`;

  const version = await run(bin, ["--version"], { cwd: root.path });
  assertEquals(version.code, 0, version.stderr);
  assert(
    version.stdout.startsWith(`yaota ${VERSION} (commit ${await gitCommit()}`),
    version.stdout,
  );
  const help = await run(bin, ["deploy", "--help"], { cwd: root.path });
  assertEquals([help.code, help.stdout], [0, (await denoTask("deploy", ["--help"])).stdout]);

  const deployed = await deployWith(bin, root.path);
  assertEquals(deployed.code, 0, deployed.stderr);
  assertEquals(JSON.parse(deployed.stdout).bytes, deployed.size);
  assert(deployed.held, "the device's flash holds the image at 0x3c000");
});

Deno.test("the README's install line from a URL works against the files served over HTTP", async () => {
  const line = installLines().find((l) => l.includes("--import-map"));
  assert(line, "the README shows a `deno install -g` line for a URL");
  // The repository's files as a raw-file host serves them, on 127.0.0.1.
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    try {
      const body = await Deno.readFile(ROOT + new URL(req.url).pathname.slice(1));
      return new Response(body, { headers: { "content-type": "text/plain; charset=utf-8" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    await using root = await tempDir();
    // `"$V/deno.json"`: the shell's quotes and variable, as the README writes them.
    const args = line.map((a) => a.replace(/^"?\$V(.*?)"?$/, `${base}$1`));
    const install = await run(Deno.execPath(), args, {
      cwd: root.path,
      env: { DENO_INSTALL_ROOT: root.path },
    });
    assertEquals(install.code, 0, install.stderr);
    const bin = `${root.path}/bin/yaota`;
    const version = await run(bin, ["--version"], { cwd: root.path });
    assertEquals(
      version.stdout,
      `yaota ${VERSION} (deno ${Deno.version.deno}, ${Deno.build.target})\n`,
    );
    const help = await run(bin, ["deploy", "--help"], { cwd: root.path });
    assertEquals([help.code, help.stdout], [0, (await denoTask("deploy", ["--help"])).stdout]);
    // No clone behind the command: it names only the URL, and reads its files from there
    // (the sample project needs templates/ota.py).
    assert(!(await Deno.readTextFile(bin)).includes(ROOT), "the command names the checkout");
    const sample = await run(bin, ["demo", "--keep", "sample"], { cwd: root.path });
    assertEquals(sample.code, 0, sample.stderr);
    assertStringIncludes(
      sample.stdout,
      "yaota sim --config sample/ota.config.json --device kitchen",
    );
    await buildsWith(bin, root.path, base);
    // `bench`'s device process, started from the same URLs.
    const sim = new Deno.Command(Deno.execPath(), {
      args: [
        ...simTaskArgs(new URL(`${base}/lib/sim/sim_process.ts`), false),
        "--key",
        `${VECTORS}test-key-512.pem`,
        "--listen-port",
        "0",
        "--json",
      ],
      cwd: root.path,
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).spawn();
    const reader = sim.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("\n")) {
      const chunk = await reader.read();
      if (chunk.done) break;
      out += chunk.value;
    }
    sim.kill();
    await reader.cancel();
    await sim.status;
    assertEquals(JSON.parse(out.split("\n")[0]!).event, "listening", out);
  } finally {
    await server.shutdown();
  }
});

/**
 * `build-ota` (a dry run, then a native build with the fake make) and `build-bootloader
 * --dry-run` with `yaota` on fake trees: both read their templates from `templates` (a
 * folder path or a URL) and write or list what they render from them.
 */
async function buildsWith(command: string, dir: string, templates: string): Promise<void> {
  const env = buildEnv(join(dir, "docker.log"));
  const mp = await makeFakeMicroPythonTree(dir, "ota-variant");
  const ota = await run(command, ["build-ota", "--micropython", mp.root, "--dry-run"], {
    cwd: dir,
    env,
  });
  assertEquals(ota.code, 0, ota.stderr);
  for (
    const line of [
      "would write linker script ports/esp8266/boards/esp8266_ota.ld: irom0_0_seg at 0x40245000",
      `would copy ${templates}/templates/ota.py to ports/esp8266/modules/ota.py`,
      "dry run: nothing was changed",
    ]
  ) assertStringIncludes(ota.stdout, line);
  assertEquals(await Deno.readTextFile(mp.ld), mp.ldOriginal);
  const built = await run(command, ["build-ota", "--micropython", mp.root, "--runtime", "native"], {
    cwd: dir,
    env,
  });
  assertEquals(built.code, 0, built.stderr);
  const manifest = JSON.parse(await Deno.readTextFile(join(dir, "dist", "manifest.json")));
  const frozen = manifest.modules.find((m: { name: string }) => m.name === "ota.py");
  assertEquals(frozen.source, `${templates}/templates/ota.py`);
  const copied = await Deno.readTextFile(join(mp.port, "modules", "ota.py"));
  assertStringIncludes(copied, `\nBUILD = "${manifest.build.id}"\n`);
  assertStringIncludes(copied, "\ndef start():\n");
  assertEquals(parseIromSegment(await Deno.readTextFile(mp.ld)), { org: 0x40245000, len: 0x8f000 });
  const yaota = await makeFakeYaotaTree(dir, true, { shape: "upstream" });
  const boot = await run(command, [
    "build-bootloader",
    "--yaota8266",
    yaota.root,
    "--key",
    `${VECTORS}test-key-512.pem`,
    "--dry-run",
  ], { cwd: dir, env });
  assertEquals(boot.code, 0, boot.stderr);
  for (
    const line of [
      "would write config.h\n",
      '    + #define MODULUS "\\xd4\\x61\\x2f\\x41',
      "would write boot8266/boot8266.c: adds the RTC trigger",
      "static bool check_rtc_trigger(void)",
      "would write boot8266/etshal.h: declares uart_div_modify() without parameters",
    ]
  ) assertStringIncludes(boot.stdout, line);
  assertEquals(
    await Deno.readTextFile(yaota.boot8266C),
    yaota.original["boot8266/boot8266.c"],
  );
}

// ---- compiled ----------------------------------------------------------------------------

/**
 * `deno compile` needs denort, which it downloads: only where that can work (CI's release
 * job sets YAOTA_TEST_COMPILE=1) or where DENORT_BIN names one.
 */
const canCompile = Deno.env.get("DENORT_BIN") !== undefined ||
  Deno.env.get("YAOTA_TEST_COMPILE") === "1";

Deno.test({
  name: "deno task compile: the binary runs --version and the demo with no Deno on PATH" +
    (canCompile ? "" : " (skipped: needs denort; set DENORT_BIN or YAOTA_TEST_COMPILE=1)"),
  ignore: !canCompile,
  fn: async () => {
    await using dir = await tempDir();
    const bin = `${dir.path}/yaota`;
    const built = await denoTask("compile", ["--out", bin]);
    assertEquals(built.code, 0, built.stderr);
    const env = { HOME: dir.path, TMPDIR: dir.path, PATH: "/nonexistent" };
    const version = await run(bin, ["--version"], { cwd: dir.path, env, clearEnv: true });
    assertEquals(version.code, 0, version.stderr);
    assert(version.stdout.startsWith(`yaota ${VERSION} (commit ${await gitCommit()}`));
    const demo = await run(bin, ["demo", "--profile", "instant", "--bits", "512"], {
      cwd: dir.path,
      env,
      clearEnv: true,
    });
    assertEquals(demo.code, 0, demo.stderr);
    assertStringIncludes(demo.stdout, "device would boot: yes");
  },
});

Deno.test("deno task compile includes every file the code reads beside itself", async () => {
  const args = compileArgs(`${ROOT}yaota.ts`, "out");
  const included = args.flatMap((a, i) => args[i - 1] === "--include" ? [a] : []);
  const shipped: string[] = [];
  for (const top of ["lib", "tasks"]) {
    for await (const file of walkTs(join(ROOT, top))) {
      if (file.includes("/lib/bench/")) continue; // repository-only: falls back without them
      const text = await Deno.readTextFile(file);
      const at = /new URL\(\s*[`"]([^`"$]+)[^`"]*[`"],\s*import\.meta\.url\)/g;
      for (const m of text.matchAll(at)) {
        const path = fromFileUrl(new URL(m[1]!, pathToFileURL(file)));
        if (path === ROOT || path === `${ROOT}yaota.ts`) continue; // the checkout; the entry
        if (path.endsWith(".ts") && path.includes("/tasks/")) continue; // run by `deno run`
        shipped.push(path);
      }
    }
  }
  assert(shipped.some((p) => p.endsWith("templates/config.h")), shipped.join(", "));
  for (const path of shipped) {
    assert(
      included.some((i) => path === i || path.startsWith(`${i}/`)),
      `${path} is read at run time but not in deno compile's --include list`,
    );
  }
});

async function* walkTs(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walkTs(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

Deno.test("deno task compile without denort says how to get one", async () => {
  await using dir = await tempDir();
  const r = await run(Deno.execPath(), ["task", "-q", "compile", "--out", `${dir.path}/y`], {
    env: { DENORT_BIN: `${dir.path}/no-denort` },
  });
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, "error: deno compile failed (exit code 1):");
  assertStringIncludes(r.stderr, `Could not find denort at '${dir.path}/no-denort'`);
  assertStringIncludes(
    r.stderr,
    `with no network access, set DENORT_BIN to a denort binary of Deno ${Deno.version.deno}.`,
  );
});
