import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { runTaskFile } from "../_helpers.ts";
import { UsageError } from "../../lib/errors.ts";
import { type MicroPythonVM, startMicroPython } from "../../lib/micropython/vm.ts";
import {
  checkWebreplPassword,
  enableWebreplProgram,
  monitorProgram,
} from "../../lib/setup/spike.ts";
import { parseSpikeArgs } from "../../tasks/spike.ts";

/**
 * The SPIKE side's UartRemote (docs/device.md, "LEGO SPIKE and UartRemote"): `repl_run`
 * hands its code to the test, which runs it in a second VM playing the ESP8266; the
 * uart plays back `_CHUNKS`, then ends the monitor loop with `MonitorEnd`.
 */
const FAKE_UARTREMOTE = `
import _host

_CHUNKS = []


class MonitorEnd(Exception):
    pass


class _Uart:
    def read(self, n):
        if not _CHUNKS:
            raise MonitorEnd()
        chunk = _CHUNKS.pop(0)
        assert chunk is None or len(chunk) <= n
        return chunk


class UartRemote:
    def __init__(self, port=0):
        _host.notify('port', port)
        self.uart = _Uart()

    def repl_activate(self):
        _host.notify('repl_activate', '')

    def repl_run(self, command, reply=True, raw_paste=True):
        _host.notify('repl_run' if reply else 'repl_run_noreply', command)
        return None
`;

/** What the ESP8266 side needs from the firmware's own modules. */
const FAKE_WEBREPL_SETUP = `
import _host


def change_daemon(action):
    _host.notify('change_daemon', str(action))
`;
const FAKE_MACHINE = `
import _host


def reset():
    _host.notify('reset', '')
`;

async function spikeVM(events: [string, unknown][]): Promise<MicroPythonVM> {
  const vm = await startMicroPython({ onNotify: (name, payload) => events.push([name, payload]) });
  await vm.writeFile("/projects/__init__.py", "");
  await vm.writeFile("/projects/uartremote.py", FAKE_UARTREMOTE);
  return vm;
}

const NASTY_PASSWORDS = [
  `a'b"c\\d`,
  "pässwö",
  "päss€",
  "'''x",
  "\\\\\\\\",
  "{}%s",
  "ab😀c",
  "\\x41\\n",
  `"""'`,
  "');#",
  "a b c",
  "123456789",
];

Deno.test("enableWebreplProgram() leaves the ESP8266 a webrepl_cfg.py whose PASS is the password, for nasty passwords", async () => {
  const spikeEvents: [string, unknown][] = [];
  const espEvents: [string, unknown][] = [];
  using spike = await spikeVM(spikeEvents);
  using esp = await startMicroPython({
    onNotify: (name, payload) => espEvents.push([name, payload]),
  });
  await esp.writeFile("/webrepl_setup.py", FAKE_WEBREPL_SETUP);
  await esp.writeFile("/machine.py", FAKE_MACHINE);

  for (const password of NASTY_PASSWORDS) {
    spikeEvents.length = 0;
    espEvents.length = 0;
    const program = enableWebreplProgram("E", password);
    assert([...program].every((c) => c.charCodeAt(0) < 0x80), "the program is plain ASCII");
    const ran = await spike.run(program);
    assertEquals(ran.error, undefined, `SPIKE side, password ${JSON.stringify(password)}`);
    // The SPIKE side: the port, then the sequence of docs/device.md, the reset without a reply.
    assertEquals(spikeEvents.map(([name]) => name), [
      "port",
      "repl_activate",
      "repl_run",
      "repl_run",
      "repl_run",
      "repl_run_noreply",
    ]);
    assertEquals(spikeEvents[0]?.[1], "E");
    assertEquals(spikeEvents[2]?.[1], "from webrepl_setup import *");
    assertEquals(spikeEvents[3]?.[1], "change_daemon(True)");

    // The ESP8266 side runs each forwarded statement in its REPL, in order.
    await esp.run("import os\ntry:\n    os.remove('webrepl_cfg.py')\nexcept OSError:\n    pass");
    for (const [name, code] of spikeEvents.filter(([n]) => n.startsWith("repl_run"))) {
      const r = await esp.run(code as string);
      assertEquals(r.error, undefined, `ESP side ${name}: ${code}`);
    }
    const cfg = await esp.readFile("/webrepl_cfg.py");
    assert(cfg?.startsWith("PASS = ") && cfg.endsWith("\n") && cfg.split("\n").length === 2, cfg);
    await esp.run(
      "import _host\nd = {}\nexec(open('webrepl_cfg.py').read(), d)\n_host.notify('PASS', d['PASS'])",
    );
    assertEquals(espEvents, [
      ["change_daemon", "True"],
      ["reset", ""],
      ["PASS", password],
    ], `password ${JSON.stringify(password)}`);
  }
});

Deno.test("monitorProgram() prints what the ESP8266 sends, in UTF-8, dropping bad bytes", async () => {
  const events: [string, unknown][] = [];
  using spike = await spikeVM(events);
  await spike.run(
    "import projects.uartremote as ur\n" +
      "ur._CHUNKS[:] = [b'MicroPython v1.19.1\\r\\n', None, b'', b'caf\\xc3', b'\\xa9 \\xe2\\x82', " +
      "b'\\xac\\n', b'boot \\xff\\xfe noise\\n', b'IP 192.168.4.1\\n']",
  );
  const r = await spike.run(monitorProgram("A"));
  assertStringIncludes(r.error ?? "", "MonitorEnd");
  assertEquals(r.output, "MicroPython v1.19.1\r\ncafé €\nboot  noise\nIP 192.168.4.1\n");
  assertEquals(events, [["port", "A"]]);
});

Deno.test("checkWebreplPassword() refuses what WebREPL cannot take, without repeating it", () => {
  const refuse = (password: string, message: string) => {
    const e = assertThrows(() => checkWebreplPassword(password), UsageError, message);
    assert(!e.message.includes(password), "the message shows the password");
  };
  refuse("abc", "the WebREPL password has 3 characters; WebREPL needs at least 4");
  refuse("pässwörd", "the WebREPL password is 10 bytes in UTF-8; WebREPL keeps at most 9");
  refuse("0123456789", "is 10 bytes");
  refuse("abc\ndef", "contains a control character");
  refuse("abc\rdef", "contains a control character");
  refuse("abc\x00def", "contains a control character");
  refuse("€€€", "has 3 characters"); // 9 bytes, but webrepl_setup wants 4 characters
  checkWebreplPassword("€€ab"); // 4 characters, 8 bytes
  checkWebreplPassword("123456789");
});

Deno.test("parseSpikeArgs() takes --password over WEBREPL_PASSWORD and checks the hub port", () => {
  assertEquals(parseSpikeArgs(["monitor"]), { program: "monitor", hubPort: "E" });
  assertEquals(
    parseSpikeArgs(["enable-webrepl", "--hub-port", "b"], { WEBREPL_PASSWORD: "from-env" }),
    { program: "enable-webrepl", hubPort: "B", password: "from-env", passwordSource: "env" },
  );
  assertEquals(
    parseSpikeArgs(["enable-webrepl", "--password", "flag1"], { WEBREPL_PASSWORD: "from-env" })
      .password,
    "flag1",
  );
  assertThrows(
    () => parseSpikeArgs([]),
    UsageError,
    "say which program: monitor or enable-webrepl",
  );
  assertThrows(() => parseSpikeArgs(["status"]), UsageError, "unknown program 'status'");
  assertThrows(
    () => parseSpikeArgs(["monitor", "--hub-port", "G"]),
    UsageError,
    "--hub-port expects a SPIKE hub port A to F, got 'G'",
  );
  assertThrows(() => parseSpikeArgs(["enable-webrepl"]), UsageError, "set WEBREPL_PASSWORD");
});

Deno.test("spike task prints the enable-webrepl program and keeps the password off stderr", async () => {
  const password = `p"ä'\\`;
  const r = await runTaskFile("spike", ["enable-webrepl", "--hub-port", "C"], {
    env: { WEBREPL_PASSWORD: password },
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout, enableWebreplProgram("C", password) + "\n");
  assertStringIncludes(
    r.stderr,
    "Paste the printed program into a Python project in the SPIKE app",
  );
  assert(!r.stderr.includes(password));
});

Deno.test("spike task refuses a password WebREPL cannot take without showing it", async () => {
  const password = "pässwörd";
  const r = await runTaskFile("spike", ["enable-webrepl"], { env: { WEBREPL_PASSWORD: password } });
  assertEquals(r.code, 2);
  assertEquals(r.stdout, "");
  assertStringIncludes(r.stderr, "error: spike: the WebREPL password is 10 bytes in UTF-8");
  assert(!r.stderr.includes(password));
});

Deno.test("spike task without a password says how to give one", async () => {
  const r = await runTaskFile("spike", ["enable-webrepl"], { env: { WEBREPL_PASSWORD: "" } });
  assertEquals(r.code, 2);
  assertStringIncludes(
    r.stderr,
    "error: spike: enable-webrepl needs the WebREPL password (4 to 9 bytes): set WEBREPL_PASSWORD",
  );
});

Deno.test("spike task prints the monitor program", async () => {
  const r = await runTaskFile("spike", ["monitor", "--hub-port", "d"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout, monitorProgram("D") + "\n");
});
