/**
 * `--verbose` and `YAOTA_VERBOSE=1` as a user sees them: timestamped plain lines on
 * stderr, the transfer's packets, acks and boot check, WebREPL's steps without the
 * password; and the trace sink's own rules.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import { startVirtualDevice } from "../../lib/sim/virtual_device.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { type RunningApp, startWebReplServer } from "../../lib/sim/webrepl_server.ts";
import { WebReplClient } from "../../lib/webrepl/client.ts";
import { renderHelp } from "../../lib/cli/cli.ts";
import { hidden, setTraceSink, trace, traceText, verboseWanted } from "../../lib/trace.ts";
import { formatTraceLine } from "../../lib/cli/trace_sink.ts";

const KEY = `${VECTORS}test-key-512.pem`;
const PASSWORD = "pw-verb0";
/** `[   0.123] topic: ` at the start of a line. */
const STAMP = /^\[ *\d+\.\d{3}\] /;

async function deployVerbose(args: string[], env: Record<string, string> = {}) {
  await using dir = await tempDir();
  await using device = await startVirtualDevice({
    modulus: parsePrivateKey(Deno.readTextFileSync(KEY)).modulus,
    flash: new Uint8Array(0x100000).fill(0xff),
    profile: PROFILES.instant,
    link: { delayMs: 1 },
  });
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(file, makeSampleFirmware({ size: 16 * 1024, seed: 4 }));
  await Deno.writeTextFile(`${dir.path}/ota.config.json`, "{}");
  return await runTaskFile("deploy", [
    "--ip",
    "127.0.0.1",
    "--device-port",
    String(device.port),
    "--key",
    KEY,
    "--boot-check-window",
    "1",
    file,
    ...args,
  ], { cwd: dir.path, env });
}

Deno.test("deploy --verbose shows each packet with a timestamp, the acks, the pacing and the boot check, in plain lines", async () => {
  // NO_COLOR empty: plain only because stderr is not a terminal.
  const r = await deployVerbose(["--verbose"], { NO_COLOR: "" });
  assertEquals(r.code, 0, r.stderr);
  assert(!r.stderr.includes("\x1b["), "escape sequences on a stderr that is not a terminal");
  const lines = r.stderr.split("\n").filter((l) => STAMP.test(l));
  assert(lines.length > 40, `only ${lines.length} trace lines`);
  const body = lines.map((l) => l.replace(STAMP, ""));
  const has = (pattern: RegExp) =>
    assert(
      body.some((l) => pattern.test(l)),
      `no trace line matches ${pattern}; the trace began:\n${body.slice(0, 40).join("\n")}`,
    );
  has(/^config: read .*ota\.config\.json/);
  has(/^deploy: raw image; inspected for app offset 0x3c000: safe$/);
  has(/^deploy: send #1 probe offset 0 len 1024: does a 1024-byte block pass the link\?/);
  has(
    /^deploy: reply #1 offset 0 len 1024 \(to probe, round trip \d+\.\d ms(; its send call took \d+\.\d ms)?\): the 1024-byte probe was taken/,
  );
  if (body.some((l) => l.startsWith("deploy: timeout: no answer to the probe"))) {
    // A loaded machine answered the probe after the next size had left: the trace says how
    // the device's expected offset was found.
    has(/^deploy: send #\d+ resolve offset 1024 len 1024: does the device expect offset 1024\?/);
  } else {
    has(
      /^deploy: reply #1 offset 0 len 1024 \(to probe, round trip \d+\.\d ms(; its send call took \d+\.\d ms)?\): .*confirmed 1024$/,
    );
    has(/^deploy: send #\d+ data offset 1024 len 1024: stop-and-wait until 3 idle round trips/);
  }
  has(/^deploy: send #\d+ data offset \d+ len 1024: stop-and-wait until 3 idle round trips/);
  has(/^deploy: reply #\d+ offset \d+ len 1024 .*ack: confirms every byte before \d+/);
  has(/^deploy: pacing: calibrated from 3 idle round trips: pipelining — service/);
  has(/^deploy: send #\d+ data offset \d+ len 1024: paced: to arrive \d+\.\d ms into #\d+'s/);
  has(/^deploy: send #\d+ END \(final, len 0: flush and reboot\): every byte \(40976\) confirmed/);
  has(/^deploy: send #\d+ boot-probe offset 0 len 1024: only a device whose new image failed/);
  has(/^deploy: boot check passed: nothing answered offset 0 for 1 s after the end packet/);
  // Each data packet of the image, by offset and size.
  for (let offset = 1024; offset < 40960; offset += 1024) {
    has(new RegExp(`^deploy: send #\\d+ (data|retransmit|resolve) offset ${offset} len 1024: `));
  }
  has(/^deploy: send #\d+ (data|retransmit) offset 40960 len 16: /);
  // The timestamps count up from the process start.
  const seconds = lines.map((l) => Number(/\d+\.\d{3}/.exec(l)![0]));
  assert(seconds.every((s, i) => i === 0 || s >= seconds[i - 1]!), "timestamps went back");
  assertStringIncludes(r.stdout, "done: 40.0 KiB in");
});

Deno.test("YAOTA_VERBOSE=1 turns the trace on, --no-verbose off; without either there is none", async () => {
  const on = await deployVerbose([], { YAOTA_VERBOSE: "1" });
  assertEquals(on.code, 0, on.stderr);
  assertMatch(on.stderr, /^\[ *\d+\.\d{3}\] deploy: send #1 probe offset 0 len 1024/m);
  const off = await deployVerbose(["--no-verbose"], { YAOTA_VERBOSE: "1" });
  assertEquals(off.code, 0, off.stderr);
  assert(!off.stderr.split("\n").some((l) => STAMP.test(l)), off.stderr);
  const plain = await deployVerbose([]);
  assertEquals(plain.code, 0, plain.stderr);
  assert(!plain.stderr.split("\n").some((l) => STAMP.test(l)), plain.stderr);
});

/** A running app with WebREPL whose password is PASSWORD. */
async function webrepl(password = PASSWORD) {
  const app: RunningApp = {
    version: () => "v1.19.1 on 2022-06-18",
    rtcMemory: new Uint8Array(0),
    onReset: () => {},
    files: new Map([["webrepl_cfg.py", `PASS = '${password}'\n`]]),
    frozenOta: true,
    log: () => {},
  };
  return await startWebReplServer({ host: "127.0.0.1", port: 0, app });
}

Deno.test("trigger --verbose traces the connection steps and never the password, given as a flag or in the environment", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/ota.config.json`, "{}");
  for (const how of ["flag", "env"] as const) {
    const server = await webrepl();
    try {
      const r = await runTaskFile(
        "trigger",
        [
          "--ip",
          "127.0.0.1",
          "--port",
          String(server.port),
          "--watch",
          "0",
          "--verbose",
          ...(how === "flag" ? ["--password", PASSWORD] : []),
        ],
        { cwd: dir.path, env: { WEBREPL_PASSWORD: how === "env" ? PASSWORD : "" } },
      );
      assertEquals(r.code, 0, r.stderr);
      const body = r.stderr.split("\n").filter((l) => STAMP.test(l)).map((l) =>
        l.replace(STAMP, "")
      );
      for (
        const expected of [
          `webrepl: connecting to 127.0.0.1:${server.port} over TCP`,
          `webrepl: TCP connected to 127.0.0.1:${server.port}: sending the WebSocket handshake`,
          "webrepl: handshake accepted (HTTP/1.1 101 Switching Protocols, Sec-WebSocket-Accept matches)",
          "webrepl: 'Password:' prompt: sending the password (not shown)",
          "webrepl: logged in ('WebREPL connected')",
          "webrepl: entering the raw REPL (Ctrl-C, then Ctrl-A)",
          "webrepl: running 2 lines of code: import ota; ota.start()",
        ]
      ) {
        assert(body.some((l) => l.startsWith(expected)), `${how}: no line '${expected}'`);
      }
      assert(!(r.stdout + r.stderr).includes(PASSWORD), `${how}: the password leaked`);
      assert(!r.stderr.includes("***"), `${how}: a trace line carried the password`);
    } finally {
      await server.close();
    }
  }
});

Deno.test("trigger --verbose with a word-like password ('connected') masks nothing of the trace's own words", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/ota.config.json`, "{}");
  const server = await webrepl("connected");
  try {
    const r = await runTaskFile(
      "trigger",
      ["--ip", "127.0.0.1", "--port", String(server.port), "--watch", "0", "--verbose"],
      { cwd: dir.path, env: { WEBREPL_PASSWORD: "connected" } },
    );
    assertEquals(r.code, 0, r.stderr);
    const body = r.stderr.split("\n").filter((l) => STAMP.test(l)).map((l) => l.replace(STAMP, ""));
    for (
      const expected of [
        `webrepl: TCP connected to 127.0.0.1:${server.port}: sending the WebSocket handshake`,
        "webrepl: logged in ('WebREPL connected')",
      ]
    ) {
      assert(body.includes(expected), `no line '${expected}' in:\n${body.join("\n")}`);
    }
    assert(!r.stderr.includes("***"), r.stderr);
  } finally {
    await server.close();
  }
});

Deno.test("WebReplClient traces its steps through the sink without ever handing it the password", async () => {
  await using server = { s: await webrepl(), [Symbol.asyncDispose]: () => server.s.close() };
  const lines: string[] = [];
  const previous = setTraceSink((topic, text) => lines.push(`${topic}: ${text}`));
  try {
    await using repl = await WebReplClient.connect({
      host: "127.0.0.1",
      port: server.s.port,
      password: PASSWORD,
    });
    assertEquals((await repl.exec("print(6 * 7)")).output, "42\n");
  } finally {
    setTraceSink(previous);
  }
  assert(lines.some((l) => l.startsWith("webrepl: logged in")));
  assert(lines.includes("webrepl: running 1 line of code: print(6 * 7)"));
  assert(!lines.some((l) => l.includes(PASSWORD) || l.includes("***")), lines.join("\n"));
});

Deno.test("trace() writes only with a sink, masks a secret by its place, not by its text, and stamps seconds", () => {
  const lines: string[] = [];
  trace("x", () => {
    throw new Error("built without a sink");
  });
  const previous = setTraceSink((topic, text) => lines.push(`${topic}: ${text}`));
  try {
    // The password "connected": only its own place is masked, the word stays elsewhere.
    trace("webrepl", traceText`TCP connected, password ${hidden("connected")} sent`);
    trace("deploy", () => "lazy line");
  } finally {
    setTraceSink(previous);
  }
  assertEquals(lines, ["webrepl: TCP connected, password *** sent", "deploy: lazy line"]);
  assertEquals(formatTraceLine(0.1234, "deploy", "send #1"), "[   0.123] deploy: send #1");
  assertEquals(formatTraceLine(75.5, "build", "make"), "[  75.500] build: make");
});

Deno.test("verboseWanted(): the flag wins, else YAOTA_VERBOSE 1/true/yes/on", () => {
  assertEquals(verboseWanted(undefined, undefined), false);
  assertEquals(verboseWanted(undefined, "1"), true);
  assertEquals(verboseWanted(undefined, "TRUE"), true);
  assertEquals(verboseWanted(undefined, "0"), false);
  assertEquals(verboseWanted(false, "1"), false);
  assertEquals(verboseWanted(true, undefined), true);
});

Deno.test("every task's --help lists --verbose", async () => {
  assertStringIncludes(
    renderHelp({ name: "x", summary: "s", options: {} }),
    "--verbose      timestamped lines on stderr: what the task decided and why (or YAOTA_VERBOSE=1)",
  );
  for (const task of ["deploy", "build_bootloader", "trigger", "keygen"]) {
    const r = await runTaskFile(task, ["--help"]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "--verbose", task);
  }
});
