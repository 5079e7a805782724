/**
 * The WebREPL tools' client side against the virtual board: WebREPL's file protocol
 * (put, get, version) on the wire, files that MicroPython then reads, the checks made
 * before a transfer, and ls/rm through the REPL.
 */
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { allByteValues, bootBoard } from "../_webrepl_device.ts";
import { WebReplClient } from "../../lib/webrepl/client.ts";
import { getFile, getVersion, putFile } from "../../lib/webrepl/file_transfer.ts";
import { getFromBoard, putToBoard } from "../../lib/webrepl/tools.ts";
import {
  listRemote,
  RemoteFileError,
  removeRemote,
  statRemote,
} from "../../lib/webrepl/remote_fs.ts";
import { UsageError, WebReplError } from "../../lib/errors.ts";
import { runTerminal } from "../../lib/cli/webrepl_terminal.ts";
import { fleetPasswords } from "../../lib/deploy/fleet_put.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("putFile() then getFile() round-trip every byte value, over several chunks and frames", async () => {
  await using board = await bootBoard();
  await using client = await WebReplClient.connect(board.target);
  const data = allByteValues(256 * 9 + 77); // 9 full get chunks and a short one; 3 put frames
  assertEquals(new Set(data).size, 256);
  const sent: number[] = [];
  await putFile(client, "blob.bin", data, { onProgress: (done) => sent.push(done) });
  assertEquals(sent, [1024, 2048, 2381]);
  const received: number[] = [];
  const back = await getFile(client, "blob.bin", { onProgress: (done) => received.push(done) });
  assertEquals(back, data);
  assertEquals(received.length, 10);
  assertEquals(received.at(-1), 2381);
  // MicroPython itself reads the same bytes from its file system.
  const check = await client.exec(
    "d = open('blob.bin', 'rb').read()\nprint(len(d), d[0], d[1], d[255], d[-1])",
  );
  assertEquals(check.output, `2381 ${data[0]} ${data[1]} ${data[255]} ${data.at(-1)}\n`);
});

Deno.test("putFile() of a module: exec imports it; an empty file is created too", async () => {
  await using board = await bootBoard();
  await using client = await WebReplClient.connect(board.target);
  await putFile(client, "greet.py", enc("def hello(n):\n    return 'hi ' + n\n"));
  await putFile(client, "empty.txt", new Uint8Array(0));
  const r = await client.exec(
    "import greet\nprint(greet.hello('board'))\nprint(len(open('empty.txt').read()))",
  );
  assertEquals(r, { output: "hi board\n0\n" });
  // A text file is kept by the board across resets, like every file it writes.
  assertEquals(board.app.files.get("greet.py"), "def hello(n):\n    return 'hi ' + n\n");
});

Deno.test("getVersion() reads the three version bytes of the file protocol", async () => {
  await using board = await bootBoard();
  await using client = await WebReplClient.connect(board.target);
  assertEquals(await getVersion(client), "1.19.1");
});

Deno.test("getFile() of a missing file: the board drops the connection without a reply, the client says why", async () => {
  await using board = await bootBoard();
  await using client = await WebReplClient.connect(board.target);
  await assertRejects(
    () => getFile(client, "nope.txt"),
    RemoteFileError,
    `${client.address} could not open 'nope.txt' for the get and dropped the connection ` +
      "(no such file on the board, or a folder?); the board's serial console shows the OSError",
  );
  assertEquals(
    board.console.at(-1)?.startsWith("dupterm: Exception in read() method, deactivating: OSError"),
    true,
  );
  // The board takes the next client.
  await using again = await WebReplClient.connect(board.target);
  assertEquals(await getVersion(again), "1.19.1");
});

Deno.test("getFromBoard() checks first: a missing file or a folder is named without losing the session", async () => {
  await using board = await bootBoard();
  await using client = await WebReplClient.connect(board.target);
  await assertRejects(
    () => getFromBoard(client, "nope.txt"),
    RemoteFileError,
    `no file 'nope.txt' on ${client.address} (list the files with 'deno task ls')`,
  );
  await client.exec("import os\nos.mkdir('d')");
  await assertRejects(
    () => getFromBoard(client, "d"),
    RemoteFileError,
    `'d' on ${client.address} is a folder, not a file`,
  );
  assertEquals((await client.exec("print('still here')")).output, "still here\n");
});

Deno.test("putToBoard() picks the name, puts into a folder, refuses a missing folder, and checks the size", async () => {
  await using board = await bootBoard();
  await using client = await WebReplClient.connect(board.target);
  await client.exec("import os\nos.mkdir('lib')");
  const data = enc("X = 1\n");
  assertEquals(await putToBoard(client, "src/app.py", data, undefined), "app.py");
  assertEquals(await putToBoard(client, "src/app.py", data, "lib"), "lib/app.py");
  assertEquals(await putToBoard(client, "src/app.py", data, "lib/"), "lib/app.py");
  assertEquals(await putToBoard(client, "src/app.py", data, "lib/other.py"), "lib/other.py");
  await assertRejects(
    () => putToBoard(client, "a.py", data, "nodir/a.py"),
    RemoteFileError,
    `no folder 'nodir' on ${client.address}: create it first`,
  );
  await assertRejects(
    () => putToBoard(client, "a.py", data, "x".repeat(64)),
    UsageError,
    "is 64 bytes in UTF-8",
  );
  assertEquals(await statRemote(client, "lib/other.py"), { kind: "file", size: 6 });
});

Deno.test("listRemote() and removeRemote() run on the board's own os module", async () => {
  await using board = await bootBoard();
  await using client = await WebReplClient.connect(board.target);
  await client.exec(
    "import os\nos.mkdir('data')\nopen('data/a.txt', 'w').write('12345')\nos.mkdir('data/sub')",
  );
  assertEquals(await listRemote(client, "data"), [
    { name: "a.txt", type: "file", size: 5 },
    { name: "sub", type: "dir", size: 0 },
  ]);
  await assertRejects(
    () => listRemote(client, "nodir"),
    RemoteFileError,
    `no folder 'nodir' on ${client.address}`,
  );
  await assertRejects(
    () => listRemote(client, "data/a.txt"),
    RemoteFileError,
    `'data/a.txt' on ${client.address} is a file, not a folder`,
  );
  const notEmpty = await assertRejects(() => removeRemote(client, "data"), RemoteFileError);
  assert(
    notEmpty.message.startsWith(`cannot remove the folder 'data' on ${client.address}: OSError `),
    notEmpty.message,
  );
  assert(notEmpty.message.endsWith("(rm removes files and empty folders: empty it first)"));
  assertEquals(await removeRemote(client, "data/a.txt"), "file");
  assertEquals(await removeRemote(client, "data/sub"), "dir");
  assertEquals(await listRemote(client, "data"), []);
  await assertRejects(
    () => removeRemote(client, "data/a.txt"),
    RemoteFileError,
    `no file or folder 'data/a.txt' on ${client.address}`,
  );
  // The snippets leave no names behind in the board's __main__.
  assertEquals(
    (await client.exec("print([n for n in dir() if n.startswith('_yaota')])")).output,
    "[]\n",
  );
});

Deno.test("runTerminal() sends typed lines, shows the board's echo and output, and leaves at Ctrl-]", async () => {
  await using board = await bootBoard();
  await using client = await WebReplClient.connect(board.target);
  let shown = "";
  let release: () => void = () => {};
  const answered = new Promise<void>((r) => (release = r));
  async function* typed() {
    yield enc("a = 6 * 7\n");
    yield enc("a\n");
    await answered; // the user reads the answer, then presses Ctrl-]
    yield enc("\x1dignored\n");
  }
  const end = await runTerminal(client, {
    input: typed(),
    interactive: false,
    write: (text) => {
      shown += text;
      if (shown.includes("42\r\n>>> ")) release();
      return Promise.resolve();
    },
  }, { timeoutMs: 5000 });
  assertEquals(end, "leave-key");
  assertEquals(shown, ">>> a = 6 * 7\r\n>>> a\r\n42\r\n>>> ");
});

Deno.test("runTerminal() at the end of piped input waits for the board's prompt; a closed board is an error", async () => {
  await using board = await bootBoard();
  await using client = await WebReplClient.connect(board.target);
  let shown = "";
  async function* typed() {
    // The board prints 0 1 2 over 0.3 s after the last line has been sent.
    yield enc("import time\nfor i in range(3): time.sleep(0.1); print(i)\n\n");
  }
  const end = await runTerminal(client, {
    input: typed(),
    interactive: false,
    write: (text) => {
      shown += text;
      return Promise.resolve();
    },
  }, { timeoutMs: 5000 });
  assertEquals(end, "end-of-input");
  assert(shown.endsWith("0\r\n1\r\n2\r\n>>> "), JSON.stringify(shown));

  await using second = await bootBoard();
  await using doomed = await WebReplClient.connect(second.target);
  async function* forever() {
    yield enc("1\n");
    await new Promise(() => {}); // the user types nothing more
  }
  const closing = runTerminal(doomed, {
    input: forever(),
    interactive: true,
    write: () => Promise.resolve(),
  }, { timeoutMs: 5000 });
  await second.server.close();
  await assertRejects(() => closing, WebReplError, `${doomed.address} closed the connection`);
});

Deno.test("removeRemote() names a real board's OSError (FAT's EACCES for a folder that is not empty)", async () => {
  // A scripted esp8266: the errno module knows the name, as MicroPython's firmware does.
  const sent: string[] = [];
  const board = {
    address: "192.168.4.1:8266",
    exec: (code: string) => {
      sent.push(code);
      return Promise.resolve({ output: "failed dir 13 EACCES\n" });
    },
  };
  await assertRejects(
    () => removeRemote(board, "data"),
    RemoteFileError,
    "cannot remove the folder 'data' on 192.168.4.1:8266: OSError 13 EACCES: permission denied " +
      "(a folder that is not empty, on FAT) (rm removes files and empty folders: empty it first)",
  );
  assert(sent[0]!.includes('_yaota_op("data")') && sent[0]!.includes("os.rmdir(a)"), sent[0]);
  const failing = {
    ...board,
    exec: () =>
      Promise.resolve({ output: "", error: "Traceback…\nMemoryError: memory allocation failed\n" }),
  };
  await assertRejects(
    () => statRemote(failing, "x"),
    WebReplError,
    "192.168.4.1:8266: os.stat('x') failed on the board: MemoryError: memory allocation failed",
  );
});

Deno.test("fleetPasswords(): passwordEnv per device, one shared password for the others, asked once", async () => {
  const devices = [
    { name: "a", ip: "10.0.0.1", port: 8266 },
    { name: "b", ip: "10.0.0.2", port: 8266, passwordEnv: "B_PW" },
    { name: "c", ip: "10.0.0.3", port: 8266, passwordEnv: "C_PW" },
    { name: "d", ip: "10.0.0.4", port: 8266 },
  ];
  let asked = 0;
  const env: Record<string, string> = { B_PW: "bbbbbb" };
  const passwords = await fleetPasswords(devices, () => {
    asked++;
    return Promise.resolve("shared1");
  }, (name) => env[name]);
  assertEquals(asked, 1);
  assertEquals([passwords.get("a"), passwords.get("b"), passwords.get("d")], [
    "shared1",
    "bbbbbb",
    "shared1",
  ]);
  const c = passwords.get("c");
  assert(c instanceof UsageError);
  assertEquals(c.message, `no WebREPL password for 'c': set C_PW (its "passwordEnv")`);
  const none = await fleetPasswords(
    devices.slice(1, 2),
    () => Promise.reject(new Error("not asked")),
    (n) => env[n],
  );
  assertEquals(none.get("b"), "bbbbbb");
});

Deno.test("putToBoard() reports a file the board stored short (a full file system: the board says nothing)", async () => {
  // A scripted board: the folder checks pass, every file-protocol reply is "WB" 0, but
  // os.stat afterwards finds 512 of the 1000 bytes.
  const stats = ["missing", "missing", "file 512"];
  const wire: number[] = [];
  const board = {
    address: "192.168.4.1:8266",
    exec: () => Promise.resolve({ output: `${stats.shift()}\n` }),
    sendBinary: (bytes: Uint8Array) => {
      wire.push(bytes.length);
      return Promise.resolve();
    },
    readBinary: () => Promise.resolve(new Uint8Array([0x57, 0x42, 0, 0])),
  };
  await assertRejects(
    () => putToBoard(board, "big.bin", new Uint8Array(1000), "big.bin"),
    RemoteFileError,
    "192.168.4.1:8266 holds 512 bytes in '.yaota-put.part' after the put of 1000: is its file " +
      "system full? (the board does not report a failed write); 'big.bin' is unchanged",
  );
  assertEquals(wire, [82, 1000]); // the request record, then the data in one 1024-byte frame's worth
});
