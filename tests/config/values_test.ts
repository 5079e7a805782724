import { assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { runTaskFile, tempDir } from "../_helpers.ts";
import { makeFakeYaotaTree, YAOTA_CONFIG_EXAMPLE } from "../fixtures/fake_trees.ts";
import { parseCommandArgs } from "../../lib/cli/cli.ts";
import { ConfigError, UsageError } from "../../lib/errors.ts";
import { findDuplicateKey } from "../../lib/config/json_duplicates.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import {
  parseAppOffset,
  parseFlashSize,
  parsePort,
  parseSeconds,
} from "../../lib/config/values.ts";
import { join } from "node:path";

const ALIGNED = "a 4 KiB-aligned flash offset from 0x10000 to 0xbb000, such as 0x3c000";
const UNALIGNED_WHY = "0x3c001 is not a multiple of 0x1000: the nearest are 0x3c000 and 0x3d000";

Deno.test("parseAppOffset() takes an aligned offset from a flag's text, a JSON number or string", () => {
  assertEquals(parseAppOffset("0x3c000", { flag: "app-offset" }), 0x3c000);
  assertEquals(parseAppOffset("240K", { flag: "app-offset" }), 0x3c000);
  assertEquals(parseAppOffset("0X3C000", { flag: "app-offset" }), 0x3c000);
  assertEquals(parseAppOffset(0x40000, { file: "c.json", key: "appOffset" }), 0x40000);
  assertEquals(parseAppOffset("0x10000", { flag: "app-offset" }), 0x10000);
  assertEquals(parseAppOffset("0xbb000", { flag: "app-offset" }), 0xbb000);
});

Deno.test("parseAppOffset() refuses unaligned, low, high and non-numbers, saying which rule", () => {
  const flag = { flag: "app-offset" };
  assertThrows(
    () => parseAppOffset("0x3c001", flag),
    UsageError,
    `--app-offset expects ${ALIGNED}, got '0x3c001' (${UNALIGNED_WHY})`,
  );
  assertThrows(
    () => parseAppOffset("0xf000", flag),
    UsageError,
    `--app-offset expects ${ALIGNED}, got '0xf000' (below 0x10000, where yaota8266 itself lies)`,
  );
  assertThrows(
    () => parseAppOffset("0xbc000", flag),
    UsageError,
    `--app-offset expects ${ALIGNED}, got '0xbc000' (above 0xbb000, the irom would not fit below 0xd4000)`,
  );
  assertThrows(() => parseAppOffset("lots", flag), UsageError, `expects ${ALIGNED}, got 'lots'`);
  assertThrows(
    () => parseAppOffset(245761.5, { file: "c.json", key: "appOffset" }),
    ConfigError,
    `c.json: appOffset: expected ${ALIGNED}, got 245761.5`,
  );
  assertThrows(
    () => parseAppOffset(true, { file: "c.json", key: "appOffset" }),
    ConfigError,
    `c.json: appOffset: expected ${ALIGNED}, got true`,
  );
});

Deno.test("parsePort() and parseSeconds() bound their values, naming the source", () => {
  assertEquals(parsePort("8266", { flag: "port" }), 8266);
  assertEquals(parsePort("0", { flag: "port" }, { allowZero: true }), 0);
  for (const bad of ["-1", "0", "65536", "1.5", "x", ""]) {
    assertThrows(
      () => parsePort(bad, { flag: "port" }),
      UsageError,
      `--port expects a port number from 1 to 65535, got '${bad}'`,
    );
  }
  assertThrows(
    () => parsePort(70000, { file: "c.json", key: "devices[1].port" }),
    ConfigError,
    "c.json: devices[1].port: expected a port number from 1 to 65535, got 70000",
  );
  assertEquals(parseSeconds("2.5", { flag: "timeout" }, 3600), 2500);
  assertEquals(parseSeconds("3600", { flag: "timeout" }, 3600), 3_600_000);
  for (const bad of ["1e9", "3601", "0", "-2", "soon", "Infinity"]) {
    assertThrows(
      () => parseSeconds(bad, { flag: "timeout" }, 3600),
      UsageError,
      `--timeout expects a time in seconds, more than 0 and at most 3600, got '${bad}'`,
    );
  }
});

Deno.test("parseCommandArgs() lets a value start with a dash, so the value's own check answers", () => {
  const spec = {
    name: "t",
    summary: "",
    options: {
      port: { type: "string" as const, short: "p", help: "" },
      json: { type: "boolean" as const, help: "" },
    },
  };
  assertEquals(parseCommandArgs(spec, ["--port", "-1"]).values.port, "-1");
  assertEquals(parseCommandArgs(spec, ["-p", "-.5"]).values.port, "-.5");
  assertThrows(
    () => parseCommandArgs(spec, ["--port", "--json"]),
    UsageError,
    "--port needs a value, got the option '--json'",
  );
  assertThrows(() => parseCommandArgs(spec, ["--port"]), UsageError, "--port needs a value");
  assertThrows(() => parseCommandArgs(spec, ["--bogus"]), UsageError, "unknown option '--bogus'");
  assertThrows(
    () => parseCommandArgs(spec, ["--json=1"]),
    UsageError,
    "--json takes no value (it is a switch: leave out '=…')",
  );
});

Deno.test("findDuplicateKey() finds a key set twice in one object, with its path and lines", () => {
  assertEquals(findDuplicateKey('{"a": 1, "b": {"a": 2}, "c": [{"a": 1}, {"a": 2}]}'), undefined);
  assertEquals(findDuplicateKey('{\n "appOffset": "0x3c000",\n "appOffset": "0x40000"\n}'), {
    path: "appOffset",
    firstLine: 2,
    line: 3,
  });
  assertEquals(
    findDuplicateKey('{"devices": [{"name": "a"}, {"name": "b",\n"ip": "x", "ip": "y"}]}'),
    { path: "devices[1].ip", firstLine: 2, line: 2 },
  );
  // Quotes, braces and escaped quotes inside strings are not structure.
  assertEquals(findDuplicateKey('{"a\\"{": "}\\"", "b": "[,", "a\\"{x": 1}'), undefined);
});

/** Every task that takes the app offset, with the arguments it needs to get that far. */
function tasksWithAppOffset(image: string): [string, string[]][] {
  return [
    ["inspect", [image]],
    ["verify", []],
    ["deploy", ["--ip", "127.0.0.1"]],
    ["flash", ["--serial", "/dev/null", "--dry-run"]],
    ["sign", [image]],
    ["build_ota", ["--dry-run"]],
    ["build_bootloader", ["--dry-run"]],
    ["sim", ["--once"]],
  ];
}

Deno.test("every task refuses an unaligned --app-offset with exit 2 and one message", async () => {
  await using dir = await tempDir();
  const image = join(dir.path, "fw.bin");
  await Deno.writeFile(image, makeSampleFirmware());
  for (const [task, args] of tasksWithAppOffset(image)) {
    const r = await runTaskFile(task, [...args, "--app-offset", "0x3c001"], { cwd: dir.path });
    assertEquals(r.code, 2, `${task}: ${r.stderr}`);
    assertStringIncludes(
      r.stderr,
      `error: ${
        task.replace("_", "-")
      }: --app-offset expects ${ALIGNED}, got '0x3c001' (${UNALIGNED_WHY})\n`,
      task,
    );
  }
});

Deno.test("every task refuses an unaligned appOffset in ota.config.json, naming the file and key", async () => {
  await using dir = await tempDir();
  const image = join(dir.path, "fw.bin");
  await Deno.writeFile(image, makeSampleFirmware());
  const config = join(dir.path, "ota.config.json");
  await Deno.writeTextFile(config, '{ "appOffset": "0x3c001" }\n');
  for (const [task, args] of [...tasksWithAppOffset(image), ["keygen", []] as [string, string[]]]) {
    const r = await runTaskFile(task, args, { cwd: dir.path });
    assertEquals(r.code, 1, `${task}: ${r.stderr}`);
    assertStringIncludes(
      r.stderr,
      `error: ${config}: appOffset: expected ${ALIGNED}, got "0x3c001" (${UNALIGNED_WHY})\n`,
      task,
    );
    assertEquals(r.stdout, "", `${task} did nothing`);
  }
});

Deno.test("deploy, trigger and sim refuse a bad --device-port / --listen-port with their own words (exit 2)", async () => {
  const cases: [string, string[], string][] = [
    [
      "deploy",
      ["--ip", "127.0.0.1", "--device-port", "-1"],
      "--device-port expects a port number from 1 to 65535, got '-1'",
    ],
    [
      "deploy",
      ["--ip", "127.0.0.1", "--device-port", "65536"],
      "--device-port expects a port number from 1 to 65535, got '65536'",
    ],
    [
      "trigger",
      ["--ip", "127.0.0.1", "--device-port", "-1"],
      "--device-port expects a port number from 1 to 65535, got '-1'",
    ],
    [
      "sim",
      ["--listen-port", "-1"],
      "--listen-port expects a port number from 0 to 65535 (0: any free port), got '-1'",
    ],
    ["deploy", ["--ip", "127.0.0.1", "--device-port"], "--device-port needs a value"],
  ];
  for (const [task, args, message] of cases) {
    const r = await runTaskFile(task, args);
    assertEquals(r.code, 2, `${task}: ${r.stderr}`);
    assertEquals(
      r.stderr,
      `error: ${task}: ${message}\nRun 'deno task ${task} --help' for the options.\n`,
    );
  }
});

Deno.test("deploy and trigger bound --timeout, saying the range (exit 2)", async () => {
  const cases: [string, string[], string][] = [
    [
      "deploy",
      ["--ip", "127.0.0.1", "--timeout", "1e9"],
      "--timeout expects a time in seconds, more than 0 and at most 3600, got '1e9'",
    ],
    [
      "deploy",
      ["--ip", "127.0.0.1", "--timeout", "-5"],
      "--timeout expects a time in seconds, more than 0 and at most 3600, got '-5'",
    ],
    [
      "deploy",
      ["--ip", "127.0.0.1", "--boot-check-window", "86400"],
      "--boot-check-window expects a time in seconds, more than 0 and at most 600, got '86400'",
    ],
    [
      "trigger",
      ["--ip", "127.0.0.1", "--timeout", "1e9"],
      "--timeout expects a time in seconds, more than 0 and at most 600, got '1e9'",
    ],
  ];
  for (const [task, args, message] of cases) {
    const r = await runTaskFile(task, args);
    assertEquals(r.code, 2, `${task}: ${r.stderr}`);
    assertStringIncludes(r.stderr, `error: ${task}: ${message}\n`);
  }
});

Deno.test("a key set twice in ota.config.json is refused, naming it and both lines", async () => {
  await using dir = await tempDir();
  const config = join(dir.path, "ota.config.json");
  await Deno.writeTextFile(
    config,
    '{\n  "appOffset": "0x3c000",\n  "ip": "10.0.0.2",\n  "appOffset": "0x40000"\n}\n',
  );
  const r = await runTaskFile("deploy", [], { cwd: dir.path });
  assertEquals(r.code, 1, r.stderr);
  assertEquals(
    r.stderr,
    `error: ${config}: the key 'appOffset' is set twice (lines 2 and 4); ` +
      "JSON would silently keep the second: remove one\n",
  );
});

Deno.test("parseFlashSize() takes the flash sizes boards have, from a flag or the config", async () => {
  assertEquals(parseFlashSize("1M", { flag: "flash-size" }), 0x100000);
  assertEquals(parseFlashSize("0x400000", { flag: "flash-size" }), 0x400000);
  assertEquals(parseFlashSize("512K", { flag: "flash-size" }), 0x80000);
  for (const bad of ["1", "3M", "32M", "big"]) {
    assertThrows(
      () => parseFlashSize(bad, { flag: "flash-size" }),
      UsageError,
      `--flash-size expects a flash size of 512K, 1M, 2M, 4M, 8M or 16M, got '${bad}'`,
    );
  }
  await using dir = await tempDir();
  await Deno.writeFile(join(dir.path, "fw.bin"), makeSampleFirmware());
  const flag = await runTaskFile("deploy", ["--ip", "127.0.0.1", "--flash-size", "1"], {
    cwd: dir.path,
  });
  assertEquals(flag.code, 2);
  assertStringIncludes(
    flag.stderr,
    "error: deploy: --flash-size expects a flash size of 512K, 1M, 2M, 4M, 8M or 16M, got '1'\n",
  );
  const config = join(dir.path, "ota.config.json");
  await Deno.writeTextFile(config, '{ "flashSize": "3M" }');
  const file = await runTaskFile("inspect", ["fw.bin"], { cwd: dir.path });
  assertEquals(file.code, 1);
  assertEquals(
    file.stderr,
    `error: ${config}: flashSize: expected a flash size of 512K, 1M, 2M, 4M, 8M or 16M, got "3M"\n`,
  );
});

Deno.test("verify checks config.h's MAIN_APP_OFFSET with the same rule", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(
    join(dir.path, "config.h"),
    '#define MAIN_APP_OFFSET 0x3c001\n#define MODULUS "\\x01\\x02"\n',
  );
  const r = await runTaskFile("verify", ["--config-h", "config.h"], { cwd: dir.path });
  assertEquals(r.code, 1);
  assertStringIncludes(
    r.stdout,
    `FAIL config.h    config.h: MAIN_APP_OFFSET: expected ${ALIGNED}, got "0x3c001" (${UNALIGNED_WHY}); ` +
      "write it again with 'deno task build-bootloader'\n",
  );
});

Deno.test("build-bootloader refuses a config appOffset of 0x1000 before it touches the tree", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const config = join(dir.path, "ota.config.json");
  await Deno.writeTextFile(config, '{ "appOffset": "0x1000", "yaota8266": "yaota8266" }');
  const r = await runTaskFile("build_bootloader", ["--runtime", "native"], { cwd: dir.path });
  assertEquals(r.code, 1);
  assertEquals(
    r.stderr,
    `error: ${config}: appOffset: expected ${ALIGNED}, got "0x1000" (below 0x10000, where ` +
      "yaota8266 itself lies)\n",
  );
  assertEquals(await Deno.readTextFile(tree.configH), YAOTA_CONFIG_EXAMPLE);
});
