import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { WebReplError } from "../../lib/errors.ts";
import { type RunningApp, startWebReplServer } from "../../lib/sim/webrepl_server.ts";
import { WebReplClient } from "../../lib/webrepl/client.ts";
import { enterOtaMode, readRunningVersion } from "../../lib/webrepl/trigger.ts";
import {
  encodeClientFrame,
  encodeFrame,
  encodeHandshakeRequest,
  encodeHandshakeResponse,
  FrameDecoder,
  HttpHeadReader,
  OPCODE,
} from "../../lib/webrepl/websocket.ts";
import { concat } from "../../lib/_bytes.ts";
import { enterRaw, nextProgram, startHostilePeer } from "../_hostile_webrepl.ts";

const VERSION = "v1.19.1 on 2022-06-18";
const PASSWORD = "s3cr3tPw";
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A running app on the virtual device: its WebREPL server and what it reports. */
async function bootDevice(
  options: { password?: string; frozenOta?: boolean; app?: RunningApp } = {},
) {
  const resets: string[] = [];
  const console: string[] = [];
  const app: RunningApp = options.app ?? {
    version: () => VERSION,
    rtcMemory: new Uint8Array(0),
    onReset: () => resets.push(dec(app.rtcMemory)),
    files: new Map([["webrepl_cfg.py", `PASS = '${options.password ?? PASSWORD}'\n`]]),
    frozenOta: options.frozenOta ?? true,
    log: (line) => console.push(line),
  };
  const server = await startWebReplServer({ host: "127.0.0.1", port: 0, app });
  return {
    app,
    server,
    resets,
    console,
    target: { host: "127.0.0.1", port: server.port, password: PASSWORD, timeoutMs: 3000 },
    [Symbol.asyncDispose]: () => server.close(),
  };
}

/** A bare TCP peer that records every byte it receives. */
async function openWire(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  let closed = false;
  const pump = (async () => {
    const buffer = new Uint8Array(4096);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        chunks.push(buffer.slice(0, n));
      }
    } catch { /* closed */ }
    closed = true;
  })();
  const received = () => concat(chunks);
  return {
    received,
    get closed() {
      return closed;
    },
    send: async (bytes: Uint8Array) => {
      await conn.write(bytes);
    },
    /** Waits until `done(received bytes)` or `ms` pass; returns whether it became true. */
    waitFor: async (done: (bytes: Uint8Array) => boolean, ms = 3000) => {
      const deadline = Date.now() + ms;
      while (!done(received()) && !closed && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      return done(received());
    },
    [Symbol.asyncDispose]: async () => {
      try {
        conn.close();
      } catch { /* closed */ }
      await pump;
    },
  };
}

/** The text of the server's frames in `bytes` (after the 101 head). */
function framesText(bytes: Uint8Array): string {
  const done = new HttpHeadReader().push(bytes);
  if (!done) return "";
  return new FrameDecoder().push(done.rest).map((f) => dec(f.payload)).join("");
}

Deno.test("startWebReplServer() answers the exact Sec-WebSocket-Key header and ignores a lower-case one", async () => {
  await using device = await bootDevice();
  const key = "dGhlIHNhbXBsZSBub25jZQ==";

  // Lower case, as Deno's WebSocket sends it: the device never answers.
  await using lower = await openWire(device.server.port);
  await lower.send(enc(
    "GET / HTTP/1.1\r\nHost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n" +
      `sec-websocket-key: ${key}\r\nsec-websocket-version: 13\r\n\r\n`,
  ));
  assertEquals(await lower.waitFor((b) => b.length > 0, 400), false);
  assertEquals(lower.closed, false);

  // The exact spelling: 101 with the RFC accept value, then the "Password: " frame.
  await using exact = await openWire(device.server.port);
  await exact.send(encodeHandshakeRequest({ host: "x", key }));
  assert(await exact.waitFor((b) => framesText(b) === "Password: "), dec(exact.received()));
  assertEquals(
    exact.received(),
    concat([
      encodeHandshakeResponse("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
      encodeFrame(OPCODE.text, enc("Password: ")),
    ]),
  );
});

Deno.test("WebReplClient.connect() logs in and exec() runs multi-line code in the raw REPL", async () => {
  await using device = await bootDevice();
  await using repl = await WebReplClient.connect(device.target);
  const r = await repl.exec(
    "def square(n):\n    return n * n\n\nfor i in range(3):\n    print(i, square(i))\n",
  );
  assertEquals(r, { output: "0 0\n1 1\n2 4\n" });
  const failed = await repl.exec("print('before')\nraise ValueError('boom')");
  assertEquals(failed.output, "before\n");
  assertEquals(
    failed.error,
    'Traceback (most recent call last):\n  File "<stdin>", line 2, in <module>\nValueError: boom\n',
  );
  assertEquals(await repl.exec("import os\nprint(os.uname().version, os.uname().sysname)"), {
    output: `${VERSION} esp8266\n`,
  });
});

Deno.test("exec() names stay defined across connections until the device resets", async () => {
  await using device = await bootDevice();
  {
    await using repl = await WebReplClient.connect(device.target);
    await repl.exec("import machine\nanswer = 42");
  }
  await using repl = await WebReplClient.connect(device.target);
  assertEquals(await repl.exec("print(answer, machine.__name__)"), { output: "42 machine\n" });
  assertEquals(await repl.exec("import os\nprint(os.uname()[3])"), { output: `${VERSION}\n` });
});

Deno.test("WebReplClient.connect() with a wrong password: one attempt, a clear WebReplError, the password never shown", async () => {
  await using device = await bootDevice({ password: "rightpw1" });
  const error = await assertRejects(
    () => WebReplClient.connect({ ...device.target, password: PASSWORD }),
    WebReplError,
    "wrong WebREPL password for 127.0.0.1:",
  );
  assertStringIncludes(error.message, "Access denied");
  assertEquals(device.console.filter((l) => l.startsWith("WebREPL connection from")).length, 1);
  assertEquals(device.console.filter((l) => l === "WebREPL: access denied").length, 1);
  const everything = [error.message, String(error.stack), ...device.console].join("\n");
  assert(!everything.includes(PASSWORD), "the password leaked");
  assert(!everything.includes("rightpw1"), "the device's password leaked");
});

Deno.test("WebReplClient.connect() is refused while another client is connected", async () => {
  await using device = await bootDevice();
  await using first = await WebReplClient.connect(device.target);
  await assertRejects(
    () => WebReplClient.connect(device.target),
    WebReplError,
    "a second client is connected: the device accepts one at a time",
  );
  assert(device.console.some((l) => /^Concurrent WebREPL connection from .* rejected$/.test(l)));
  assertEquals(await first.exec("print(1 + 1)"), { output: "2\n" });
});

Deno.test("connect() to a port with no WebREPL says how to enable it", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assertRejects(
    () => WebReplClient.connect({ host: "127.0.0.1", port, password: PASSWORD }),
    WebReplError,
    `no WebREPL at 127.0.0.1:${port}: is the board running MicroPython with WebREPL enabled? ` +
      "(enable it once on its serial REPL: import webrepl_setup)",
  );
});

Deno.test("connect() gives up on a peer that never answers the handshake", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const port = (listener.addr as Deno.NetAddr).port;
  await assertRejects(
    () => WebReplClient.connect({ host: "127.0.0.1", port, password: PASSWORD, timeoutMs: 300 }),
    WebReplError,
    `timed out after 0.3 s waiting for the WebSocket handshake reply from 127.0.0.1:${port}`,
  );
  (await accepted).close();
  listener.close();
});

Deno.test("friendly REPL echoes every typed character and auto-indents a compound statement", async () => {
  await using device = await bootDevice();
  await using wire = await openWire(device.server.port);
  await wire.send(encodeHandshakeRequest({ host: "x", key: "a2V5a2V5a2V5a2V5a2V5aw==" }));
  await wire.waitFor((b) => framesText(b).endsWith("Password: "));
  await wire.send(encodeClientFrame(OPCODE.text, enc(PASSWORD + "\r")));
  await wire.waitFor((b) => framesText(b).endsWith(">>> "));
  let seen = framesText(wire.received()).length;
  // Types like a person: one frame per character; returns what the board printed.
  const type = async (keys: string, until: string) => {
    for (const ch of keys) await wire.send(encodeClientFrame(OPCODE.text, enc(ch)));
    assert(await wire.waitFor((b) => framesText(b).slice(seen).endsWith(until)), until);
    const text = framesText(wire.received()).slice(seen);
    seen += text.length;
    return text;
  };
  assertEquals(framesText(wire.received()), "Password: \r\nWebREPL connected\r\n>>> ");
  assertEquals(await type("6 * 7\r", ">>> "), "6 * 7\r\n42\r\n>>> ");
  assertEquals(await type("def f(x):\r", "...     "), "def f(x):\r\n...     ");
  assertEquals(await type("return x + 1\r", "...     "), "return x + 1\r\n...     ");
  // Backspace undoes one level of indentation; Enter on the empty line runs the code.
  assertEquals(await type("\x7f", "\x1b[K"), "\b\b\b\b\x1b[K");
  assertEquals(await type("\r", ">>> "), "\r\n>>> ");
  assertEquals(await type("f(1)\r", ">>> "), "f(1)\r\n2\r\n>>> ");
  assertEquals(
    await type("1/0\r", ">>> "),
    '1/0\r\nTraceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n' +
      "ZeroDivisionError: divide by zero\r\n>>> ",
  );
  // Raw REPL: no echo; OK, output, Ctrl-D, error, Ctrl-D, ">".
  assertEquals(await type("\x01", "\r\n>"), "\r\nraw REPL; CTRL-B to exit\r\n>");
  assertEquals(await type("print(f(2))\x04", "\x04>"), "OK3\r\n\x04\x04>");
});

Deno.test("import ota; ota.start() runs templates/ota.py: RTC memory holds yaotaota, onReset is called", async () => {
  await using device = await bootDevice();
  await using repl = await WebReplClient.connect(device.target);
  const outcome = await repl.execUntilReset("import ota; ota.start()");
  assertEquals(outcome, { reset: true });
  assertEquals(dec(device.app.rtcMemory), "yaotaota");
  assertEquals(device.resets, ["yaotaota"]);
  await device.server.stopped;
  // The running app is gone: nothing listens on the WebREPL port any more.
  await assertRejects(() => WebReplClient.connect(device.target), WebReplError, "no WebREPL at");
});

Deno.test("enterOtaMode() writes the RTC magic and resets directly when the firmware has no ota module", async () => {
  await using device = await bootDevice({ frozenOta: false });
  const steps: string[] = [];
  const report = await enterOtaMode(device.target, { onStep: (l) => steps.push(l) });
  assertEquals(report.method, "rtc-magic");
  assertEquals(report.before.version, VERSION);
  assertEquals(report.before.release, "1.19.1");
  assertEquals(device.resets, ["yaotaota"]);
  assert(steps.some((s) => s.includes("no 'ota' module")), steps.join("\n"));
});

Deno.test("enterOtaMode() uses ota.start() when the firmware has it", async () => {
  await using device = await bootDevice();
  assertEquals(await readRunningVersion(device.target), VERSION);
  const report = await enterOtaMode(device.target);
  assertEquals(report.method, "ota.start()");
  assertEquals(report.before.sysname, "esp8266");
  assertEquals(device.resets, ["yaotaota"]);
});

Deno.test("execUntilReset() takes silence after OK as the reset, as a real board sends no FIN", async () => {
  // A scripted board: handshake, login, raw REPL, then "OK" and silence on a held socket.
  await using board = startHostilePeer(async (session) => {
    await nextProgram(session, await enterRaw(session));
    // machine.reset(): nothing more, and the socket stays open until the client leaves.
    await session.until(() => session.ended, Infinity);
  });
  const port = board.port;
  const started = Date.now();
  const repl = await WebReplClient.connect({ host: "127.0.0.1", port, password: PASSWORD });
  const outcome = await repl.execUntilReset("import machine\nmachine.reset()", { silenceMs: 300 });
  assertEquals(outcome, { reset: true });
  assert(Date.now() - started < 2000, "waited too long for the silence");
  await repl.close();
});

Deno.test("machine.reset() keeps the files: a SPIKE-style enable sequence changes the password after reset", async () => {
  await using device = await bootDevice();
  {
    await using repl = await WebReplClient.connect(device.target);
    const setup = await repl.exec(
      "answer = 42\nfrom webrepl_setup import *\nchange_daemon(True)\n" +
        "with open('webrepl_cfg.py', 'w') as f:\n    f.write(\"PASS = 'newpass'\\n\")\n",
    );
    assertEquals(setup, { output: "" });
    assertEquals(await repl.execUntilReset("import machine\nmachine.reset()"), { reset: true });
  }
  assertEquals(device.app.files.get("webrepl_cfg.py"), "PASS = 'newpass'\n");
  assertEquals(device.app.files.get("boot.py"), "import webrepl\nwebrepl.start()\n");
  // The next boot reads webrepl_cfg.py again.
  await using next = await bootDevice({ app: device.app });
  await assertRejects(
    () => WebReplClient.connect(next.target),
    WebReplError,
    "wrong WebREPL password",
  );
  await using repl = await WebReplClient.connect({ ...next.target, password: "newpass" });
  assertEquals(
    await repl.exec("print(answer)").then((r) => r.error?.trim().split("\n").at(-1)),
    "NameError: name 'answer' isn't defined",
  );
});

Deno.test("startWebReplServer() answers a file-transfer version record (op 3) with three bytes", async () => {
  await using device = await bootDevice();
  await using wire = await openWire(device.server.port);
  await wire.send(encodeHandshakeRequest({ host: "x", key: "a2V5a2V5a2V5a2V5a2V5aw==" }));
  await wire.waitFor((b) => framesText(b).endsWith("Password: "));
  await wire.send(encodeClientFrame(OPCODE.text, enc(PASSWORD + "\r")));
  await wire.waitFor((b) => framesText(b).endsWith(">>> "));
  const record = new Uint8Array(82); // "<2sBBQLH64s": "WA", op, then zeros
  record.set([0x57, 0x41, 3]);
  await wire.send(encodeClientFrame(OPCODE.binary, record));
  const binary = (b: Uint8Array) => {
    const done = new HttpHeadReader().push(b);
    return done ? new FrameDecoder().push(done.rest).filter((f) => f.opcode === OPCODE.binary) : [];
  };
  assert(await wire.waitFor((b) => binary(b).length === 1));
  assertEquals(binary(wire.received())[0]!.payload, new Uint8Array([1, 19, 1]));
});
