/**
 * WebREPL's file-transfer records byte for byte (the layout of `struct webrepl_file` in
 * MicroPython's extmod/modwebrepl.c, `"<2sBBQLH64s"` in webrepl_cli.py), and the board's
 * side of the protocol scripted step by step with an in-memory file system.
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { concat } from "../../lib/_bytes.ts";
import {
  checkRemoteName,
  decodeChunkLength,
  decodeReply,
  decodeRequest,
  decodeVersion,
  encodeGetChunk,
  encodeReply,
  encodeRequest,
  encodeVersion,
  FILE_OP,
  REQUEST_BYTES,
} from "../../lib/webrepl/file_records.ts";
import { type DeviceFiles, FileChannel } from "../../lib/webrepl/file_device.ts";
import { translateInput } from "../../lib/cli/webrepl_terminal.ts";
import { parsePutSpec } from "../../lib/webrepl/tools.ts";
import { UsageError } from "../../lib/errors.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const hex = (s: string) =>
  new Uint8Array(s.split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16)));
const zeros = (n: number) => new Uint8Array(n);

Deno.test("encodeRequest() lays out a put record as struct webrepl_file: 82 bytes, little-endian", () => {
  const record = encodeRequest({ op: FILE_OP.put, name: "main.py", size: 1000 });
  assertEquals(
    record,
    concat([
      hex("57 41"), // "WA"
      hex("01"), // op 1: put
      hex("00"), // flags
      hex("00 00 00 00 00 00 00 00"), // u64 offset
      hex("e8 03 00 00"), // u32 size 1000
      hex("07 00"), // u16 name length 7
      enc("main.py"),
      zeros(64 - 7), // the name field, NUL-padded to 64
    ]),
  );
  assertEquals(record.length, REQUEST_BYTES);
});

Deno.test("encodeRequest() for a get has size 0; decodeRequest() reads it back as the board does", () => {
  const record = encodeRequest({ op: FILE_OP.get, name: "lib/x.json" });
  assertEquals(
    record.subarray(0, 30),
    hex(
      "57 41 02 00 00 00 00 00 00 00 00 00 00 00 00 00 0a 00 6c 69 62 2f 78 2e 6a 73 6f 6e 00 00",
    ),
  );
  assertEquals(decodeRequest(record), {
    op: 2,
    flags: 0,
    offset: 0n,
    size: 0,
    nameLength: 10,
    name: "lib/x.json",
  });
  assertEquals(encodeRequest({ op: FILE_OP.version }), concat([hex("57 41 03"), zeros(79)]));
});

Deno.test("decodeRequest() takes the name up to its NUL and ignores the length field, like the board", () => {
  const record = encodeRequest({ op: FILE_OP.put, name: "a.py", size: 3 });
  record[16] = 40; // a wrong name length: the board never reads it
  record.set(enc("XX"), 18 + 5); // bytes after the NUL
  const decoded = decodeRequest(record);
  assertEquals([decoded.name, decoded.nameLength, decoded.size], ["a.py", 40, 3]);
  const unsigned = encodeRequest({ op: FILE_OP.put, name: "é.py", size: 0xfffffffe });
  assertEquals(decodeRequest(unsigned).name, "é.py");
  assertEquals(decodeRequest(unsigned).size, 0xfffffffe);
  assertThrows(() => decodeRequest(zeros(81)), RangeError, "82 bytes, got 81");
});

Deno.test("checkRemoteName() allows 63 bytes so that a NUL ends the 64-byte field", () => {
  assertEquals(checkRemoteName("a".repeat(63)), undefined);
  assertEquals(
    checkRemoteName("a".repeat(62) + "é"),
    `the remote file name "${"a".repeat(62)}é" is 64 bytes in UTF-8: WebREPL's record holds ` +
      "at most 63 (a 64-byte field ending in a NUL)",
  );
  assertEquals(checkRemoteName(""), "the remote file name is empty");
  assertThrows(
    () => encodeRequest({ op: FILE_OP.put, name: "b".repeat(64) }),
    RangeError,
    "64 bytes",
  );
});

Deno.test("checkRemoteName() refuses a control character or a byte that was not UTF-8, shown escaped", () => {
  assertEquals(
    checkRemoteName("main\n.py"),
    'the remote file name "main\\n.py" holds a control character (U+000A): a board\'s file ' +
      "name cannot carry it safely; choose another name",
  );
  assertEquals(checkRemoteName("a\x1b]0;x\x07")?.includes("(U+001B)"), true);
  // How `deno task put x:$'\xff.py'` reaches the task: the byte replaced by U+FFFD.
  assertEquals(
    checkRemoteName("\ufffd.py"),
    'the remote file name "\ufffd.py" is not valid UTF-8 (a byte that is not UTF-8 arrives as ' +
      "U+FFFD): the board would store another name than the one typed; choose a UTF-8 name",
  );
  assertEquals(checkRemoteName("café.py"), undefined);
});

Deno.test("encodeReply()/decodeReply(): 'WB' and a little-endian u16 status", () => {
  assertEquals(encodeReply(0), hex("57 42 00 00"));
  assertEquals(encodeReply(0x0102), hex("57 42 02 01"));
  assertEquals(decodeReply(hex("57 42 02 01")), 0x0102);
  assertEquals(decodeReply(hex("57 41 00 00")), undefined);
  assertEquals(decodeReply(hex("57 42 00")), undefined);
});

Deno.test("encodeGetChunk() prefixes a little-endian u16 length; versions are three bytes", () => {
  assertEquals(encodeGetChunk(enc("abc")), hex("03 00 61 62 63"));
  assertEquals(encodeGetChunk(new Uint8Array(0)), hex("00 00"));
  assertEquals(decodeChunkLength(hex("00 01")), 256);
  assertEquals(encodeVersion("1.19.1"), hex("01 13 01"));
  assertEquals(decodeVersion(hex("01 13 01")), "1.19.1");
});

/** An in-memory board file system that records what the protocol did to it. */
function memoryFiles(initial: Record<string, Uint8Array> = {}) {
  const files = new Map(Object.entries(initial));
  const calls: string[] = [];
  const device: DeviceFiles = {
    create: (name) => {
      calls.push(`create ${name}`);
      if (name.startsWith("missing/")) {
        return Promise.reject(new Error("OSError: [Errno 2] ENOENT"));
      }
      files.set(name, new Uint8Array(0));
      return Promise.resolve();
    },
    append: (name, data) => {
      calls.push(`append ${name} ${data.length}`);
      files.set(name, concat([files.get(name)!, data]));
      return Promise.resolve();
    },
    read: (name) => {
      calls.push(`read ${name}`);
      const data = files.get(name);
      return data ? Promise.resolve(data) : Promise.reject(new Error("OSError: [Errno 2] ENOENT"));
    },
    closed: (name) => {
      calls.push(`closed ${name}`);
      return Promise.resolve();
    },
  };
  return { files, calls, device };
}

function channel(initial: Record<string, Uint8Array> = {}) {
  const fs = memoryFiles(initial);
  const sent: Uint8Array[] = [];
  const ch = new FileChannel(fs.device, (b) => {
    sent.push(b);
    return Promise.resolve();
  }, "1.19.1");
  return { ...fs, sent, ch };
}

Deno.test("FileChannel: a put record split as webrepl_cli.py sends it (10 + 72 bytes), data in odd frames", async () => {
  const { ch, sent, files, calls } = channel();
  const record = encodeRequest({ op: FILE_OP.put, name: "app.py", size: 5 });
  // Step 1: the first 10 bytes of the record: nothing yet.
  assertEquals(await ch.push(record.subarray(0, 10)), { kind: "ok" });
  assertEquals(sent, []);
  // Step 2: the rest: the board opens the file and says "WB" 0.
  await ch.push(record.subarray(10));
  assertEquals(sent, [hex("57 42 00 00")]);
  // Step 3: the data in two frames, the second with the start of a version request after it.
  await ch.push(enc("ab"));
  await ch.push(concat([enc("cde"), encodeRequest({ op: FILE_OP.version })]));
  assertEquals(sent, [hex("57 42 00 00"), hex("57 42 00 00"), hex("01 13 01")]);
  assertEquals(files.get("app.py"), enc("abcde"));
  assertEquals(calls, ["create app.py", "append app.py 2", "append app.py 3", "closed app.py"]);
});

Deno.test("FileChannel: a put of 0 bytes gets its two 'WB' replies at once", async () => {
  const { ch, sent, files } = channel();
  await ch.push(encodeRequest({ op: FILE_OP.put, name: "empty", size: 0 }));
  assertEquals(sent, [hex("57 42 00 00"), hex("57 42 00 00")]);
  assertEquals(files.get("empty"), new Uint8Array(0));
});

Deno.test("FileChannel: a get answers each ack byte with a chunk of at most 256 bytes, then 0 and 'WB' 0", async () => {
  const data = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const { ch, sent } = channel({ "d.bin": data });
  await ch.push(encodeRequest({ op: FILE_OP.get, name: "d.bin" }));
  assertEquals(sent, [hex("57 42 00 00")]);
  await ch.push(hex("00"));
  assertEquals(sent[1], concat([hex("00 01"), data.subarray(0, 256)]));
  await ch.push(hex("07")); // any byte value asks for the next chunk
  assertEquals(sent[2], concat([hex("2c 00"), data.subarray(256)]));
  await ch.push(hex("00"));
  assertEquals(sent.slice(3), [hex("00 00"), hex("57 42 00 00")]);
  // The channel is back at a request.
  await ch.push(encodeRequest({ op: FILE_OP.version }));
  assertEquals(sent.at(-1), hex("01 13 01"));
});

Deno.test("FileChannel: a file that cannot be opened drops the client with the board's console line, no reply", async () => {
  const { ch, sent } = channel();
  assertEquals(await ch.push(encodeRequest({ op: FILE_OP.get, name: "nope.txt" })), {
    kind: "drop",
    console: "dupterm: Exception in read() method, deactivating: OSError: [Errno 2] ENOENT",
  });
  const put = channel();
  assertEquals(
    (await put.ch.push(encodeRequest({ op: FILE_OP.put, name: "missing/a.py", size: 1 }))).kind,
    "drop",
  );
  assertEquals([sent, put.sent], [[], []]);
});

Deno.test("FileChannel: an unknown op opens the file, replies 'WB' 0, then ignores the file channel", async () => {
  const { ch, sent, calls } = channel({ "x": enc("x") });
  const record = encodeRequest({ op: FILE_OP.version, name: "x" });
  record[2] = 9;
  await ch.push(record);
  await ch.push(encodeRequest({ op: FILE_OP.version }));
  assertEquals(sent, [hex("57 42 00 00")]);
  assertEquals(calls, ["read x"]);
});

Deno.test("parsePutSpec() splits FILE[:REMOTE], keeping a Windows drive letter local", () => {
  assertEquals(parsePutSpec("main.py"), { local: "main.py" });
  assertEquals(parsePutSpec("build/app.py:lib/app.py"), {
    local: "build/app.py",
    remote: "lib/app.py",
  });
  assertEquals(parsePutSpec("a.py:"), { local: "a.py" });
  assertEquals(parsePutSpec("C:\\src\\a.py:lib/"), { local: "C:\\src\\a.py", remote: "lib/" });
  assertThrows(() => parsePutSpec(":x.py"), UsageError, "no local file in ':x.py'");
});

Deno.test("translateInput() turns a pipe's line ends into \\r and stops at Ctrl-]", () => {
  assertEquals(translateInput("a = 1\nprint(a)\r\n", false), {
    text: "a = 1\rprint(a)\r",
    leave: false,
  });
  assertEquals(translateInput("x\r\x03", true), { text: "x\r\x03", leave: false });
  assertEquals(translateInput("1+1\n\x1drest\n", false), { text: "1+1\r", leave: true });
  assert(translateInput("\x1d", true).leave);
});
