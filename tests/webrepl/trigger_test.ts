import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { loadPublicKey } from "../../lib/config/key_file.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { startVirtualDevice } from "../../lib/sim/virtual_device.ts";
import { InterruptedError, UsageError } from "../../lib/errors.ts";
import { resolvePassword } from "../../lib/webrepl/password.ts";
import { type RunningApp, startWebReplServer } from "../../lib/sim/webrepl_server.ts";
import { parseTriggerArgs } from "../../tasks/trigger.ts";
import { enterRaw, nextProgram, startHostilePeer } from "../_hostile_webrepl.ts";

const VERSION = "v1.19.1 on 2022-06-18";
const PASSWORD = "pw-4trig";

/** A virtual device's running app with WebREPL, and what it saw. */
async function bootDevice(options: { frozenOta?: boolean } = {}) {
  const resets: string[] = [];
  const console: string[] = [];
  const app: RunningApp = {
    version: () => VERSION,
    rtcMemory: new Uint8Array(0),
    onReset: () => resets.push(new TextDecoder().decode(app.rtcMemory)),
    files: new Map([["webrepl_cfg.py", `PASS = '${PASSWORD}'\n`]]),
    frozenOta: options.frozenOta ?? true,
    log: (line) => console.push(line),
  };
  const server = await startWebReplServer({ host: "127.0.0.1", port: 0, app });
  return { server, resets, console, [Symbol.asyncDispose]: () => server.close() };
}

/** `deno task trigger` with an empty config file, so a local ota.config.json cannot interfere. */
async function trigger(args: string[], env: Record<string, string> = {}) {
  await using dir = await tempDir();
  const config = `${dir.path}/ota.config.json`;
  await Deno.writeTextFile(config, "{}");
  return await runTaskFile("trigger", ["--config", config, ...args], {
    env: { WEBREPL_PASSWORD: "", ...env },
  });
}

/** A whole virtual device (OTA server and app) running its app, for the test key. */
async function virtualBoard(options: { rtcTrigger: boolean }) {
  const key = await loadPublicKey(`${VECTORS}test-key-512.pem`);
  const flash = new Uint8Array(0x100000).fill(0xff);
  flash.set(makeSampleFirmware({ version: "v1.19.1", size: 48 * 1024 }), DEFAULT_APP_OFFSET);
  return await startVirtualDevice({
    port: 0,
    modulus: key.modulus,
    flash,
    start: "boot",
    rtcTrigger: options.rtcTrigger,
    webrepl: { password: PASSWORD },
  });
}

/** `trigger` at 127.0.0.1:`port` with the password, a 1 s watch and the key `key`. */
function triggerWatching(port: number, key: string) {
  return trigger([
    "--ip",
    "127.0.0.1",
    "--device-port",
    String(port),
    "--password",
    PASSWORD,
    "--watch",
    "1",
    "--key",
    key,
  ]);
}

Deno.test("parseTriggerArgs() reads the flags and checks the port", () => {
  assertEquals(parseTriggerArgs(["--ip", "10.0.0.7"]), {
    ip: "10.0.0.7",
    timeoutMs: 5000,
    watchMs: 12000,
    json: false,
  });
  assertEquals(
    parseTriggerArgs([
      "--ip",
      "h",
      "--device-port",
      "8300",
      "--password",
      "abcd",
      "--timeout",
      "2",
      "--watch",
      "0",
      "--json",
    ]),
    { ip: "h", port: 8300, password: "abcd", timeoutMs: 2000, watchMs: 0, json: true },
  );
  assertThrows(
    () => parseTriggerArgs(["--watch", "61"]),
    UsageError,
    "--watch expects a time in seconds from 0 (off) to 60, got '61'",
  );
  assertThrows(
    () => parseTriggerArgs(["--device-port", "70000"]),
    UsageError,
    "--device-port expects a port number from 1 to 65535, got '70000'",
  );
});

Deno.test("deno task trigger logs in, runs ota.start(), watches for the app, asks the OTA-mode question and reports", async () => {
  await using device = await virtualBoard({ rtcTrigger: true });
  const port = device.port;
  const r = await triggerWatching(port, `${VECTORS}test-key-512.pem`);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(
    r.stdout,
    new RegExp(
      `^127\\.0\\.0\\.1:${port}: in OTA mode via ota\\.start\\(\\) \\(it answered the OTA-mode ` +
        "question; was running MicroPython .*\\)\\. Send the update within 60 s: deno task deploy " +
        `--config \\S+ --key \\S+ --device-port ${port} --ip 127\\.0\\.0\\.1\\n$`,
    ),
  );
  assertStringIncludes(r.stderr, "it answered the OTA-mode question: it is in OTA mode");
  assert(!(r.stdout + r.stderr).includes(PASSWORD), "the password leaked");
});

Deno.test("deno task trigger without a key does not claim OTA mode: it says it was not confirmed", async () => {
  await using device = await bootDevice();
  const port = device.server.port;
  const r = await triggerWatching(port, "/nonexistent/yaota-test.pem");
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(
    r.stdout,
    `127.0.0.1:${port}: reset via ota.start() (was running MicroPython ${VERSION}); its app ` +
      "stayed away for 1.0 s, but OTA mode is not confirmed: no key to ask with (",
  );
  assertEquals(r.stdout.includes("in OTA mode"), false);
  assertStringIncludes(r.stderr, `running MicroPython ${VERSION}`);
  assertEquals(device.resets, ["yaotaota"]);
});

Deno.test("deno task trigger: a board that closed the session but kept its port is not called in OTA mode", async () => {
  await using peer = startHostilePeer(async (s) => {
    const uname = await nextProgram(s, await enterRaw(s));
    await s.sendText(`esp8266\tesp8266\t1.19.1\t${VERSION}\tESP module\r\n\x04\x04>`);
    await nextProgram(s, uname.next); // import ota; ota.start(): OK, then the session ends
    s.close();
  });
  const r = await triggerWatching(peer.port, `${VECTORS}test-key-512.pem`);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(
    r.stderr,
    `127.0.0.1:${peer.port} did not answer the OTA-mode question after ota.start(), and its ` +
      "WebREPL port still takes connections: it most likely did not reset",
  );
  assertEquals(r.stdout, "");
});

Deno.test("deno task trigger --json takes the password from WEBREPL_PASSWORD and falls back to the RTC magic", async () => {
  await using device = await bootDevice({ frozenOta: false });
  const port = device.server.port;
  const r = await trigger([
    "--ip",
    "127.0.0.1",
    "--device-port",
    String(port),
    "--json",
    "--watch",
    "0",
  ], {
    WEBREPL_PASSWORD: PASSWORD,
  });
  assertEquals(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assertEquals(report.ok, true);
  assertEquals(report.method, "rtc-magic");
  assertEquals(report.watchedSeconds, 0);
  assertEquals(report.versionBefore, VERSION);
  assertEquals(report.uname.sysname, "esp8266");
  assertStringIncludes(r.stderr, "no 'ota' module in this firmware");
  assertEquals(device.resets, ["yaotaota"]);
  assert(!(r.stdout + r.stderr).includes(PASSWORD), "the password leaked");
});

Deno.test("deno task trigger with a wrong password exits 1 after one attempt, without showing it", async () => {
  await using device = await bootDevice();
  const port = device.server.port;
  const wrong = "not-it-99";
  const r = await trigger(["--ip", "127.0.0.1", "--device-port", String(port), "--json"], {
    WEBREPL_PASSWORD: wrong,
  });
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, `error: wrong WebREPL password for 127.0.0.1:${port}`);
  assertEquals(JSON.parse(r.stdout).kind, "WebReplError");
  assertEquals(device.console.filter((l) => l.startsWith("WebREPL connection from")).length, 1);
  assertEquals(device.resets, []);
  assert(!(r.stdout + r.stderr).includes(wrong), "the password leaked");
});

Deno.test("deno task trigger refuses a 10-byte password before connecting, and asks for WEBREPL_PASSWORD without a terminal", async () => {
  await using device = await bootDevice();
  const port = String(device.server.port);
  const long = await trigger([
    "--ip",
    "127.0.0.1",
    "--device-port",
    port,
    "--password",
    "0123456789",
  ]);
  assertEquals(long.code, 2, long.stderr);
  assertStringIncludes(
    long.stderr,
    "the WebREPL password from --password is 10 characters, 10 bytes in UTF-8; " +
      "WebREPL accepts 4 to 9 characters, at most 9 bytes",
  );
  assert(!long.stderr.includes("0123456789"), "the password leaked");
  const none = await trigger(["--ip", "127.0.0.1", "--device-port", port]);
  assertEquals(none.code, 2, none.stderr);
  assertStringIncludes(none.stderr, "no WebREPL password: set WEBREPL_PASSWORD");
  assertEquals(device.console, []);
});

Deno.test("resolvePassword() prefers --password, then the environment, then a prompt on a terminal", async () => {
  const prompts: string[] = [];
  const sources = {
    env: (name: string) => (name === "BOARD_PW" ? "fromenv" : undefined),
    prompt: (message: string) => (prompts.push(message), Promise.resolve("typed1")),
    isTerminal: () => true,
  };
  assertEquals(
    await resolvePassword({ ...sources, flag: "flagpw", envName: "BOARD_PW" }),
    "flagpw",
  );
  assertEquals(await resolvePassword({ ...sources, envName: "BOARD_PW" }), "fromenv");
  assertEquals(await resolvePassword({ ...sources, message: "pw? " }), "typed1");
  assertEquals(prompts, ["pw? "]);
  await assertRejects(
    () => resolvePassword({ ...sources, isTerminal: () => false }),
    UsageError,
    "no WebREPL password: set WEBREPL_PASSWORD (stdin is not a terminal",
  );
  await assertRejects(
    () => resolvePassword({ ...sources, prompt: () => Promise.reject(new InterruptedError("no")) }),
    InterruptedError,
  );
  const long = await assertRejects(
    () => resolvePassword({ ...sources, env: () => "ten-bytes!" }),
    UsageError,
    "the WebREPL password from WEBREPL_PASSWORD is 10 characters",
  );
  assert(!long.message.includes("ten-bytes!"), "the password leaked");
  // Four characters but ten bytes: the board would keep only nine of them.
  await assertRejects(
    () => resolvePassword({ flag: "ééé😀" }),
    UsageError,
    "4 characters, 10 bytes",
  );
  assertEquals(await resolvePassword({ flag: "éé12" }), "éé12");
  await assertRejects(
    () => resolvePassword({ flag: "abc\rdef" }),
    UsageError,
    "the WebREPL password from --password contains a control character",
  );
});

Deno.test("deno task trigger reports a board whose bootloader ignores the RTC magic as soon as its app is back", async () => {
  // Upstream yaota8266: boot8266 has no RTC check, so ota.start() reboots into the app.
  await using device = await virtualBoard({ rtcTrigger: false });
  const port = String(device.port);
  // A bounded wait: the watch ends after 20 s whatever happens.
  const r = await trigger(["--ip", "127.0.0.1", "--device-port", port, "--watch", "20"], {
    WEBREPL_PASSWORD: PASSWORD,
  });
  assertEquals(r.code, 1, r.stderr);
  assertMatch(
    r.stderr,
    new RegExp(
      `error: 127\\.0\\.0\\.1:${port} came back in its app \\d+\\.\\d s after ota\\.start\\(\\) instead ` +
        "of entering the OTA server: its bootloader most likely has no RTC check",
    ),
  );
  assertStringIncludes(
    r.stderr.replaceAll(/--config [^\s']+/g, "--config C"),
    "press its BOOT button within 3 s of a reset and run 'deno task deploy --config C " +
      `--device-port ${port} --ip 127.0.0.1' ` +
      "without --trigger; or flash it once over serial with a bootloader built by " +
      "'deno task build-bootloader --config C', which adds the check.",
  );
  assertEquals(r.stdout, "");
  const boots = device.events.flatMap((e) => e.type === "boot" ? [`${e.boot}:${e.mode}`] : []);
  assertEquals(boots, ["ok:app", "ok:app"]);
  assert(!(r.stdout + r.stderr).includes(PASSWORD), "the password leaked");
});
