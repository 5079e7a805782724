/**
 * `get` against hostile WebREPL peers (issue 21, bad #4): a board that announces 1000 bytes
 * and keeps sending is stopped at the announced size, one that trickles is stopped by the
 * transfer's overall deadline (which --timeout sets), and nothing is written locally.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { enterRaw, nextProgram, type PeerSession, startHostilePeer } from "../_hostile_webrepl.ts";
import { WebReplClient } from "../../lib/webrepl/client.ts";
import { getFromBoard } from "../../lib/webrepl/tools.ts";
import { listRemote } from "../../lib/webrepl/remote_fs.ts";
import { encodeGetChunk, encodeReply, REQUEST_BYTES } from "../../lib/webrepl/file_records.ts";
import { WebReplError } from "../../lib/errors.ts";
import { runTaskFile, tempDir } from "../_helpers.ts";

/** Answers the `os.stat` snippet: a file of `size` bytes. Returns where the input goes on. */
async function answerStat(s: PeerSession, size: number): Promise<number> {
  const { next } = await nextProgram(s, await enterRaw(s));
  await s.sendText(`file ${size}\r\n\x04\x04>`);
  return next;
}

/** After the get request: "WB" 0, then `chunks` chunks whatever the client asks. */
async function floodGet(s: PeerSession, chunk: Uint8Array, chunks: number, pauseMs = 0) {
  await s.until(() => s.binaryBytes >= REQUEST_BYTES);
  await s.sendBinary(encodeReply(0));
  for (let i = 0; i < chunks && !s.ended; i++) {
    await s.sendBinary(encodeGetChunk(chunk)).catch(() => {});
    if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
  }
  await s.sendBinary(encodeGetChunk(new Uint8Array(0))).catch(() => {});
  await s.sendBinary(encodeReply(0)).catch(() => {});
  await s.until(() => s.ended, 30000);
}

Deno.test("getFromBoard() stops at the size the board announced when it keeps sending", async () => {
  let sentChunks = 0;
  await using peer = startHostilePeer(async (s) => {
    await answerStat(s, 1000);
    const chunk = new Uint8Array(256).fill(0x41);
    await s.until(() => s.binaryBytes >= REQUEST_BYTES);
    await s.sendBinary(encodeReply(0));
    // 32 MiB if nobody stops it.
    for (; sentChunks < 131072 && !s.ended; sentChunks++) {
      await s.sendBinary(encodeGetChunk(chunk)).catch(() => {});
    }
  });
  await using client = await WebReplClient.connect(peer.target);
  await assertRejects(
    () => getFromBoard(client, "big.bin"),
    WebReplError,
    `${client.address} sent more of 'big.bin' than the 1000 bytes it announced (1024 bytes so ` +
      "far): stopped reading; nothing was written",
  );
  await client.close();
  await peer.sessions[0]!.until(() => peer.sessions[0]!.ended);
  // The client stopped reading long before the flood's end (unread data is bounded).
  assert(sentChunks < 131072, `${sentChunks} chunks were sent`);
});

Deno.test("getFromBoard() refuses a chunk longer than a board's 256 bytes", async () => {
  await using peer = startHostilePeer(async (s) => {
    await answerStat(s, 100000);
    await floodGet(s, new Uint8Array(4000), 1);
  });
  await using client = await WebReplClient.connect(peer.target);
  await assertRejects(
    () => getFromBoard(client, "a.bin"),
    WebReplError,
    "(a chunk of 4000 bytes; the board's are at most 256)",
  );
});

Deno.test("getFromBoard() of a trickle ends at the overall deadline, which the step timeout sets", async () => {
  await using peer = startHostilePeer(async (s) => {
    await answerStat(s, 1000);
    // One byte every 150 ms: never a silent step, 150 s for the whole file.
    await floodGet(s, new Uint8Array(1), 1000, 150);
  });
  await using client = await WebReplClient.connect({ ...peer.target, timeoutMs: 400 });
  const started = Date.now();
  await assertRejects(
    () => getFromBoard(client, "slow.bin"),
    WebReplError,
    "the transfer was not done in the time allowed for it",
  );
  // 2 × 0.4 s + 1000 bytes at 1 KiB/s, with room for a loaded machine.
  assert(Date.now() - started < 20000);
});

Deno.test("deno task get --timeout 2 against a flooding board: exit 1, no local file", async () => {
  await using peer = startHostilePeer(async (s) => {
    await answerStat(s, 1000);
    await floodGet(s, new Uint8Array(256), 8192);
  });
  await using dir = await tempDir();
  const r = await runTaskFile("get", [
    "--ip",
    "127.0.0.1",
    "--port",
    String(peer.port),
    "--timeout",
    "2",
    "big.bin",
  ], { cwd: dir.path, env: { WEBREPL_PASSWORD: peer.target.password } });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "than the 1000 bytes it announced");
  assertEquals([...Deno.readDirSync(dir.path)], []);
});

Deno.test("getFromBoard() refuses a size no ESP8266 holds, or one that is not a number, before asking for bytes", async () => {
  for (
    const [answer, message] of [
      [
        "file 3000000000",
        "reports 'x.bin' as 3000000000 bytes, more than an ESP8266's file system",
      ],
      ["file NaN", `answered os.stat('x.bin') with "file NaN", not as MicroPython does`],
    ]
  ) {
    await using peer = startHostilePeer(async (s) => {
      await nextProgram(s, await enterRaw(s));
      await s.sendText(`${answer}\r\n\x04\x04>`);
      await s.until(() => s.ended);
    });
    await using client = await WebReplClient.connect(peer.target);
    await assertRejects(() => getFromBoard(client, "x.bin"), Error, message);
    assertEquals(peer.sessions[0]!.binaryBytes, 0);
  }
});

Deno.test("listRemote() names an answer that is not MicroPython's instead of failing as a bug", async () => {
  await using peer = startHostilePeer(async (s) => {
    await nextProgram(s, await enterRaw(s));
    await s.sendText('ok\r\n["file", "big", {"x": 1}]\r\n\x04\x04>');
    await s.until(() => s.ended);
  });
  await using client = await WebReplClient.connect(peer.target);
  await assertRejects(
    () => listRemote(client, "/"),
    WebReplError,
    `answered listing '/' with "[\\"file\\", \\"big\\", {\\"x\\": 1}]", not as MicroPython does`,
  );
});
