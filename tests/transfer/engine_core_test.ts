/**
 * The end-packet rule as the engine's core enforces it (docs/device.md, "Session restarts
 * keep stale bytes"): the one place that makes an end packet refuses unless the reply being
 * handled proves every byte before it was confirmed in the device's current session.
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { EngineCore } from "../../lib/transfer/engine_core.ts";

const SIZE = 3000;

function core(): EngineCore {
  return new EngineCore({
    size: SIZE,
    blocks: [1024],
    pace: true,
    timeoutMs: 15000,
    bootCheck: true,
  });
}

/** Sends a packet at `sentAt` and handles its exact reply at `repliedAt`. */
function answered(c: EngineCore, offset: number, len: number, sentAt: number, repliedAt: number) {
  c.now = sentAt;
  const seq = c.send(offset, len, "data");
  c.now = repliedAt;
  c.receive({ seq, op: 0, offset, len });
  return seq;
}

const ends = (c: EngineCore) => c.flush().filter((a) => a.type === "end");

Deno.test("EngineCore.sendEnd() refuses when no reply is being handled", () => {
  const c = core();
  answered(c, 0, 1024, 0, 20);
  c.handled();
  assertEquals(c.endPacketAllowed("cleanup"), false);
  assertThrows(
    () => c.sendEnd("cleanup", () => "test"),
    Error,
    "bug: a cleanup end packet without a fresh reply that confirms every byte before it",
  );
  assertEquals(ends(c), []);
});

Deno.test("EngineCore.sendEnd() sends a clean-up end right after a fresh reply to a packet at offset 0, not a final one", () => {
  const c = core();
  const seq = answered(c, 0, 1024, 0, 20);
  assertEquals(c.endPacketAllowed("final"), false);
  assertThrows(() => c.sendEnd("final", () => "test"), Error, "bug: a final end packet");
  c.sendEnd("cleanup", () => "test");
  assertEquals(ends(c), [{ type: "end", seq: seq + 1, reason: "cleanup" }]);
  assertEquals(c.finalEndAt, 0);
});

Deno.test("EngineCore.sendEnd() sends the final end only after a fresh reply that completes the image", () => {
  const c = core();
  answered(c, 2048, SIZE - 2048, 100, 130);
  assertEquals(c.endPacketAllowed("final"), true);
  c.sendEnd("final", () => "test");
  assertEquals(ends(c).map((a) => a.type === "end" && a.reason), ["final"]);
  assertEquals(c.finalEndAt, 130);
});

Deno.test("EngineCore.sendEnd() refuses after a reply to a transmission older than PKT_WAIT_MS less 2 s", () => {
  const c = core();
  // 7.999 s after sending: the device's 10 s session timer cannot have fired since.
  answered(c, 0, 1024, 0, 7999);
  assertEquals(c.endPacketAllowed("cleanup"), true);
  // 8 s: the sender may have been stalled; the session may have restarted with stale bytes.
  answered(c, 0, 1024, 10000, 18000);
  assertEquals(c.endPacketAllowed("cleanup"), false);
  answered(c, 2048, SIZE - 2048, 20000, 28000);
  assertThrows(() => c.sendEnd("final", () => "test"), Error, "bug: a final end packet");
  assertEquals(ends(c), []);
});

Deno.test("EngineCore.sendEnd() refuses after a reply that does not answer exactly what was sent", () => {
  const c = core();
  c.now = 0;
  const seq = c.send(0, 1024, "probe");
  c.now = 20;
  // Same seq, another length (a repeat of an earlier request): not a proof.
  assertEquals(c.receive({ seq, op: 0, offset: 0, len: 512 }), undefined);
  assertEquals(c.endPacketAllowed("cleanup"), false);
  // A seq never sent.
  c.receive({ seq: 99, op: 0, offset: 0, len: 1024 });
  assertEquals(c.endPacketAllowed("cleanup"), false);
});

Deno.test("EngineCore.send() never makes a packet of length 0 (an end packet to the device)", () => {
  const c = core();
  assertThrows(() => c.send(SIZE, 0, "data"), RangeError, "bug: a data packet at 3000 of length 0");
  assertThrows(() => c.send(2048, 1024, "data"), RangeError, "bug: a data packet at 2048");
});
