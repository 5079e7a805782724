/**
 * `exec` against hostile WebREPL peers (issue 21, issue 22 point 5): output streams as it
 * arrives, the timeout is for silence and stops the code with Ctrl-C, a flood is bounded,
 * and code with a raw REPL control character is refused before anything is sent.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { enterRaw, nextProgram, type PeerSession, startHostilePeer } from "../_hostile_webrepl.ts";
import { ExecStoppedError, WebReplClient } from "../../lib/webrepl/client.ts";
import { RawResultReader } from "../../lib/webrepl/raw_result.ts";
import { UsageError } from "../../lib/errors.ts";
import { runTaskFile } from "../_helpers.ts";

const END = "\x04\x04>";
const INTERRUPTED = "\x04Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n\x04>";

/** Answers Ctrl-C, after `from`, as the board does: the KeyboardInterrupt and the prompt. */
async function answerCtrlC(session: PeerSession, from: number): Promise<void> {
  await session.typed("\x03", from);
  await session.sendText(INTERRUPTED);
  await session.until(() => session.ended);
}

Deno.test("exec() hands the output over as it arrives, before the code ends", async () => {
  let firstSeen: () => void = () => {};
  const seen = new Promise<void>((resolve) => (firstSeen = resolve));
  await using peer = startHostilePeer(async (s) => {
    const { next } = await nextProgram(s, await enterRaw(s));
    await s.sendText("first\r");
    await s.sendText("\nline\r\n");
    await seen; // the rest only once the client showed the first line
    await s.sendText("second\r\n" + END);
    await s.until(() => s.ended || s.textIn.length > next + 5);
  });
  await using client = await WebReplClient.connect(peer.target);
  const pieces: string[] = [];
  const result = await client.exec("print('first'); ...", {
    onOutput: (text) => {
      pieces.push(text);
      if (pieces.join("").includes("first\nline\n")) firstSeen();
    },
  });
  assertEquals(pieces.join(""), "first\nline\nsecond\n");
  assert(pieces.length >= 2, "the output came in pieces, as sent");
  assertEquals(result, { output: "" });
});

Deno.test("exec() --timeout is for silence: a program that keeps printing is not cut off", async () => {
  await using peer = startHostilePeer(async (s) => {
    const { next } = await nextProgram(s, await enterRaw(s));
    for (let i = 0; i < 8; i++) {
      await s.sendText(`tick ${i}\r\n`);
      await new Promise((r) => setTimeout(r, 250));
    }
    await s.sendText(END);
    await s.until(() => s.ended || s.textIn.length > next + 5);
  });
  await using client = await WebReplClient.connect(peer.target);
  // 2 s of printing in all, never 1.5 s of silence.
  const result = await client.exec("for i in range(8): ...", { timeoutMs: 1500 });
  assertEquals(result.output, [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `tick ${i}\n`).join(""));
});

Deno.test("exec() after a silence stops the code with Ctrl-C, says how to raise --timeout, and leaves", async () => {
  let programEnd = 0;
  await using peer = startHostilePeer(async (s) => {
    programEnd = (await nextProgram(s, await enterRaw(s))).next;
    await s.sendText("started\r\n");
    await answerCtrlC(s, programEnd);
  });
  const client = await WebReplClient.connect({ ...peer.target, timeoutMs: 400 });
  const shown: string[] = [];
  const error = await assertRejects(
    () => client.exec("while True: pass", { onOutput: (t) => shown.push(t) }),
    ExecStoppedError,
  );
  assertStringIncludes(error.message, `no output from ${client.address} for 0.4 s`);
  assertStringIncludes(error.message, "stopped with Ctrl-C and the board is back at its prompt");
  assertStringIncludes(error.message, "raise --timeout");
  assertEquals(shown.join(""), "started\n");
  await client.close();
  const session = peer.sessions[0]!;
  // Ctrl-C went after the program, then Ctrl-B (back to the friendly REPL) and a close frame.
  assertEquals(session.textIn.slice(programEnd), "\x03\x02");
  assert(session.closeFrame);
});

Deno.test("exec() says so when the board does not stop on Ctrl-C", async () => {
  await using peer = startHostilePeer(async (s) => {
    await nextProgram(s, await enterRaw(s));
    await s.until(() => s.ended, 20000);
  });
  await using client = await WebReplClient.connect({ ...peer.target, timeoutMs: 300 });
  await assertRejects(
    () => client.exec("while True: pass"),
    ExecStoppedError,
    "did not come back to its prompt within 2.0 s: it takes no other client until the code ends",
  );
  assert(peer.sessions[0]!.textIn.endsWith("\x03"));
});

Deno.test("exec() of a flood keeps a bounded result: it stops the code instead of growing", async () => {
  await using peer = startHostilePeer(async (s) => {
    const { next } = await nextProgram(s, await enterRaw(s));
    const block = "x".repeat(65000);
    while (!s.ended && !s.textIn.includes("\x03", next)) await s.sendText(block);
    await s.sendText(INTERRUPTED);
    await s.until(() => s.ended);
  });
  await using client = await WebReplClient.connect({ ...peer.target, timeoutMs: 60000 });
  await assertRejects(
    () => client.exec("while True: print('x' * 1000)", { maxOutput: 1024 * 1024 }),
    ExecStoppedError,
    "printed more than 1048576 characters",
  );
});

Deno.test("exec() refuses code holding Ctrl-D (or Ctrl-A..C) before sending anything", async () => {
  await using peer = startHostilePeer(async (s) => {
    await s.until(() => s.ended);
  });
  await using client = await WebReplClient.connect(peer.target);
  await assertRejects(
    () => client.exec("print(1)\x04print(2)"),
    UsageError,
    "the code holds Ctrl-D (\\x04, ends the program: only the part before it would run) at " +
      "character 9",
  );
  assertEquals(peer.sessions[0]!.textIn, "");
  const task = await runTaskFile("exec", ["--ip", "127.0.0.1", "print(1)\x04print(2)"]);
  assertEquals(task.code, 2);
  assertStringIncludes(task.stderr, "the raw REPL cannot carry it");
});

Deno.test("RawResultReader joins a \\r\\n split across pieces and keeps the error apart", () => {
  const reader = new RawResultReader();
  assertEquals(reader.push("a\r"), "a");
  assertEquals(reader.push("\nb"), "\nb");
  assertEquals(reader.push("\r\x04Trace\r\n"), "\r");
  assertEquals(reader.done, false);
  assertEquals(reader.push("Err\x04"), "");
  assertEquals(reader.done, false);
  reader.push(">");
  assertEquals(reader.done, true);
  assertEquals(reader.error, "Trace\nErr");
});

Deno.test("deno task exec: output streams to stdout; a silent program ends in exit 1 naming --timeout", async () => {
  await using peer = startHostilePeer(async (s) => {
    const { next } = await nextProgram(s, await enterRaw(s));
    await s.sendText("partial\r\n");
    await answerCtrlC(s, next);
  });
  const r = await runTaskFile("exec", [
    "--ip",
    "127.0.0.1",
    "--port",
    String(peer.port),
    "--timeout",
    "0.5",
    "import time\nprint('partial')\ntime.sleep(60)",
  ], { env: { WEBREPL_PASSWORD: peer.target.password } });
  assertEquals(r.code, 1);
  assertEquals(r.stdout, "partial\n");
  assertStringIncludes(r.stderr, "raise --timeout");
  assert(peer.sessions[0]!.textIn.includes("\x03"));
});
