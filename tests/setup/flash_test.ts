import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";
import { ROOT, runTaskFile, tempDir, vectorText } from "../_helpers.ts";
import { describeSerial, flashSteps, serialSettings } from "../../lib/setup/flash.ts";
import { esptoolDialect, parseEsptoolVersion } from "../../lib/setup/esptool.ts";
import { shellQuote } from "../../lib/_shell.ts";
import { UsageError } from "../../lib/errors.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { parseFlashArgs } from "../../tasks/flash.ts";
import { makeSampleBootloader } from "../fixtures/sample_bootloader.ts";

const STAND_INS = `${ROOT}tests/stand-ins`;
const KEY_512 = parsePrivateKey(vectorText("test-key-512.pem"));
const KEY_2048 = parsePrivateKey(vectorText("test-key-2048.pem"));

const PLAN = {
  bootloader: "dist/yaota8266.bin",
  firmware: "dist/firmware-ota.bin",
  appOffset: 0x3c000,
};

Deno.test("flashSteps() spells the commands for esptool v5: erase-flash, write-flash, --flash-size", () => {
  const steps = flashSteps({
    ...PLAN,
    port: "/dev/ttyUSB0",
    baud: 230400,
    erase: true,
    dialect: "v5",
  });
  const write = ["write-flash", "--flash-mode", "dio", "--flash-size", "detect"];
  assertEquals(steps, [
    { label: "erasing the flash", args: ["--port", "/dev/ttyUSB0", "erase-flash"] },
    {
      label: "writing dist/yaota8266.bin at 0x0",
      args: ["--port", "/dev/ttyUSB0", "--baud", "230400", ...write, "0x0", "dist/yaota8266.bin"],
    },
    {
      label: "writing dist/firmware-ota.bin at 0x3c000",
      args: [
        "--port",
        "/dev/ttyUSB0",
        "--baud",
        "230400",
        ...write,
        "0x3c000",
        "dist/firmware-ota.bin",
      ],
    },
  ]);
});

Deno.test("flashSteps() spells them for esptool v4 as docs/device.md does: write_flash -fm dio --flash_size=detect", () => {
  const steps = flashSteps({ ...PLAN, port: "COM3", baud: 115200, erase: true, dialect: "v4" });
  assertEquals(steps.map((s) => s.args), [
    ["--port", "COM3", "erase_flash"],
    [
      "--port",
      "COM3",
      "--baud",
      "115200",
      "write_flash",
      "-fm",
      "dio",
      "--flash_size=detect",
      "0x0",
      "dist/yaota8266.bin",
    ],
    [
      "--port",
      "COM3",
      "--baud",
      "115200",
      "write_flash",
      "-fm",
      "dio",
      "--flash_size=detect",
      "0x3c000",
      "dist/firmware-ota.bin",
    ],
  ]);
});

Deno.test("flashSteps() passes no --port or --baud it was not given, and erases only if asked", () => {
  const steps = flashSteps({ ...PLAN, appOffset: 0x40000, erase: false, dialect: "v5" });
  assertEquals(steps.map((s) => s.args), [
    ["write-flash", "--flash-mode", "dio", "--flash-size", "detect", "0x0", "dist/yaota8266.bin"],
    [
      "write-flash",
      "--flash-mode",
      "dio",
      "--flash-size",
      "detect",
      "0x40000",
      "dist/firmware-ota.bin",
    ],
  ]);
});

Deno.test("serialSettings(): a flag, else esptool's ESPTOOL_PORT/BAUD (we pass nothing), else the config, else no port and 230400", () => {
  const env = { ESPTOOL_PORT: "/dev/ttyENV", ESPTOOL_BAUD: "921600" };
  const config = { port: "/dev/ttyCFG", baud: 460800, file: "/p/ota.config.json" };
  assertEquals(serialSettings({ port: "/dev/ttyF", baud: 115200 }, config, env), {
    port: "/dev/ttyF",
    portFrom: "--port",
    baud: 115200,
    baudFrom: "--baud",
  });
  assertEquals(serialSettings({}, config, env), {
    portFrom: "ESPTOOL_PORT",
    baudFrom: "ESPTOOL_BAUD",
  });
  assertEquals(serialSettings({}, config, {}), {
    port: "/dev/ttyCFG",
    portFrom: "/p/ota.config.json: serial.port",
    baud: 460800,
    baudFrom: "/p/ota.config.json: serial.baud",
  });
  const none = serialSettings({}, {}, {});
  assertEquals(none, { portFrom: "esptool", baud: 230400, baudFrom: "default" });
  assertEquals(
    describeSerial(none),
    "port: none given, esptool searches for the board, baud 230400 (default)",
  );
  assertEquals(
    describeSerial(serialSettings({}, {}, env)),
    "port from ESPTOOL_PORT (esptool reads it), baud from ESPTOOL_BAUD (esptool reads it)",
  );
});

Deno.test("parseEsptoolVersion() reads v4's and v5's `version` output; esptoolDialect() picks the spelling", () => {
  assertEquals(parseEsptoolVersion("esptool.py v4.7.0\n4.7.0\n"), "4.7.0");
  assertEquals(parseEsptoolVersion("esptool v5.0.2\n5.0.2\n"), "5.0.2");
  assertEquals(
    parseEsptoolVersion(
      "Warning: DEPRECATED: 'esptool.py' is deprecated.\nesptool v5.1.0\n5.1.0\n",
    ),
    "5.1.0",
  );
  assertEquals(parseEsptoolVersion("4.8.dev4\n"), "4.8.dev4");
  assertEquals(parseEsptoolVersion("command not found"), undefined);
  assertEquals(
    ["4.7.0", "5.0.2", "10.1", "4.8.dev4", undefined].map(esptoolDialect),
    ["v4", "v5", "v5", "v4", "v4"],
  );
});

Deno.test("shellQuote() quotes what a shell would split", () => {
  assertEquals(
    shellQuote(["esptool", "--port", "/dev/tty USB0", "it's", "0x0"]),
    `esptool --port '/dev/tty USB0' 'it'\\''s' 0x0`,
  );
});

Deno.test("parseFlashArgs() takes -p/--port (or --serial) and -b/--baud, both optional", () => {
  assertEquals(parseFlashArgs(["-p", "/dev/ttyUSB0", "-b", "460800"]), {
    port: "/dev/ttyUSB0",
    baud: 460800,
    keyPath: undefined,
    bootloader: undefined,
    firmware: undefined,
    appOffset: undefined,
    erase: false,
    dryRun: false,
    config: undefined,
  });
  assertEquals(parseFlashArgs(["--serial", "COM3"]).port, "COM3");
  assertEquals(parseFlashArgs(["--port=COM3", "--serial", "COM3"]).port, "COM3");
  const none = parseFlashArgs(["--erase"]);
  assertEquals(["port" in none, "baud" in none], [false, false]);
  assertThrows(
    () => parseFlashArgs(["--port", "COM3", "--serial", "COM4"]),
    UsageError,
    "--port 'COM3' and --serial 'COM4' name two ports: give one",
  );
  assertThrows(
    () => parseFlashArgs(["-p", "p", "-b", "fast"]),
    UsageError,
    "--baud expects a baud rate such as 115200 or 460800, got 'fast'",
  );
  assertThrows(
    () => parseFlashArgs(["-b", "300"]),
    UsageError,
    "--baud expects a baud rate such as 115200 or 460800, got '300'",
  );
});

interface Setup {
  bootloaderKey?: Uint8Array;
  /** The whole yaota8266.bin (default: one for `bootloaderKey` with the software trigger). */
  bootloader?: Uint8Array;
  firmware?: Uint8Array;
  config?: unknown;
}

/** A project folder with a key, dist/yaota8266.bin and dist/firmware-ota.bin. */
async function project(setup: Setup = {}) {
  const dir = await tempDir();
  await Deno.mkdir(`${dir.path}/keys`);
  await Deno.mkdir(`${dir.path}/dist`);
  await Deno.writeTextFile(`${dir.path}/keys/priv.key`, vectorText("test-key-512.pem"), {
    mode: 0o600,
  });
  await Deno.writeFile(
    `${dir.path}/dist/yaota8266.bin`,
    setup.bootloader ?? makeSampleBootloader({ modulus: setup.bootloaderKey ?? KEY_512.modulus }),
  );
  await Deno.writeFile(`${dir.path}/dist/firmware-ota.bin`, setup.firmware ?? makeSampleFirmware());
  if (setup.config) {
    await Deno.writeTextFile(`${dir.path}/ota.config.json`, JSON.stringify(setup.config));
  }
  return dir;
}

/**
 * Runs the flash task with only an esptool stand-in on PATH (`tests/stand-ins/esptool-*`);
 * returns its recorded calls. The v5 stand-in exits 2 on any deprecated spelling
 * (ESPTOOL_STRICT=1), so a warning cannot go unnoticed.
 */
async function flash(
  dir: string,
  args: string[],
  env: Record<string, string> = {},
  standIn = "esptool-v5",
) {
  const record = `${dir}/esptool-calls.txt`;
  await Deno.remove(record).catch(() => {});
  const result = await runTaskFile("flash", args, {
    cwd: dir,
    env: { PATH: `${STAND_INS}/${standIn}`, ESPTOOL_RECORD: record, ESPTOOL_STRICT: "1", ...env },
  });
  let calls: string[][] = [];
  try {
    calls = (await Deno.readTextFile(record)).trimEnd().split("\n").map((l) => l.split("\x1f"));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return { ...result, calls };
}

const V5_WRITE = ["write-flash", "--flash-mode", "dio", "--flash-size", "detect"];
const V4_WRITE = ["write_flash", "-fm", "dio", "--flash_size=detect"];
const DEPRECATED = /deprecat/i;

Deno.test("flash task with esptool v5: asks its version, then erase-flash and write-flash, no deprecation warning", async () => {
  await using dir = await project();
  const r = await flash(dir.path, ["--port", "/dev/ttyUSB0", "--erase"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.calls, [
    ["version"],
    ["--port", "/dev/ttyUSB0", "erase-flash"],
    ["--port", "/dev/ttyUSB0", "--baud", "230400", ...V5_WRITE, "0x0", "dist/yaota8266.bin"],
    ["--port", "/dev/ttyUSB0", "--baud", "230400", ...V5_WRITE, "0x3c000", "dist/firmware-ota.bin"],
  ]);
  // `esptool`, not the deprecated `esptool.py` that v5 installs too (both are on PATH).
  assertStringIncludes(
    r.stderr,
    "esptool 5.1.0; port /dev/ttyUSB0 (--port), baud 230400 (default)",
  );
  assertStringIncludes(r.stderr, "$ esptool --port /dev/ttyUSB0 erase-flash");
  assertStringIncludes(r.stderr, "[2/3] writing dist/yaota8266.bin at 0x0");
  assertStringIncludes(r.stderr, "Hash of data verified."); // esptool's own output, live
  assertStringIncludes(r.stderr, "done: yaota8266 is at 0x0 and the firmware at 0x3c000");
  assertNotMatch(r.stderr, DEPRECATED);
});

for (const [standIn, name] of [["esptool-v4", "esptool.py"], ["esptool-v4-debian", "esptool"]]) {
  Deno.test(`flash task with esptool v4 as '${name}': erase_flash and write_flash -fm dio --flash_size=detect`, async () => {
    await using dir = await project();
    const r = await flash(dir.path, ["-p", "COM3", "-b", "460800", "--erase"], {}, standIn);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.calls, [
      ["version"],
      ["--port", "COM3", "erase_flash"],
      ["--port", "COM3", "--baud", "460800", ...V4_WRITE, "0x0", "dist/yaota8266.bin"],
      ["--port", "COM3", "--baud", "460800", ...V4_WRITE, "0x3c000", "dist/firmware-ota.bin"],
    ]);
    assertStringIncludes(r.stderr, `${name} 4.7.0; port COM3 (--port), baud 460800 (--baud)`);
    assertStringIncludes(r.stderr, "Changing baud rate to 460800");
    assertNotMatch(r.stderr, /error:|unrecognized|invalid choice/);
  });
}

for (const standIn of ["esptool-v5", "esptool-v4"]) {
  Deno.test(`flash task without a port leaves ESPTOOL_PORT and ESPTOOL_BAUD to esptool (${standIn})`, async () => {
    await using dir = await project({ config: { serial: { port: "/dev/ttyCFG", baud: 460800 } } });
    const env = { ESPTOOL_PORT: "/dev/ttyENV", ESPTOOL_BAUD: "921600" };
    const r = await flash(dir.path, [], env, standIn);
    assertEquals(r.code, 0, r.stderr);
    const write = standIn === "esptool-v5" ? V5_WRITE : V4_WRITE;
    assertEquals(r.calls, [
      ["version"],
      [...write, "0x0", "dist/yaota8266.bin"],
      [...write, "0x3c000", "dist/firmware-ota.bin"],
    ]);
    assertStringIncludes(
      r.stderr,
      "port from ESPTOOL_PORT (esptool reads it), baud from ESPTOOL_BAUD (esptool reads it)",
    );
    // esptool itself took them: its own lines name the port and the rate.
    assertMatch(r.stderr, /(Serial port|Connected to ESP8266 on) \/dev\/ttyENV/);
    assertMatch(r.stderr, /Changing baud rate to 921600/);
    assertNotMatch(r.stderr, DEPRECATED);
  });
}

Deno.test("flash task takes the port and baud rate from the config's serial, and no port at all when none is named", async () => {
  await using dir = await project({ config: { serial: { port: "/dev/ttyCFG", baud: 460800 } } });
  const r = await flash(dir.path, []);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.calls[1]?.slice(0, 4), ["--port", "/dev/ttyCFG", "--baud", "460800"]);
  assertStringIncludes(r.stderr, `port /dev/ttyCFG (${dir.path}/ota.config.json: serial.port)`);
  await Deno.remove(`${dir.path}/ota.config.json`);
  const bare = await flash(dir.path, []);
  assertEquals(bare.code, 0, bare.stderr);
  assertEquals(bare.calls.slice(1).map((c) => c.slice(0, 3)), [
    ["--baud", "230400", "write-flash"],
    ["--baud", "230400", "write-flash"],
  ]);
  assertStringIncludes(bare.stderr, "port: none given, esptool searches for the board");
  assertStringIncludes(bare.stderr, "Found 1 serial ports");
});

Deno.test("flash task takes the app offset from ota.config.json", async () => {
  await using dir = await project({
    bootloader: makeSampleBootloader({ modulus: KEY_512.modulus, appOffset: 0x40000 }),
    firmware: makeSampleFirmware({ appOffset: 0x40000 }),
    config: { appOffset: "0x40000" },
  });
  const r = await flash(dir.path, ["--serial", "COM3", "--baud", "460800"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.calls.slice(1).map((c) => c.slice(-2)), [["0x0", "dist/yaota8266.bin"], [
    "0x40000",
    "dist/firmware-ota.bin",
  ]]);
  assertEquals(r.calls[1]?.slice(0, 4), ["--port", "COM3", "--baud", "460800"]);
});

Deno.test("flash task refuses a bootloader built for another key and runs nothing (exit 5)", async () => {
  await using dir = await project({ bootloaderKey: KEY_2048.modulus });
  const r = await flash(dir.path, ["--port", "/dev/ttyUSB0", "--erase"]);
  assertEquals(r.code, 5);
  assertEquals(r.calls, []);
  assertStringIncludes(
    r.stderr,
    `error: refusing to flash: bootloader: this bootloader was built for another key: ` +
      `dist/yaota8266.bin does not hold the modulus of yours (${KEY_512.fingerprint})`,
  );
});

Deno.test("flash task refuses a standard (non-OTA) firmware and runs nothing (exit 3)", async () => {
  await using dir = await project({ firmware: makeSampleFirmware({ linkBase: 0x40209000 }) });
  const r = await flash(dir.path, ["--port", "/dev/ttyUSB0"]);
  assertEquals(r.code, 3);
  assertEquals(r.calls, []);
  assertStringIncludes(
    r.stderr,
    "error: refusing to flash: firmware: dist/firmware-ota.bin is not a safe OTA image",
  );
  assertStringIncludes(r.stderr, "a standard (non-OTA) build");
});

Deno.test("flash task --dry-run prints the exact commands for the esptool found and runs nothing else", async () => {
  await using dir = await project();
  const r = await flash(dir.path, ["--port", "/dev/tty USB0", "--erase", "--dry-run"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.calls, [["version"]]);
  assertEquals(
    r.stdout,
    [
      `esptool --port '/dev/tty USB0' erase-flash`,
      `esptool --port '/dev/tty USB0' --baud 230400 ${V5_WRITE.join(" ")} 0x0 dist/yaota8266.bin`,
      `esptool --port '/dev/tty USB0' --baud 230400 ${
        V5_WRITE.join(" ")
      } 0x3c000 dist/firmware-ota.bin`,
      "",
    ].join("\n"),
  );
  const v4 = await flash(dir.path, ["--dry-run"], {}, "esptool-v4");
  assertEquals(
    v4.stdout.split("\n")[0],
    `esptool.py --baud 230400 ${V4_WRITE.join(" ")} 0x0 dist/yaota8266.bin`,
  );
});

Deno.test("flash task stops at a failing esptool and shows its exit code and last output", async () => {
  await using dir = await project();
  const r = await flash(dir.path, ["--port", "/dev/ttyUSB0"], { ESPTOOL_EXIT: "2" });
  assertEquals(r.code, 1);
  assertEquals(r.calls.length, 2);
  assertStringIncludes(
    r.stderr,
    "error: esptool failed while writing dist/yaota8266.bin at 0x0 (exit code 2): esptool --port /dev/ttyUSB0",
  );
  assertStringIncludes(
    r.stderr,
    "  A fatal error occurred: Failed to connect to ESP8266: No serial data received.",
  );
  assertStringIncludes(r.stderr, "Check the serial port (--port, or ESPTOOL_PORT)");
});

Deno.test("flash task without esptool says how to install it", async () => {
  await using dir = await project();
  const r = await flash(dir.path, ["--port", "/dev/ttyUSB0"], { PATH: dir.path });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "error: esptool is not installed");
  assertStringIncludes(r.stderr, "pip install esptool");
});

Deno.test("flash task with two different ports exits 2", async () => {
  await using dir = await project();
  const r = await flash(dir.path, ["--port", "COM3", "--serial", "COM4"]);
  assertEquals(r.code, 2);
  assertEquals(r.calls, []);
  assertStringIncludes(r.stderr, "flash: --port 'COM3' and --serial 'COM4' name two ports");
});

Deno.test("flash task fails when the bootloader is missing, even at the default path", async () => {
  await using dir = await project();
  await Deno.remove(`${dir.path}/dist/yaota8266.bin`);
  const r = await flash(dir.path, ["--port", "/dev/ttyUSB0"]);
  assertEquals(r.code, 1);
  assertEquals(r.calls, []);
  assertStringIncludes(r.stderr, "error: no bootloader at 'dist/yaota8266.bin'");
});

const NO_TRIGGER = "OTA mode only with the BOOT button within 3 s of reset; `trigger` and " +
  "`deploy --trigger` will not work on this board";

Deno.test("flash task warns before writing a bootloader without the software trigger", async () => {
  await using dir = await project({
    bootloader: makeSampleBootloader({ modulus: KEY_512.modulus, rtcTrigger: false }),
  });
  const r = await flash(dir.path, ["--serial", "/dev/ttyUSB0"]);
  assertEquals(r.code, 0, r.stderr);
  // esptool's version, then the two writes.
  assertEquals(r.calls.map((c) => c.find((a) => /^(version|write-flash)$/.test(a))), [
    "version",
    "write-flash",
    "write-flash",
  ]);
  const warning = r.stderr.indexOf(
    "warning: dist/yaota8266.bin has no software trigger (its boot8266 does not check the RTC " +
      `magic): ${NO_TRIGGER}. 'deno task build-bootloader' builds one that has it.`,
  );
  assert(warning >= 0, r.stderr);
  assert(warning < r.stderr.indexOf("[1/2] writing dist/yaota8266.bin at 0x0"), "before writing");
  assertStringIncludes(r.stderr, "warn bootloader  dist/yaota8266.bin (131072 bytes) is built for");

  // With the trigger: no warning.
  await using good = await project();
  const quiet = await flash(good.path, ["--serial", "/dev/ttyUSB0"]);
  assertEquals(quiet.code, 0, quiet.stderr);
  assertEquals(quiet.stderr.includes("warning"), false, quiet.stderr);
  assertStringIncludes(quiet.stderr, "software trigger (RTC magic): yes");
});

Deno.test("flash task says when the bootloader and the firmware are swapped, and runs nothing", async () => {
  await using dir = await project();
  const r = await flash(dir.path, [
    "--serial",
    "/dev/ttyUSB0",
    "--bootloader",
    "dist/firmware-ota.bin",
    "--firmware",
    "dist/yaota8266.bin",
  ]);
  assertEquals(r.code, 1);
  assertEquals(r.calls, []);
  assertStringIncludes(
    r.stderr,
    "error: refusing to flash: bootloader: the bootloader and the firmware are swapped: " +
      "dist/firmware-ota.bin is a MicroPython firmware image and dist/yaota8266.bin is the " +
      "yaota8266 bootloader. Give yaota8266.bin as --bootloader (it goes at 0x0) and the " +
      "firmware as --firmware",
  );
  assertEquals(r.stderr.includes("built for another key"), false, r.stderr);
});

Deno.test("flash task refuses a bootloader built for another app offset", async () => {
  await using dir = await project({
    bootloader: makeSampleBootloader({ modulus: KEY_512.modulus, appOffset: 0x40000 }),
  });
  const r = await flash(dir.path, ["--serial", "/dev/ttyUSB0"]);
  assertEquals(r.code, 3, r.stderr);
  assertEquals(r.calls, []);
  assertStringIncludes(
    r.stderr,
    "error: refusing to flash: bootloader: dist/yaota8266.bin is built for app offset 0x40000 " +
      "(its MAIN_APP_OFFSET), but the app offset here is 0x3c000",
  );
});
