import { assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import { buildEnv, makeFakeMicroPythonTree, userArg } from "../fixtures/fake_trees.ts";
import { resolveBuildOtaOptions } from "../../lib/build/build_ota.ts";
import { loadConfig, parseConfig } from "../../lib/config/config.ts";
import { ConfigError } from "../../lib/errors.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { join } from "node:path";

const noFlags = { modules: [], dryRun: false, force: false };

Deno.test("resolveBuildOtaOptions() takes flags over the config over the defaults", () => {
  assertEquals(resolveBuildOtaOptions(noFlags, {}, "/work"), {
    tree: "/work/micropython",
    modules: [],
    runtime: "docker",
    image: "larsks/esp-open-sdk",
    board: undefined,
    appOffset: 0x3c000,
    flashSize: 0x100000,
    out: "/work/dist",
    dryRun: false,
    force: false,
    clean: false,
    makeVars: [],
  });
  const config = {
    path: "/cfg/ota.config.json",
    micropython: "/cfg/mp",
    modules: ["/cfg/uartremote.py"],
    runtime: "native" as const,
    image: "my/sdk",
    appOffset: 0x40000,
    out: "/cfg/out",
  };
  const fromConfig = resolveBuildOtaOptions(noFlags, config, "/work");
  assertEquals([
    fromConfig.tree,
    fromConfig.modules,
    fromConfig.runtime,
    fromConfig.image,
    fromConfig.appOffset,
    fromConfig.out,
  ], [
    "/cfg/mp",
    ["/cfg/uartremote.py"],
    "native",
    "my/sdk",
    0x40000,
    "/cfg/out",
  ]);
  const flags = {
    ...noFlags,
    micropython: "mp2",
    modules: ["a.py"],
    runtime: "podman" as const,
    appOffset: 0x3c000,
    out: "o",
  };
  const fromFlags = resolveBuildOtaOptions(flags, config, "/work");
  assertEquals([
    fromFlags.tree,
    fromFlags.modules,
    fromFlags.runtime,
    fromFlags.appOffset,
    fromFlags.out,
  ], [
    "/work/mp2",
    ["/work/a.py"],
    "podman",
    0x3c000,
    "/work/o",
  ]);
});

Deno.test("parseConfig() checks appOffset with the flags' own rule, naming the file and key", () => {
  assertEquals(
    parseConfig({ appOffset: "0x40000" }, "/cfg", "/cfg/ota.config.json").appOffset,
    0x40000,
  );
  assertEquals(
    parseConfig({ appOffset: 0x3c000 }, "/cfg", "/cfg/ota.config.json").appOffset,
    0x3c000,
  );
  assertThrows(
    () => parseConfig({ appOffset: "0x3c800" }, "/cfg", "/cfg/ota.config.json"),
    ConfigError,
    "/cfg/ota.config.json: appOffset: expected a 4 KiB-aligned flash offset from 0x10000 to 0xbb000, " +
      'such as 0x3c000, got "0x3c800" (0x3c800 is not a multiple of 0x1000: the nearest are 0x3c000 and 0x3d000)',
  );
  assertThrows(
    () => parseConfig({ appOffset: 0x1000 }, "/cfg", "/cfg/ota.config.json"),
    ConfigError,
    "got 4096 (below 0x10000, where yaota8266 itself lies)",
  );
  assertThrows(
    () => parseConfig({ devices: [{ name: "a", ip: "10.0.0.1", port: -1 }] }, "/cfg", "/c.json"),
    ConfigError,
    "/c.json: devices[0].port: expected a port number from 1 to 65535, got -1",
  );
});

/** A fake tree, a module and an ota.config.json (in `sub/` when `where` says so). */
async function setup(dir: string, config: Record<string, unknown>, where = ".") {
  const tree = await makeFakeMicroPythonTree(dir, "make-ota");
  await Deno.writeTextFile(join(dir, "uartremote.py"), "X = 1\n");
  await Deno.writeTextFile(join(dir, "other.py"), "Y = 2\n");
  await Deno.mkdir(join(dir, where), { recursive: true });
  const path = join(dir, where, "ota.config.json");
  await Deno.writeTextFile(path, JSON.stringify(config));
  return { tree, path, env: buildEnv(join(dir, "docker.log")) };
}

Deno.test("build-ota takes its defaults from ./ota.config.json, so it needs no flags", async () => {
  await using dir = await tempDir();
  const { tree, env } = await setup(dir.path, {
    micropython: "micropython",
    modules: ["uartremote.py"],
    runtime: "native",
    appOffset: "0x40000",
  });
  const r = await runTaskFile("build_ota", ["--dry-run"], { cwd: dir.path, env });
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(
    r.stdout,
    "would write linker script ports/esp8266/boards/esp8266_ota.ld: irom0_0_seg at 0x40249000",
  );
  assertStringIncludes(
    r.stdout,
    `would copy ${join(dir.path, "uartremote.py")} to ports/esp8266/modules/uartremote.py\n`,
  );
  assertStringIncludes(r.stdout, `would run in ${tree.port}: make ota\n`);
});

Deno.test("build-ota flags override ota.config.json", async () => {
  await using dir = await tempDir();
  const { tree, env } = await setup(dir.path, {
    micropython: "micropython",
    modules: ["uartremote.py"],
    runtime: "native",
    appOffset: "0x40000",
    image: "my/esp-sdk",
  });
  const r = await runTaskFile(
    "build_ota",
    ["--dry-run", "--runtime", "docker", "--app-offset", "0x3c000", "--module", "other.py"],
    { cwd: dir.path, env },
  );
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "irom0_0_seg at 0x40245000");
  assertStringIncludes(
    r.stdout,
    `would copy ${join(dir.path, "other.py")} to ports/esp8266/modules/other.py\n`,
  );
  assertEquals(r.stdout.includes("uartremote.py"), false, "--module replaces the config's modules");
  assertStringIncludes(
    r.stdout,
    `would run: docker run --rm -v ${tree.root}:${tree.root} -w ${tree.port} -u ${userArg()} my/esp-sdk make ota\n`,
  );
});

Deno.test("--config FILE names another file, and paths in it are relative to it", async () => {
  await using dir = await tempDir();
  const { tree, path, env } = await setup(dir.path, {
    micropython: "../micropython",
    modules: ["../uartremote.py"],
    runtime: "native",
  }, "settings");
  const r = await runTaskFile("build_ota", ["--dry-run", "--config", path], { cwd: dir.path, env });
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(
    r.stdout,
    `would copy ${join(dir.path, "uartremote.py")} to ports/esp8266/modules/uartremote.py\n`,
  );
  assertStringIncludes(r.stdout, `would run in ${tree.port}: make ota\n`);
  const missing = await runTaskFile("build_ota", ["--config", "nowhere.json"], {
    cwd: dir.path,
    env,
  });
  assertEquals(missing.code, 1);
  assertStringIncludes(
    missing.stderr,
    `error: cannot read the configuration file '${join(dir.path, "nowhere.json")}'`,
  );
});

Deno.test("every task refuses an unknown key in ota.config.json, naming it", async () => {
  await using dir = await tempDir();
  const { path, env } = await setup(dir.path, { micropython: "micropython", runtim: "native" });
  const image = join(dir.path, "fw.bin");
  await Deno.writeFile(image, makeSampleFirmware());
  for (
    const [task, args] of [
      ["build_ota", ["--dry-run"]],
      ["build_bootloader", ["--dry-run", "--key", join(VECTORS, "test-key-512.pem")]],
      ["inspect", [image]],
    ] as const
  ) {
    const r = await runTaskFile(task, [...args], { cwd: dir.path, env });
    assertEquals(r.code, 1, `${task}: ${r.stderr}`);
    assertStringIncludes(
      r.stderr,
      `error: ${path}: unknown key 'runtim' (did you mean 'runtime'?) (known: $schema, micropython, modules, runtime,`,
    );
  }
});

Deno.test("build-ota and build-bootloader refuse a bad value in ota.config.json, naming it", async () => {
  await using dir = await tempDir();
  const { path, env } = await setup(dir.path, {});
  const cases: [Record<string, unknown>, string, string][] = [
    [
      { runtime: "lxc" },
      "build_ota",
      `${path}: runtime: expected one of docker, podman, native, got "lxc"`,
    ],
    [{ modules: "uartremote.py" }, "build_ota", `${path}: modules: expected a list`],
    [
      { appOffset: "0x3c800" },
      "build_ota",
      `${path}: appOffset: expected a 4 KiB-aligned flash offset from 0x10000 to 0xbb000, such as 0x3c000, got "0x3c800"`,
    ],
    [
      { bootloader: { gpioMask: 70000 } },
      "build_bootloader",
      `${path}: bootloader.gpioMask: expected a whole number from 0 to 65535, got 70000`,
    ],
    [{ bootloader: { baud: 9600 } }, "build_bootloader", `${path}: bootloader: unknown key 'baud'`],
  ];
  for (const [config, task, message] of cases) {
    await Deno.writeTextFile(path, JSON.stringify(config));
    const r = await runTaskFile(
      task,
      ["--dry-run", "--key", join(VECTORS, "test-key-512.pem")].slice(
        0,
        task === "build_ota" ? 1 : 3,
      ),
      { cwd: dir.path, env },
    );
    assertEquals(r.code, 1, `${JSON.stringify(config)}: ${r.stderr}`);
    assertStringIncludes(r.stderr, `error: ${message}`);
  }
  await Deno.writeTextFile(path, "{ runtime: docker }");
  const notJson = await runTaskFile("build_ota", ["--dry-run"], { cwd: dir.path, env });
  assertEquals(notJson.code, 1);
  assertStringIncludes(notJson.stderr, `error: '${path}' is not valid JSON`);
});

Deno.test("parseConfig() says an empty device name must not be empty, and names a wrong type", () => {
  const devices = (name: unknown) => ({ devices: [{ name, ip: "10.0.0.7" }] });
  assertThrows(
    () => parseConfig(devices(""), "/", "ota.config.json"),
    ConfigError,
    "ota.config.json: devices[0].name: must not be empty",
  );
  assertThrows(
    () => parseConfig(devices("  "), "/", "ota.config.json"),
    ConfigError,
    "ota.config.json: devices[0].name: must not be empty (only spaces)",
  );
  assertThrows(
    () => parseConfig(devices(7), "/", "ota.config.json"),
    ConfigError,
    "ota.config.json: devices[0].name: expected a string, got number",
  );
});

Deno.test("loadConfig() accepts a file that starts with a UTF-8 byte order mark", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "ota.config.json");
  await Deno.writeTextFile(
    file,
    '\uFEFF{"ip": "10.0.0.7", "devices": [{"name": "kitchen", "ip": "10.0.0.8"}]}',
  );
  const config = await loadConfig(file);
  assertEquals(config.ip, "10.0.0.7");
  assertEquals(config.devices?.[0]?.name, "kitchen");
});
