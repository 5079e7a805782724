/**
 * The second hostile sweep: odd and giant answers from a board, a device file as the
 * image, and a peer's text in a --verbose line. Each ends in a message a user can act on,
 * never in "unexpected error (a bug)", a flood or a hang.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import { hostileWebRepl } from "../_hostile_webrepl.ts";
import { formatTraceLine } from "../../lib/cli/trace_sink.ts";

const ENV = { WEBREPL_PASSWORD: "hostile1", NO_COLOR: "1" };
const target = (port: number) => ["--ip", "127.0.0.1", "--port", String(port), "--timeout", "3"];

Deno.test("ls: a listing line that is not an entry is the board's fault, named, not a bug", async () => {
  await using dir = await tempDir();
  for (const line of ["5", '["file", 1', '["file", "x", 5]', '["link", 0, "a"]']) {
    await using board = hostileWebRepl((code) =>
      code.includes("os.listdir") ? { output: `ok\r\n${line}\r\n` } : { output: "" }
    );
    const r = await runTaskFile("ls", target(board.port), { cwd: dir.path, env: ENV });
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, `error: 127.0.0.1:${board.port} answered listing '/' with `);
    assertStringIncludes(r.stderr, "not as MicroPython does");
    assert(!r.stderr.includes("unexpected error"), r.stderr);
  }
});

Deno.test("status: a board's giant answers are cut in the table, kept whole in --json", async () => {
  await using dir = await tempDir();
  const release = "1".repeat(300_000);
  const id = "f".repeat(200_000);
  await using board = hostileWebRepl((code) =>
    code.includes("uname()")
      ? { output: ["esp8266", "esp8266", release, "v", "m"].join("\t") + "\r\n" }
      : code.includes("_ota_m")
      ? { output: `ota ${JSON.stringify([id, null])}\r\n` }
      : { output: "" }
  );
  const r = await runTaskFile("status", target(board.port), { cwd: dir.path, env: ENV });
  assertEquals(r.code, 0, r.stderr);
  const row = r.stdout.split("\n")[2]!;
  assert(row.length < 400, `a row of ${row.length} characters`);
  assertStringIncludes(row, `${"1".repeat(80)}… (${300_000 - 80} more characters)`);
  const j = await runTaskFile("status", [...target(board.port), "--json"], {
    cwd: dir.path,
    env: ENV,
  });
  const report = JSON.parse(j.stdout);
  assertEquals(report.devices[0].micropython.release, release);
  assertEquals(report.devices[0].build.id, id);
});

Deno.test("deploy of a device file (/dev/zero) stops at 16 MiB with a message, not after memory runs out", async () => {
  await using dir = await tempDir();
  const r = await runTaskFile("deploy", [
    "--ip",
    "127.0.0.1",
    "--port",
    "9",
    "--key",
    `${VECTORS}test-key-512.pem`,
    "/dev/zero",
  ], { cwd: dir.path, env: { OTA_LOCK_DIR: dir.path } });
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(
    r.stderr,
    "error: '/dev/zero' holds more than 16 MiB (or never ends, as a device does): larger than " +
      "any ESP8266 flash, so not an image for one. Name the image file.",
  );
});

Deno.test("formatTraceLine() keeps a peer's text on its one line, its control characters shown", () => {
  assertEquals(
    formatTraceLine(1, "webrepl", "handshake accepted (HTTP/1.1 101\nFAKE OK\x1b[2J)"),
    "[   1.000] webrepl: handshake accepted (HTTP/1.1 101\\nFAKE OK\\x1b[2J)",
  );
});
