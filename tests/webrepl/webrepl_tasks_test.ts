/**
 * The WebREPL tasks as a user runs them (`deno run -A tasks/NAME.ts …`) against virtual
 * boards in this process: what they print, where, and their exit codes.
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { allByteValues, bootBoard } from "../_webrepl_device.ts";
import { ROOT, runTaskFile, tempDir } from "../_helpers.ts";
import { parseExecArgs } from "../../tasks/exec.ts";
import { parseGetArgs } from "../../tasks/get.ts";
import { parsePutArgs } from "../../tasks/put.ts";
import { UsageError } from "../../lib/errors.ts";

const PASSWORD = "s3cr3tPw";

function at(board: { target: { port: number } }): string[] {
  return ["--ip", "127.0.0.1", "--device-port", String(board.target.port)];
}

function run(name: string, args: string[], env: Record<string, string> = {}, stdin?: string) {
  return runTaskFile(name, args, {
    env: { WEBREPL_PASSWORD: PASSWORD, ...env },
    ...(stdin === undefined ? {} : { stdin }),
  });
}

Deno.test("exec prints the output and exits 0; an exception's traceback goes to stderr, exit 1", async () => {
  await using board = await bootBoard(PASSWORD);
  const ok = await run("exec", [...at(board), "for i in range(3):\n    print(i * i)"]);
  assertEquals([ok.code, ok.stdout, ok.stderr], [0, "0\n1\n4\n", ""]);

  const raised = await run("exec", [
    ...at(board),
    "print('before')\nraise ValueError('bad value')",
  ]);
  assertEquals(raised.code, 1);
  assertEquals(raised.stdout, "before\n");
  assertEquals(
    raised.stderr,
    'Traceback (most recent call last):\n  File "<stdin>", line 2, in <module>\n' +
      "ValueError: bad value\n",
  );

  const json = await run("exec", [...at(board), "--json", "1/0"]);
  assertEquals(json.code, 1);
  const report = JSON.parse(json.stdout);
  assertEquals([report.ok, report.kind, report.error, report.output], [
    false,
    "RemoteException",
    "ZeroDivisionError: divide by zero",
    "",
  ]);
  assertEquals(
    (await run("exec", [...at(board), "--json", "print(6 * 7)"])).stdout.trim(),
    JSON.stringify({
      ok: true,
      ip: "127.0.0.1",
      port: board.target.port,
      output: "42\n",
    }),
  );
});

Deno.test("put then get round-trip a binary file byte for byte; ls and rm see it; --json summaries", async () => {
  await using board = await bootBoard(PASSWORD);
  await using dir = await tempDir();
  const data = allByteValues(3000);
  await Deno.writeFile(`${dir.path}/blob.bin`, data);

  const put = await run("put", [...at(board), "--json", `${dir.path}/blob.bin:stored.bin`]);
  assertEquals(put.code, 0, put.stderr);
  const putReport = JSON.parse(put.stdout);
  assertEquals([putReport.ok, putReport.remote, putReport.bytes], [true, "stored.bin", 3000]);

  const get = await run("get", [...at(board), "--json", "stored.bin", `${dir.path}/back.bin`]);
  assertEquals(get.code, 0, get.stderr);
  assertEquals(JSON.parse(get.stdout).bytes, 3000);
  assertEquals(await Deno.readFile(`${dir.path}/back.bin`), data);

  const ls = await run("ls", [...at(board), "--json"]);
  const entries = JSON.parse(ls.stdout).entries as { name: string; size: number }[];
  assertEquals(
    entries.find((e) => e.name === "stored.bin"),
    { name: "stored.bin", type: "file", size: 3000 } as never,
  );

  const rm = await run("rm", [...at(board), "stored.bin"]);
  assertEquals([rm.code, rm.stderr], [
    0,
    `removed file 'stored.bin' on 127.0.0.1:${board.target.port}\n`,
  ]);
  const again = await run("rm", [...at(board), "stored.bin"]);
  assertEquals([again.code, again.stderr], [
    1,
    `error: no file or folder 'stored.bin' on 127.0.0.1:${board.target.port}\n`,
  ]);
});

Deno.test("put of a module, then exec imports it", async () => {
  await using board = await bootBoard(PASSWORD);
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/blink.py`, "PIN = 2\ndef rate():\n    return PIN * 21\n");
  const put = await run("put", [...at(board), `${dir.path}/blink.py`]);
  assertEquals(put.code, 0, put.stderr);
  assertStringIncludes(put.stdout, `blink.py → blink.py on 127.0.0.1:${board.target.port} (`);
  const r = await run("exec", [...at(board), "import blink\nprint(blink.rate())"]);
  assertEquals([r.code, r.stdout], [0, "42\n"]);
});

Deno.test("get of a missing file: one line naming it, exit 1, the local file untouched", async () => {
  await using board = await bootBoard(PASSWORD);
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/keep.txt`, "mine");
  const r = await run("get", [...at(board), "--force", "nope.txt", `${dir.path}/keep.txt`]);
  assertEquals(r.code, 1);
  assertEquals(
    r.stderr,
    // The hint carries the run's --device-port: it runs as printed.
    `error: no file 'nope.txt' on 127.0.0.1:${board.target.port} (list the files with ` +
      `'deno task ls --device-port ${board.target.port}')\n`,
  );
  assertEquals(await Deno.readTextFile(`${dir.path}/keep.txt`), "mine");
  const json = await run("get", [...at(board), "--json", "nope.txt", `${dir.path}/x`]);
  assertEquals(JSON.parse(json.stdout).kind, "RemoteFileError");
});

Deno.test("a wrong password: exit 1 with the board's answer, the password never shown", async () => {
  await using board = await bootBoard(PASSWORD);
  const r = await run("ls", [...at(board)], { WEBREPL_PASSWORD: "wrongPw1" });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "wrong WebREPL password for 127.0.0.1:");
  assert(!r.stderr.includes("wrongPw1") && !r.stdout.includes("wrongPw1"));
});

Deno.test("bad arguments exit 2 with the reason; parse*Args() say the same", async () => {
  const r = await run("get", ["--ip", "127.0.0.1", "--json", "main.py", "-"]);
  assertEquals(r.code, 2);
  assertStringIncludes(
    r.stderr,
    "error: get: --json and FILE '-' both write to stdout: give a FILE",
  );
  assertEquals((await run("put", ["--ip", "127.0.0.1"])).code, 2);
  assertEquals((await run("repl", ["--ip", "127.0.0.1", "extra"])).code, 2);
  assertThrows(() => parseExecArgs(["a", "b"]), UsageError, "one CODE argument only (quote it)");
  assertThrows(
    () => parsePutArgs(["--fleet", "--ip", "1.2.3.4", "a"]),
    UsageError,
    "leave out --ip",
  );
  assertThrows(
    () => parsePutArgs(["--only", "x", "a"]),
    UsageError,
    "--only and --concurrency go with --fleet",
  );
  assertThrows(
    () => parseGetArgs(["--device-port", "70000", "a"]),
    UsageError,
    "--device-port expects a port number",
  );
  assertEquals(parsePutArgs(["--timeout", "2", "a.py:lib/"]).remote, "lib/");
});

Deno.test("repl through a pipe: lines go in, the session's transcript comes out, end of input ends it", async () => {
  await using board = await bootBoard(PASSWORD);
  const r = await run("repl", at(board), {}, "x = 6 * 7\nx\nprint('done')\n");
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout, ">>> x = 6 * 7\r\n>>> x\r\n42\r\n>>> print('done')\r\ndone\r\n>>> ");
  assertEquals(r.stderr, `Connected to 127.0.0.1:${board.target.port}. Use Ctrl-] to leave.\n`);
});

Deno.test("repl through a pipe kept open: Ctrl-] leaves with exit 0", async () => {
  await using board = await bootBoard(PASSWORD);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tasks/repl.ts`, ...at(board)],
    env: { NO_COLOR: "1", WEBREPL_PASSWORD: PASSWORD },
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  await writer.write(enc.encode("2 ** 10\n"));
  let shown = "";
  const reader = child.stdout.getReader();
  while (!shown.includes("1024\r\n>>> ")) {
    const { value, done } = await reader.read();
    if (done) break;
    shown += new TextDecoder().decode(value);
  }
  await writer.write(enc.encode("\x1d"));
  while (!(await reader.read()).done) { /* drain */ }
  const status = await child.status;
  await writer.close().catch(() => {});
  assertEquals([status.code, shown], [0, ">>> 2 ** 10\r\n1024\r\n>>> "]);
});

Deno.test("put --fleet copies to every board, each with its password; a failed board fails the run", async () => {
  await using kitchen = await bootBoard(PASSWORD);
  await using cellar = await bootBoard("cellarPw");
  await using dir = await tempDir();
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  await Deno.writeTextFile(
    `${dir.path}/ota.config.json`,
    JSON.stringify({
      devices: [
        { name: "kitchen", ip: "127.0.0.1", port: kitchen.target.port, tags: ["live"] },
        {
          name: "cellar",
          ip: "127.0.0.1",
          port: cellar.target.port,
          passwordEnv: "CELLAR_PW",
          tags: ["live"],
        },
        { name: "attic", ip: "127.0.0.1", port: deadPort },
      ],
    }),
  );
  await Deno.writeTextFile(`${dir.path}/settings.json`, '{"rate": 5}\n');
  const config = ["--config", `${dir.path}/ota.config.json`];
  const env = { CELLAR_PW: "cellarPw" };

  const all = await run("put", [...config, "--fleet", "--json", `${dir.path}/settings.json`], env);
  assertEquals(all.code, 10, all.stderr);
  const report = JSON.parse(all.stdout);
  assertEquals(report.failed, ["attic"]);
  assertEquals(
    report.devices.map((
      d: { name: string; ok: boolean; remote?: string },
    ) => [d.name, d.ok, d.remote]),
    [["kitchen", true, "settings.json"], ["cellar", true, "settings.json"], [
      "attic",
      false,
      undefined,
    ]],
  );
  assertStringIncludes(report.devices[2].error, `no WebREPL at 127.0.0.1:${deadPort}`);

  const live = await run("put", [
    ...config,
    "--fleet",
    "--only",
    "live",
    `${dir.path}/settings.json:conf.json`,
  ], env);
  assertEquals(live.code, 0, live.stderr);
  assertStringIncludes(live.stdout, "'" + `${dir.path}/settings.json' is on all 2 boards`);
  for (const board of [kitchen, cellar]) {
    assertEquals(board.app.files.get("conf.json"), '{"rate": 5}\n');
  }
  assert(!all.stderr.includes("cellarPw") && !all.stdout.includes(PASSWORD));
});
