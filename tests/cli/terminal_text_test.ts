/**
 * Text from a board never reaches the terminal raw: `terminalSafe` shows control
 * characters as escapes, and the real tasks (status, ls, trigger, the fleet report) run
 * against a hostile WebREPL board print no control byte at all.
 */
import { assert, assertEquals } from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { hostileWebRepl } from "../_hostile_webrepl.ts";
import {
  terminalLine,
  terminalLines,
  terminalSafe,
  terminalSafeDeep,
} from "../../lib/cli/terminal_text.ts";

/** Clears the screen, retitles the window, rings, forges a line, reverses the text. */
const HOSTILE = "\x1b[2J\x1b]0;pwned\x07\r\nFAKE OK\u202e\x9b31m\x7f";

Deno.test("terminalSafe() shows every control character, C1 control and bidi override as an escape", () => {
  assertEquals(
    terminalSafe(HOSTILE),
    "\\x1b[2J\\x1b]0;pwned\\x07\\r\\nFAKE OK\\u202e\\u009b31m\\u007f",
  );
  assertEquals(terminalSafe("plain text, ünïcode ✓"), "plain text, ünïcode ✓");
  assertEquals(terminalSafe("x".repeat(12), 5), "xxxxx… (7 more characters)");
});

Deno.test("terminalLines() keeps line feeds, tabs and our own colours, and shows the rest", () => {
  assertEquals(
    terminalLines("\x1b[31merror: a\x1b]0;t\x07\tb\nc\r\x1b[0m"),
    "\x1b[31merror: a\\x1b]0;t\\x07\tb\nc\\r\x1b[0m",
  );
  // A JSON line stays the same JSON value.
  const json = JSON.stringify({ s: "a\x85\u2028\u202e\x7f" });
  assertEquals(JSON.parse(terminalLines(json)), { s: "a\x85\u2028\u202e\x7f" });
});

Deno.test("terminalLine() keeps our own colours on one line and shows every other control", () => {
  assertEquals(
    terminalLine("\x1b[1m\x1b[31munsafe: a\nb\x1b[2J\x1b[0m\x1b[0m"),
    "\x1b[1m\x1b[31munsafe: a\\nb\\x1b[2J\x1b[0m\x1b[0m",
  );
});

Deno.test("terminalSafeDeep() makes every string of a report inert and leaves the rest", () => {
  assertEquals(
    terminalSafeDeep({ name: "a\nb", n: 3, rows: [{ e: "\x1b" }], ok: true, none: null }),
    { name: "a\\nb", n: 3, rows: [{ e: "\\x1b" }], ok: true, none: null },
  );
});

/** What the hostile board answers: its uname, build, listing and a trigger that "resets". */
function hostileAnswer(code: string): { output: string; error?: string } {
  if (code.includes("uname()")) {
    return {
      output: ["esp8266", "esp8266", `1.19${HOSTILE}`, `v1.19${HOSTILE}`, "ESP8266"].join("\t") +
        "\r\n",
    };
  }
  if (code.includes("_ota_m")) {
    return { output: `ota ${JSON.stringify([`abcd${HOSTILE}`, `1.0${HOSTILE}`])}\r\n` };
  }
  if (code.includes("os.listdir")) {
    const rows = [
      ["file", 12, `boot.py${HOSTILE}`],
      ["file", 3, "main.py\n   0 fake.py"],
      ["dir", 0, "\x1b[1Alib"],
    ];
    return { output: "ok\r\n" + rows.map((r) => JSON.stringify(r)).join("\r\n") + "\r\n" };
  }
  return { output: "", error: `Traceback:\r\nOSError: ${HOSTILE}\r\n` };
}

/** No C0 control but LF, no DEL, no C1 control, no bidi override. */
function assertInert(text: string, what: string): void {
  // deno-lint-ignore no-control-regex
  const raw = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/.exec(text);
  assert(
    raw === null,
    `${what} has the raw control ${JSON.stringify(raw?.[0])}:\n${JSON.stringify(text)}`,
  );
  for (const line of text.split("\n")) {
    assert(!/^\s*(FAKE OK|0 fake\.py)/.test(line), `${what} has a forged line: ${line}`);
  }
}

Deno.test("status, ls and trigger against a hostile board print no raw control byte (board strings shown as escapes)", async () => {
  await using board = hostileWebRepl(hostileAnswer);
  await using dir = await tempDir();
  const env = { WEBREPL_PASSWORD: "hostile1", NO_COLOR: "1" };
  const target = ["--ip", "127.0.0.1", "--port", String(board.port), "--timeout", "3"];

  const status = await runTaskFile("status", target, { cwd: dir.path, env });
  assertEquals(status.code, 0, status.stderr);
  assertInert(status.stdout, "status stdout");
  assertInert(status.stderr, "status stderr");
  assert(status.stdout.includes("1.19\\x1b[2J\\x1b]0;pwned\\x07\\nFAKE OK\\u202e"), status.stdout);
  assert(status.stdout.includes("abcd\\x1b[2J"), status.stdout);

  const ls = await runTaskFile("ls", target, { cwd: dir.path, env });
  assertEquals(ls.code, 0, ls.stderr);
  assertInert(ls.stdout, "ls stdout");
  assertEquals(ls.stdout.split("\n").length, 4, ls.stdout);
  assert(ls.stdout.includes(" 3 main.py\\n   0 fake.py\n"), ls.stdout);

  // A board whose error quotes control characters: the error line is inert too.
  const rm = await runTaskFile("rm", [...target, "x.py"], { cwd: dir.path, env });
  assertEquals(rm.code, 1);
  assertInert(rm.stderr, "rm stderr");
  assert(rm.stderr.includes("failed on the board: FAKE OK\\u202e\\u009b31m"), rm.stderr);

  const trigger = await runTaskFile("trigger", [...target, "--watch", "0"], {
    cwd: dir.path,
    env,
  });
  assertInert(trigger.stdout, "trigger stdout");
  assertInert(trigger.stderr, "trigger stderr");
  assert(trigger.stdout.includes("v1.19\\x1b[2J") || trigger.stderr.includes("v1.19\\x1b[2J"));
});

Deno.test("status --fleet: device names from the config are shown inert", async () => {
  await using board = hostileWebRepl(hostileAnswer);
  await using dir = await tempDir();
  await Deno.writeTextFile(
    `${dir.path}/ota.config.json`,
    JSON.stringify({
      devices: [{ name: "kitchen\x1b]0;x\x07\nFAKE OK", ip: "127.0.0.1", port: board.port }],
    }),
  );
  const r = await runTaskFile("status", ["--fleet", "--timeout", "3"], {
    cwd: dir.path,
    env: { WEBREPL_PASSWORD: "hostile1", NO_COLOR: "1" },
  });
  assertEquals(r.code, 0, r.stderr);
  assertInert(r.stdout, "status --fleet stdout");
  assertInert(r.stderr, "status --fleet stderr");
  assert(r.stdout.includes("kitchen\\x1b]0;x\\x07\\nFAKE OK"), r.stdout);
});

Deno.test("deploy --fleet: a device name from the config is inert in the progress lines and the report", async () => {
  await using dir = await tempDir();
  const image = makeSampleFirmware({ size: 16 * 1024, seed: 9 });
  await Deno.writeFile(`${dir.path}/fw.bin`, image);
  await Deno.writeTextFile(
    `${dir.path}/ota.config.json`,
    JSON.stringify({
      // Port 9 (discard): nothing answers, so the board fails after --timeout.
      devices: [{ name: "kitchen\x1b]0;x\x07\nFAKE OK\u202e", ip: "127.0.0.1", port: 9 }],
    }),
  );
  const r = await runTaskFile("deploy", [
    "--fleet",
    "--timeout",
    "1",
    "--key",
    `${VECTORS}test-key-512.pem`,
    "fw.bin",
  ], { cwd: dir.path, env: { NO_COLOR: "1", OTA_LOCK_DIR: dir.path } });
  assertEquals(r.code, 11, r.stderr);
  assertInert(r.stdout, "deploy --fleet stdout");
  assertInert(r.stderr, "deploy --fleet stderr");
  assert(r.stdout.includes("kitchen\\x1b]0;x\\x07\\nFAKE OK\\u202e"), r.stdout);
});

Deno.test("exec: the board's traceback on stderr is inert; the program's own output is left as printed", async () => {
  await using board = hostileWebRepl(() => ({
    output: "\x1b[1mbold\x1b[0m\r\n",
    error: `Traceback (most recent call last):\r\nValueError: ${HOSTILE}\r\n`,
  }));
  await using dir = await tempDir();
  const r = await runTaskFile(
    "exec",
    ["--ip", "127.0.0.1", "--port", String(board.port), "--timeout", "3", "x = 1"],
    { cwd: dir.path, env: { WEBREPL_PASSWORD: "hostile1", NO_COLOR: "1" } },
  );
  assertEquals(r.code, 1, r.stderr);
  assertEquals(r.stdout, "\x1b[1mbold\x1b[0m\n");
  // Its lines are the board's own (a traceback has several): no control byte but LF in them.
  assertInert(r.stderr.replace("\nFAKE OK", " FAKE OK"), "exec stderr");
  assert(r.stderr.includes("ValueError: \\x1b[2J\\x1b]0;pwned\\x07\nFAKE OK\\u202e"), r.stderr);
});
