/**
 * Peers that answer, but not for what was sent (issue 21): a reply that matches nothing
 * sent is not a sign of life. The engine on a fake clock (exact bounds), then `deploy`
 * as a user runs it against a hostile UDP peer on 127.0.0.1 (the exit code and message).
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { TransferEngine, type TransferOptions } from "../../lib/transfer/engine.ts";
import type { TransferAction, TransferFailure } from "../../lib/transfer/types.ts";
import type { Reply } from "../../lib/format/packet.ts";
import { makeReply, parseRequestHeader } from "../../lib/format/packet.ts";
import { createSocket } from "node:dgram";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";

const SIZE = 48 * 1024;

/** How a peer answers the `n`-th data-carrying packet (`undefined`: silence). */
type Answer = (
  sent: { seq: number; offset: number; len: number },
  n: number,
  now: number,
) => Reply | undefined;

/** Runs the engine against `answer` on a fake clock; replies come 5 ms after a send. */
function run(answer: Answer, engine: Partial<TransferOptions> = {}) {
  const e = new TransferEngine({
    size: SIZE,
    blocks: [1024, 512, 256],
    pace: true,
    timeoutMs: 5000,
    bootCheck: true,
    ...engine,
  });
  const pending: { at: number; reply: Reply }[] = [];
  let sends = 0;
  let ends = 0;
  let failure: TransferFailure | undefined;
  let now = 0;
  const apply = (actions: TransferAction[]) => {
    for (const a of actions) {
      if (a.type === "send") {
        const r = answer(a, sends++, now);
        if (r) pending.push({ at: now + 5, reply: r });
      } else if (a.type === "end") ends++;
      else if (a.type === "failed") failure = a.failure;
    }
  };
  apply(e.start(now));
  while (!failure && now < 3_600_000) {
    const timer = e.nextTimer() ?? Infinity;
    pending.sort((a, b) => a.at - b.at);
    const reply = pending[0];
    if (reply && reply.at <= timer) {
      pending.shift();
      now = reply.at;
      apply(e.onReply(now, reply.reply));
    } else {
      if (timer === Infinity) break;
      now = timer;
      apply(e.onTimer(now));
    }
  }
  return { failure, endedAt: now, ends, confirmed: e.confirmed };
}

Deno.test("deploy engine: a peer answering every packet with another offset fails at --timeout, nothing confirmed, no end packet", () => {
  const r = run((s) => ({ seq: s.seq, op: 0, offset: s.offset + 4096, len: s.len }));
  assertEquals(r.failure?.kind, "no-answer");
  assert(r.failure?.kind === "no-answer" && r.failure.unmatched > 10);
  assertEquals(r.endedAt, 5000);
  assertEquals(r.ends, 0);
  assertEquals(r.confirmed, 0);
});

Deno.test("deploy engine: a peer that acks for a while, then answers for other offsets, fails --timeout after its last real ack", () => {
  let lastAckAt = 0;
  const r = run((s, n, now) => {
    if (n < 20) {
      lastAckAt = now + 5;
      return { seq: s.seq, op: 0, offset: s.offset, len: s.len };
    }
    return { seq: s.seq, op: 0, offset: s.offset + 1024, len: s.len };
  });
  assertEquals(r.failure?.kind, "stopped-answering", JSON.stringify(r));
  if (r.failure?.kind !== "stopped-answering") return;
  assert(r.failure.unmatched > 0, JSON.stringify(r));
  assertEquals(r.failure.silentMs, 5000);
  assertEquals(r.endedAt, lastAckAt + 5000);
  assert(r.confirmed > 0 && r.confirmed < SIZE, JSON.stringify(r));
  assertEquals(r.ends, 0);
});

/** One packet in a long while is answered right, every other one for another offset. */
function trickle(): Answer {
  let lastAt = -Infinity;
  return (s, _n, now) => {
    if (now - lastAt < 4000) return { seq: s.seq, op: 0, offset: s.offset + 512, len: s.len };
    lastAt = now;
    return { seq: s.seq, op: 0, offset: s.offset, len: s.len };
  };
}

Deno.test("deploy engine: a peer that confirms a packet just often enough to beat --timeout ends at the overall bound", () => {
  const r = run(trickle(), { overallMs: 60_000 });
  assertEquals(r.failure?.kind, "overall-limit", JSON.stringify(r));
  assertEquals(r.endedAt, 60_000);
  assertEquals(r.ends, 0);
});

Deno.test("deploy engine: by default the overall bound follows the image size (2 bytes/ms and 60 s per attempt)", () => {
  for (const size of [4 * SIZE, 8 * SIZE]) {
    const r = run(trickle(), { size });
    assertEquals(r.failure?.kind, "overall-limit", JSON.stringify(r));
    assertEquals(r.endedAt, 5000 + 2 * (size / 2 + 60_000));
    assertEquals(r.ends, 0);
  }
});

/** A UDP peer on 127.0.0.1 that answers every OTA packet for another offset. */
async function hostilePeer(): Promise<{ port: number; close: () => Promise<void> }> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  socket.on("message", (data: Uint8Array, from: { address: string; port: number }) => {
    const h = parseRequestHeader(data);
    if (!h) return;
    const reply = makeReply(data);
    new DataView(reply.buffer, reply.byteOffset).setUint32(8, h.offset + 4096, true);
    socket.send(reply, from.port, from.address);
  });
  return {
    port: socket.address().port,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

Deno.test("deploy --timeout 5 against a peer that answers every packet with another offset: exit 4 within the bound, a message that says so", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(file, makeSampleFirmware({ size: 16 * 1024, seed: 5 }));
  const peer = await hostilePeer();
  try {
    const t0 = performance.now();
    const r = await runTaskFile("deploy", [
      "--ip",
      "127.0.0.1",
      "--port",
      String(peer.port),
      "--timeout",
      "5",
      "--key",
      `${VECTORS}test-key-512.pem`,
      file,
    ]);
    const seconds = (performance.now() - t0) / 1000;
    assertEquals(r.code, 4, r.stderr);
    assertStringIncludes(r.stderr, "but never for a packet that was sent");
    // 5 s of timeout plus the start of a Deno process; a generous cap for a loaded machine.
    assert(seconds < 60, `took ${seconds} s`);
  } finally {
    await peer.close();
  }
});
