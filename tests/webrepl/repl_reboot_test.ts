/**
 * `repl` after a soft reboot (issue 22 point 6): a board that keeps the socket but drops
 * WebREPL's link to the REPL (dupterm) is noticed, the user is told and offered a
 * reconnect; from a pipe the session ends with exit 1 instead of waiting.
 */
import { assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { type PeerSession, startHostilePeer } from "../_hostile_webrepl.ts";
import { WebReplClient } from "../../lib/webrepl/client.ts";
import { runTerminal } from "../../lib/cli/webrepl_terminal.ts";
import { WebReplError } from "../../lib/errors.ts";
import { runTaskFile } from "../_helpers.ts";
import { bootBoard } from "../_webrepl_device.ts";

/**
 * A friendly REPL that echoes and answers each line with a prompt; Ctrl-D at the prompt
 * prints the soft reboot line, and after it nothing reaches the REPL (the socket stays).
 */
async function rebootingRepl(
  s: PeerSession,
  options: { announce: boolean; keepsLink?: boolean },
): Promise<void> {
  let seen = 0;
  while (!s.ended) {
    await s.until(() => s.textIn.length > seen || s.ended, 60000);
    const typed = s.textIn.slice(seen);
    seen = s.textIn.length;
    for (const ch of typed) {
      if (ch === "\x04" && options.keepsLink) {
        await s.sendText("MPY: soft reboot\r\nMicroPython v1.19.1 on 2022-06-18\r\n>>> ");
        continue;
      }
      if (ch === "\x04") {
        if (options.announce) await s.sendText("MPY: soft reboot\r\n");
        await s.until(() => s.ended, 60000);
        return;
      }
      await s.sendText(ch === "\r" ? "\r\n>>> " : ch);
    }
  }
}

/** Input the test feeds by hand. */
function keys() {
  const queue: string[] = [];
  let wake = () => {};
  return {
    type(text: string) {
      queue.push(text);
      wake();
    },
    async *[Symbol.asyncIterator]() {
      while (true) {
        while (queue.length) yield new TextEncoder().encode(queue.shift()!);
        await new Promise<void>((r) => (wake = r));
      }
    },
  };
}

Deno.test("runTerminal() notices a session that died at a soft reboot and offers to reconnect", async () => {
  await using peer = startHostilePeer((s) => rebootingRepl(s, { announce: true }));
  await using client = await WebReplClient.connect(peer.target);
  const input = keys();
  const notices: string[] = [];
  const shown: string[] = [];
  let noticed = () => {};
  const offered = new Promise<void>((r) => (noticed = r));
  const session = runTerminal(client, {
    input,
    interactive: true,
    write: (t) => Promise.resolve(void shown.push(t)),
    notice: (t) => {
      notices.push(t);
      noticed();
    },
  }, { timeoutMs: 5000, rebootWaitMs: 300 });
  input.type("1\r");
  input.type("\x04");
  await offered;
  input.type("\r");
  assertEquals(await session, "reconnect");
  assertEquals(notices.length, 1);
  assertStringIncludes(notices[0]!, `${client.address} soft-rebooted and has sent nothing for`);
  assertStringIncludes(notices[0]!, "Press Enter to reconnect, Ctrl-] to leave.");
  assertStringIncludes(shown.join(""), "MPY: soft reboot");
  // The Enter that answered the offer did not go to the dead session.
  assertEquals(peer.sessions[0]!.textIn, "1\r\x04");
});

Deno.test("runTerminal() from a pipe: a soft reboot with no prompt after it ends the session with an error", async () => {
  await using peer = startHostilePeer((s) => rebootingRepl(s, { announce: false }));
  await using client = await WebReplClient.connect(peer.target);
  await assertRejects(
    () =>
      runTerminal(client, {
        input: ReadableStream.from([new TextEncoder().encode("x = 1\n\x04")]),
        interactive: false,
        write: () => Promise.resolve(),
      }, { timeoutMs: 10000, rebootWaitMs: 300 }),
    WebReplError,
    "no prompt: WebREPL's link to its REPL ended there (the connection stays open, but nothing " +
      "reaches the REPL any more): run repl again to reconnect",
  );
});

Deno.test("deno task repl from a pipe after Ctrl-D on such a board: exit 1, said so", async () => {
  await using peer = startHostilePeer((s) => rebootingRepl(s, { announce: true }));
  const r = await runTaskFile(
    "repl",
    ["--ip", "127.0.0.1", "--port", String(peer.port), "--timeout", "20"],
    { env: { WEBREPL_PASSWORD: peer.target.password }, stdin: "print(1)\n\x04" },
  );
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "soft-rebooted and has sent nothing for 3.0 s");
});

Deno.test("runTerminal() from a pipe: a board that comes back with a prompt after its soft reboot goes on", async () => {
  await using peer = startHostilePeer((s) => rebootingRepl(s, { announce: true, keepsLink: true }));
  await using client = await WebReplClient.connect(peer.target);
  const shown: string[] = [];
  const end = await runTerminal(client, {
    input: ReadableStream.from([new TextEncoder().encode("x = 1\n\x04y = 2\n")]),
    interactive: false,
    write: (t) => Promise.resolve(void shown.push(t)),
  }, { timeoutMs: 10000, rebootWaitMs: 300 });
  assertEquals(end, "end-of-input");
  assertStringIncludes(shown.join(""), "MPY: soft reboot");
});

Deno.test("runTerminal(): a board that ignored Ctrl-D and echoes the next key was alive: the session goes on", async () => {
  // The virtual device does not simulate a soft reboot: it ignores Ctrl-D.
  await using board = await bootBoard();
  await using client = await WebReplClient.connect(board.target);
  const input = keys();
  const notices: string[] = [];
  let wake = () => {};
  const session = runTerminal(client, {
    input,
    interactive: true,
    write: () => Promise.resolve(),
    notice: (t) => {
      notices.push(t);
      wake();
    },
  }, { timeoutMs: 5000, rebootWaitMs: 300 });
  const noticeCount = (n: number) =>
    new Promise<void>((r) => {
      wake = () => notices.length >= n && r();
      wake();
    });
  input.type("\x04");
  await noticeCount(1);
  input.type("1");
  await noticeCount(2);
  input.type("\x1d");
  assertEquals(await session, "leave-key");
  assertStringIncludes(notices[1]!, "the board answered again: the session goes on");
});
