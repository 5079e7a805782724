/**
 * What `put` and `get` leave behind when things go wrong (issue 21): an interrupted put
 * leaves the board's file as it was (temporary name, then a rename on the board), `get`
 * does not replace a local file without --force, `put` reads only regular files of a
 * size a board holds (or stdin), names a board cannot carry are refused, and the virtual
 * device gives an empty file back empty.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { bootBoard } from "../_webrepl_device.ts";
import { ROOT, runTaskFile, tempDir } from "../_helpers.ts";
import { WebReplClient } from "../../lib/webrepl/client.ts";
import { getFromBoard, PUT_TEMP_NAME, putToBoard } from "../../lib/webrepl/tools.ts";
import { putFile } from "../../lib/webrepl/file_transfer.ts";
import { WebReplError } from "../../lib/errors.ts";
import { enterRaw, nextProgram, startHostilePeer } from "../_hostile_webrepl.ts";
import { encodeReply, REQUEST_BYTES } from "../../lib/webrepl/file_records.ts";

const PASSWORD = "s3cr3tPw";
const enc = (s: string) => new TextEncoder().encode(s);

function at(board: { target: { port: number } }): string[] {
  return ["--ip", "127.0.0.1", "--port", String(board.target.port)];
}

function run(name: string, args: string[], options: { cwd?: string; stdin?: string } = {}) {
  return runTaskFile(name, args, { ...options, env: { WEBREPL_PASSWORD: PASSWORD } });
}

/** The client, with the connection "dropped" at the `failAt`-th binary send. */
function dropsAt(client: WebReplClient, failAt: number) {
  let sends = 0;
  return {
    address: client.address,
    timeoutMs: client.timeoutMs,
    exec: (code: string) => client.exec(code),
    readBinary: client.readBinary.bind(client),
    sendBinary: async (bytes: Uint8Array, frameBytes?: number) => {
      if (++sends === failAt) {
        await client.close();
        throw new WebReplError(`${client.address} closed the connection (ConnectionReset)`);
      }
      await client.sendBinary(bytes, frameBytes);
    },
  };
}

Deno.test("an interrupted put leaves the board's main.py as it was, and says so", async () => {
  const original = "print('the app that works')\n";
  await using board = await bootBoard(PASSWORD, { "main.py": original });
  const client = await WebReplClient.connect(board.target);
  // The request record goes, one 1024-byte frame of data goes, then the link drops.
  await assertRejects(
    () => putToBoard(dropsAt(client, 3), "main.py", new Uint8Array(5000).fill(0x23), undefined),
    WebReplError,
    "closed the connection (ConnectionReset); the board's 'main.py' is unchanged (the bytes " +
      `went to '${PUT_TEMP_NAME}' first, which may be left over: rm removes it); put again`,
  );
  await using again = await WebReplClient.connect(board.target);
  assertEquals((await again.exec("print(open('main.py').read(), end='')")).output, original);
  // A whole put replaces it, and leaves no temporary file.
  await putToBoard(again, "main.py", enc("print('new')\n"), undefined);
  assertEquals(
    (await again.exec("print(open('main.py').read(), end='')")).output,
    "print('new')\n",
  );
  assertEquals(
    (await again.exec("import os\nprint(os.listdir())")).output.includes(".yaota"),
    false,
  );
});

Deno.test("a put where no temporary name fits writes in place, and a failure says the file may be partial", async () => {
  const folder = "d".repeat(50);
  await using board = await bootBoard(PASSWORD, { [`${folder}/main.py`]: "old\n" });
  const client = await WebReplClient.connect(board.target);
  await assertRejects(
    () => putToBoard(dropsAt(client, 3), "main.py", new Uint8Array(5000), `${folder}/main.py`),
    WebReplError,
    `'${folder}/main.py' on ${client.address} was emptied when the put began and may now hold ` +
      "part of the file (its folder's name is too long for a temporary copy beside it): put it again",
  );
});

Deno.test("the virtual device gives an empty file back empty (not the 1 byte of b''.hex())", async () => {
  await using board = await bootBoard(PASSWORD);
  await using client = await WebReplClient.connect(board.target);
  await putFile(client, "empty.txt", new Uint8Array(0));
  assertEquals(await getFromBoard(client, "empty.txt"), new Uint8Array(0));
});

Deno.test("get does not replace an existing local file without --force, and checks before connecting", async () => {
  await using board = await bootBoard(PASSWORD, { "conf.txt": "from the board\n" });
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/conf.txt`, "mine\n");
  const refused = await run("get", [...at(board), "conf.txt"], { cwd: dir.path });
  assertEquals(refused.code, 1);
  assertStringIncludes(
    refused.stderr,
    "'conf.txt' exists and get does not replace a file unless asked: add --force",
  );
  assertEquals(board.console.filter((l) => l.startsWith("WebREPL connection")), []);
  assertEquals(await Deno.readTextFile(`${dir.path}/conf.txt`), "mine\n");
  const forced = await run("get", [...at(board), "--force", "conf.txt"], { cwd: dir.path });
  assertEquals(forced.code, 0, forced.stderr);
  assertEquals(await Deno.readTextFile(`${dir.path}/conf.txt`), "from the board\n");
});

Deno.test("put sends only a regular file of a size a board holds; - reads stdin", async () => {
  await using board = await bootBoard(PASSWORD);
  await using dir = await tempDir();
  const zero = await run("put", [...at(board), "/dev/zero:z.bin"]);
  assertEquals(zero.code, 1);
  assertStringIncludes(zero.stderr, "'/dev/zero' is not a regular file (a device, pipe or socket)");
  await Deno.truncate(`${dir.path}/huge.bin`, 0).catch(() => {});
  const huge = await Deno.open(`${dir.path}/huge.bin`, { create: true, write: true });
  await huge.truncate(5 * 1024 * 1024);
  huge.close();
  const big = await run("put", [...at(board), `${dir.path}/huge.bin`]);
  assertEquals(big.code, 1);
  assertStringIncludes(
    big.stderr,
    "is over 4194304 bytes: more than an ESP8266's file system holds",
  );
  assertEquals(board.console.filter((l) => l.startsWith("WebREPL connection")), []);
  const piped = await run("put", [...at(board), "-", "from_stdin.py"], { stdin: "X = 42\n" });
  assertEquals(piped.code, 0, piped.stderr);
  assertEquals(board.app.files.get("from_stdin.py"), "X = 42\n");
});

Deno.test("a remote name with a line break or a byte that is not UTF-8 is refused (exit 2)", async () => {
  await using board = await bootBoard(PASSWORD);
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a.py`, "A = 1\n");
  const newline = await run("put", [...at(board), `${dir.path}/a.py:ma\nin.py`]);
  assertEquals(newline.code, 2);
  assertStringIncludes(
    newline.stderr,
    'the remote file name "ma\\nin.py" holds a control character',
  );
  const get = await run("get", [...at(board), "x\x1b[2J.py"], { cwd: dir.path });
  assertEquals(get.code, 2);
  assertStringIncludes(get.stderr, "(U+001B)");
  // A byte that is not UTF-8, as a shell passes it: it reaches the task as U+FFFD.
  const shell = new Deno.Command("bash", {
    args: [
      "-c",
      `"$DENO" run -A "$ROOT/tasks/put.ts" --ip 127.0.0.1 --port ${board.target.port} ` +
      `a.py:$'\\xff'.py; echo "exit $?"; printf 'B = 2\\n' > $'\\xff'.py; ` +
      `"$DENO" run -A "$ROOT/tasks/put.ts" --ip 127.0.0.1 --port ${board.target.port} ` +
      `$'\\xff'.py:b.py; echo "exit $?"; ` +
      `"$DENO" run -A "$ROOT/tasks/put.ts" --ip 127.0.0.1 --port ${board.target.port} ` +
      `- b.py < $'\\xff'.py; echo "exit $?"`,
    ],
    cwd: dir.path,
    env: { DENO: Deno.execPath(), ROOT, WEBREPL_PASSWORD: PASSWORD, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const out = await shell.output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  const exits = stdout.split("\n").filter((l) => l.startsWith("exit "));
  assertEquals(exits, ["exit 2", "exit 1", "exit 0"], stderr);
  assertStringIncludes(stderr, "is not valid UTF-8");
  // The local name with that byte: what happened, and the way around it.
  assertStringIncludes(stderr, "its name holds a byte that is not UTF-8");
  assertStringIncludes(stderr, "put - REMOTE < FILE");
  assert(board.app.files.get("b.py") === "B = 2\n");
});

Deno.test("Ctrl-C during a put says the board's file is unchanged, exit 130", async () => {
  await using peer = startHostilePeer(async (s) => {
    // os.stat of the target: no such file; then the put request gets "WB" 0, and the reply
    // after the data never comes.
    await nextProgram(s, await enterRaw(s));
    await s.sendText("missing\r\n\x04\x04>");
    await s.until(() => s.binaryBytes >= REQUEST_BYTES);
    await s.sendBinary(encodeReply(0));
    await s.until(() => s.ended, 30000);
  });
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/main.py`, new Uint8Array(200000).fill(0x23));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}tasks/put.ts`,
      "--ip",
      "127.0.0.1",
      "--port",
      String(peer.port),
      `${dir.path}/main.py`,
    ],
    env: { WEBREPL_PASSWORD: peer.target.password, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await waitFor(() => (peer.sessions[0]?.binaryBytes ?? 0) > REQUEST_BYTES + 1024);
  child.kill("SIGINT");
  const out = await child.output();
  assertEquals(out.code, 130);
  assertStringIncludes(
    new TextDecoder().decode(out.stderr),
    "error: interrupted (Ctrl-C) during the put: the board's 'main.py' is unchanged (the " +
      `bytes went to '${PUT_TEMP_NAME}' first`,
  );
});

async function waitFor(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 30000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
