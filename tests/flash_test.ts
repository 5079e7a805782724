import { assert, assertEquals, assertStringIncludes, assertThrows } from "./_assert.ts";
import { ROOT, runTaskFile, tempDir, vectorText } from "./_helpers.ts";
import { flashSteps } from "../lib/flash.ts";
import { formatCommand } from "../lib/esptool.ts";
import { UsageError } from "../lib/errors.ts";
import { parsePrivateKey } from "../lib/keys.ts";
import { makeSampleFirmware } from "../lib/sample_firmware.ts";
import { parseFlashArgs } from "../tasks/flash.ts";
import { makeSampleBootloader } from "./fixtures/sample_bootloader.ts";

const STAND_INS = `${ROOT}tests/stand-ins`;
const KEY_512 = parsePrivateKey(vectorText("test-key-512.pem"));
const KEY_2048 = parsePrivateKey(vectorText("test-key-2048.pem"));

Deno.test("flashSteps() gives the esptool arguments of docs/device.md, erase first", () => {
  const steps = flashSteps({
    port: "/dev/ttyUSB0",
    baud: 230400,
    bootloader: "dist/yaota8266.bin",
    firmware: "dist/firmware-ota.bin",
    appOffset: 0x3c000,
    erase: true,
  });
  assertEquals(steps, [
    { label: "erasing the flash", args: ["--port", "/dev/ttyUSB0", "erase_flash"] },
    {
      label: "writing dist/yaota8266.bin at 0x0",
      args: [
        "--port",
        "/dev/ttyUSB0",
        "--baud",
        "230400",
        "write_flash",
        "-fm",
        "dio",
        "--flash_size=detect",
        "0x0",
        "dist/yaota8266.bin",
      ],
    },
    {
      label: "writing dist/firmware-ota.bin at 0x3c000",
      args: [
        "--port",
        "/dev/ttyUSB0",
        "--baud",
        "230400",
        "write_flash",
        "-fm",
        "dio",
        "--flash_size=detect",
        "0x3c000",
        "dist/firmware-ota.bin",
      ],
    },
  ]);
});

Deno.test("flashSteps() leaves out erase_flash unless asked and uses the app offset given", () => {
  const steps = flashSteps({
    port: "COM3",
    baud: 115200,
    bootloader: "b.bin",
    firmware: "f.bin",
    appOffset: 0x40000,
    erase: false,
  });
  assertEquals(steps.map((s) => s.args.slice(-2)), [["0x0", "b.bin"], ["0x40000", "f.bin"]]);
  assertEquals(steps[0]?.args.slice(0, 4), ["--port", "COM3", "--baud", "115200"]);
});

Deno.test("formatCommand() quotes what a shell would split", () => {
  assertEquals(
    formatCommand(["esptool.py", "--port", "/dev/tty USB0", "it's", "0x0"]),
    `esptool.py --port '/dev/tty USB0' 'it'\\''s' 0x0`,
  );
});

Deno.test("parseFlashArgs() needs --serial and checks --baud", () => {
  assertThrows(() => parseFlashArgs(["--erase"]), UsageError, "--serial PORT is required");
  assertThrows(
    () => parseFlashArgs(["--serial", "p", "--baud", "fast"]),
    UsageError,
    "--baud expects a baud rate such as 115200 or 460800, got 'fast'",
  );
  assertEquals(parseFlashArgs(["--serial", "/dev/ttyUSB0"]), {
    port: "/dev/ttyUSB0",
    key: undefined,
    bootloader: undefined,
    firmware: undefined,
    appOffset: undefined,
    erase: false,
    baud: 230400,
    dryRun: false,
    config: undefined,
  });
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

/** Runs the flash task with the esptool stand-in first on PATH; returns its recorded calls. */
async function flash(dir: string, args: string[], env: Record<string, string> = {}) {
  const record = `${dir}/esptool-calls.txt`;
  const result = await runTaskFile("flash", args, {
    cwd: dir,
    env: { PATH: `${STAND_INS}:/usr/bin:/bin`, ESPTOOL_RECORD: record, ...env },
  });
  let calls: string[][] = [];
  try {
    calls = (await Deno.readTextFile(record)).trimEnd().split("\n").map((l) => l.split("\x1f"));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return { ...result, calls };
}

const WRITE = ["--baud", "230400", "write_flash", "-fm", "dio", "--flash_size=detect"];

Deno.test("flash task erases, then writes yaota8266.bin at 0x0 and the firmware at 0x3c000", async () => {
  await using dir = await project();
  const r = await flash(dir.path, ["--serial", "/dev/ttyUSB0", "--erase"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.calls, [
    ["--port", "/dev/ttyUSB0", "erase_flash"],
    ["--port", "/dev/ttyUSB0", ...WRITE, "0x0", "dist/yaota8266.bin"],
    ["--port", "/dev/ttyUSB0", ...WRITE, "0x3c000", "dist/firmware-ota.bin"],
  ]);
  assertStringIncludes(r.stderr, "[2/3] writing dist/yaota8266.bin at 0x0");
  assertStringIncludes(r.stderr, "Hash of data verified."); // esptool's own output, live
  assertStringIncludes(r.stderr, "done: yaota8266 is at 0x0 and the firmware at 0x3c000");
});

Deno.test("flash task takes the app offset from ota.config.json", async () => {
  await using dir = await project({
    bootloader: makeSampleBootloader({ modulus: KEY_512.modulus, appOffset: 0x40000 }),
    firmware: makeSampleFirmware({ appOffset: 0x40000 }),
    config: { appOffset: "0x40000" },
  });
  const r = await flash(dir.path, ["--serial", "COM3", "--baud", "460800"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.calls.map((c) => c.slice(-2)), [["0x0", "dist/yaota8266.bin"], [
    "0x40000",
    "dist/firmware-ota.bin",
  ]]);
  assertEquals(r.calls[0]?.slice(0, 4), ["--port", "COM3", "--baud", "460800"]);
});

Deno.test("flash task refuses a bootloader built for another key and runs nothing", async () => {
  await using dir = await project({ bootloaderKey: KEY_2048.modulus });
  const r = await flash(dir.path, ["--serial", "/dev/ttyUSB0", "--erase"]);
  assertEquals(r.code, 1);
  assertEquals(r.calls, []);
  assertStringIncludes(
    r.stderr,
    `error: refusing to flash: bootloader: this bootloader was built for another key: ` +
      `dist/yaota8266.bin does not hold the modulus of yours (${KEY_512.fingerprint})`,
  );
});

Deno.test("flash task refuses a standard (non-OTA) firmware and runs nothing", async () => {
  await using dir = await project({ firmware: makeSampleFirmware({ linkBase: 0x40209000 }) });
  const r = await flash(dir.path, ["--serial", "/dev/ttyUSB0"]);
  assertEquals(r.code, 1);
  assertEquals(r.calls, []);
  assertStringIncludes(
    r.stderr,
    "error: refusing to flash: firmware: dist/firmware-ota.bin is not a safe OTA image",
  );
  assertStringIncludes(r.stderr, "a standard (non-OTA) build");
});

Deno.test("flash task --dry-run prints the exact commands and runs nothing", async () => {
  await using dir = await project();
  const r = await flash(dir.path, ["--serial", "/dev/tty USB0", "--erase", "--dry-run"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.calls, []);
  assertEquals(
    r.stdout,
    [
      `esptool --port '/dev/tty USB0' erase_flash`,
      `esptool --port '/dev/tty USB0' ${WRITE.join(" ")} 0x0 dist/yaota8266.bin`,
      `esptool --port '/dev/tty USB0' ${WRITE.join(" ")} 0x3c000 dist/firmware-ota.bin`,
      "",
    ].join("\n"),
  );
});

Deno.test("flash task stops at a failing esptool and shows its exit code and last output", async () => {
  await using dir = await project();
  const r = await flash(dir.path, ["--serial", "/dev/ttyUSB0"], { ESPTOOL_EXIT: "2" });
  assertEquals(r.code, 1);
  assertEquals(r.calls.length, 1);
  assertStringIncludes(
    r.stderr,
    "error: esptool failed while writing dist/yaota8266.bin at 0x0 (exit code 2): esptool --port /dev/ttyUSB0",
  );
  assertStringIncludes(
    r.stderr,
    "  A fatal error occurred: Failed to connect to ESP8266: No serial data received.",
  );
});

Deno.test("flash task without esptool says how to install it", async () => {
  await using dir = await project();
  const r = await flash(dir.path, ["--serial", "/dev/ttyUSB0"], { PATH: dir.path });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "error: esptool is not installed");
  assertStringIncludes(r.stderr, "pip install esptool");
});

Deno.test("flash task without --serial exits 2", async () => {
  await using dir = await project();
  const r = await flash(dir.path, ["--erase"]);
  assertEquals(r.code, 2);
  assertEquals(r.calls, []);
  assertStringIncludes(r.stderr, "flash: --serial PORT is required");
});

Deno.test("flash task fails when the bootloader is missing, even at the default path", async () => {
  await using dir = await project();
  await Deno.remove(`${dir.path}/dist/yaota8266.bin`);
  const r = await flash(dir.path, ["--serial", "/dev/ttyUSB0"]);
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
  assertEquals(r.calls.length, 2);
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
  assertEquals(r.code, 1);
  assertEquals(r.calls, []);
  assertStringIncludes(
    r.stderr,
    "error: refusing to flash: bootloader: dist/yaota8266.bin is built for app offset 0x40000 " +
      "(its MAIN_APP_OFFSET), but the app offset here is 0x3c000",
  );
});
