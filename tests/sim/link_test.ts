/**
 * The link model: seeded impairments are reproducible, loss is roughly as asked, delay
 * applies each way, the outage starts at the reply that confirms `afterBytes`, and
 * `loseReplies` drops exactly the replies it names. Pure: a fake clock, no sockets.
 */
import { assert, assertEquals, assertNotEquals } from "../_assert.ts";
import { type Delivery, Link, type LinkOptions } from "../../lib/sim/link.ts";
import { makeReply, signedRegion, withSeq } from "../../lib/format/packet.ts";
import { concat } from "../../lib/_bytes.ts";

/** A request as on the wire, with a dummy 64-byte signature (the link does not verify). */
function request(seq: number, offset: number, len: number): Uint8Array {
  return withSeq(seq, concat([signedRegion(offset, new Uint8Array(len)), new Uint8Array(64)]));
}

/** The device's 20-byte reply to the request for `offset`, `len`. */
function reply(seq: number, offset: number, len: number): Uint8Array {
  return makeReply(request(seq, offset, len));
}

/** Sends `count` datagrams toDevice, 1 ms apart; returns [index, arrival time] per delivery. */
function deliveries(options: LinkOptions, count: number): [number, number][] {
  const link = new Link(options);
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    for (const d of link.toDevice(i, request(i + 1, i * 256, 256))) out.push([i, d.at]);
  }
  return out;
}

const impaired: LinkOptions = { loss: 0.2, dup: 0.2, reorder: 0.2, delayMs: 10 };

Deno.test("Link: the same seed gives the same deliveries", () => {
  const a = deliveries({ ...impaired, seed: 42 }, 500);
  const b = deliveries({ ...impaired, seed: 42 }, 500);
  assertEquals(a, b);
  // The impairments actually happened: some lost, some duplicated, some late.
  const indices = a.map(([i]) => i);
  assert(new Set(indices).size < 500, "some datagrams were lost");
  assert(indices.length > new Set(indices).size, "some datagrams were duplicated");
  assert(a.some(([i, at]) => at > i + 10 + 2), "some datagrams were reordered");
});

Deno.test("Link: different seeds give different deliveries", () => {
  assertNotEquals(
    deliveries({ ...impaired, seed: 1 }, 500),
    deliveries({ ...impaired, seed: 2 }, 500),
  );
});

Deno.test("Link loses roughly the share of datagrams asked for, each way", () => {
  const link = new Link({ loss: 0.25, seed: 7 });
  const n = 4000;
  let toDevice = 0;
  let toClient = 0;
  for (let i = 0; i < n; i++) {
    toDevice += link.toDevice(i, request(i + 1, 0, 256)).length;
    toClient += link.toClient(i, reply(i + 1, 0, 256)).length;
  }
  assertEquals(link.dropped, { toDevice: n - toDevice, toClient: n - toClient });
  for (const [direction, lost] of Object.entries(link.dropped)) {
    // 25 % of 4000 is 1000; a binomial sd is ~27, and the seed is fixed.
    assert(lost > 800 && lost < 1200, `${direction}: lost ${lost} of ${n}, expected ~1000`);
  }
});

Deno.test("Link without impairments delivers everything once, in order", () => {
  const all = deliveries({ seed: 3 }, 200);
  assertEquals(all, Array.from({ length: 200 }, (_, i) => [i, i] as [number, number]));
});

Deno.test("Link applies the one-way delay in each direction", () => {
  const link = new Link({ delayMs: 40 });
  const req = request(1, 0, 256);
  const rep = reply(1, 0, 256);
  assertEquals(link.toDevice(100, req), [{ at: 140, data: req }]);
  assertEquals(link.toClient(200, rep), [{ at: 240, data: rep }]);
  assertEquals(link.dropped, { toDevice: 0, toClient: 0 });
});

Deno.test("Link duplicates a datagram into two deliveries of the same bytes", () => {
  const link = new Link({ dup: 1, delayMs: 5, seed: 9 });
  const req = request(1, 0, 256);
  const out: Delivery[] = link.toDevice(0, req);
  assertEquals(out.length, 2);
  assertEquals(out.map((d) => d.data), [req, req]);
  assertEquals(out[0]!.at, 5);
  assert(out[1]!.at >= 5 && out[1]!.at <= 7, `the copy comes within 2 ms, at ${out[1]!.at}`);
});

Deno.test("Link reordering delivers some datagrams after ones sent later, never before the delay", () => {
  const delayMs = 20;
  const all = deliveries({ reorder: 0.3, delayMs, seed: 5 }, 300);
  assertEquals(all.length, 300);
  for (const [i, at] of all) {
    assert(at >= i + delayMs && at <= i + delayMs + 2 + delayMs + 8, `datagram ${i} at ${at}`);
  }
  const overtaken = all.filter(([i, at]) => all.some(([j, other]) => j > i && other < at));
  assert(overtaken.length > 0, "some datagram was overtaken by a later one");
});

Deno.test("Link: the outage starts at the reply that confirms afterBytes, drops both ways for its length", () => {
  const link = new Link({ outage: { afterBytes: 1024, ms: 2000 } });
  // Replies before the threshold pass, and requests do not start the outage.
  for (const [i, offset] of [0, 256, 512].entries()) {
    assertEquals(link.toDevice(10 * i, request(i + 1, offset, 256)).length, 1);
    assertEquals(link.toClient(10 * i + 1, reply(i + 1, offset, 256)).length, 1);
  }
  assertEquals(link.toDevice(30, request(4, 768, 256)).length, 1);
  assertEquals(link.outage, undefined);
  // The reply for 768 + 256 confirms byte 1024: it is lost, and the outage begins.
  assertEquals(link.toClient(40, reply(4, 768, 256)), []);
  assertEquals(link.outage, { from: 40, until: 2040 });
  assertEquals(link.toDevice(40, request(5, 1024, 256)), []);
  assertEquals(link.toDevice(1000, request(6, 1024, 256)), []);
  assertEquals(link.toClient(1000, reply(4, 768, 256)), []);
  assertEquals(link.toDevice(2039, request(7, 1024, 256)), []);
  assert(link.inOutage(2039) && !link.inOutage(2040));
  assertEquals(link.dropped, { toDevice: 3, toClient: 2 });
  // Over: both directions pass again, and a later reply past the threshold starts none.
  assertEquals(link.toDevice(2040, request(8, 1024, 256)).length, 1);
  assertEquals(link.toClient(2041, reply(8, 1024, 256)).length, 1);
  assertEquals(link.toClient(3000, reply(9, 4096, 256)).length, 1);
  assertEquals(link.outage, { from: 40, until: 2040 });
});

Deno.test("Link loseReplies drops exactly the replies for that offset:len", () => {
  const link = new Link({ loseReplies: ["256:256"] });
  // Every reply for 256:256 is lost, retransmissions included.
  assertEquals(link.toClient(0, reply(2, 256, 256)), []);
  assertEquals(link.toClient(1, reply(3, 256, 256)), []);
  // Other offsets, another len at the same offset, and the requests themselves pass.
  assertEquals(link.toClient(2, reply(1, 0, 256)).length, 1);
  assertEquals(link.toClient(3, reply(4, 512, 256)).length, 1);
  assertEquals(link.toClient(4, reply(5, 256, 512)).length, 1);
  assertEquals(link.toDevice(5, request(2, 256, 256)).length, 1);
  assertEquals(link.dropped, { toDevice: 0, toClient: 2 });
});

Deno.test("Link holdReplies delays exactly the replies for that offset:len, by that much", () => {
  const link = new Link({ delayMs: 5, holdReplies: { "256:256": 6 } });
  assertEquals(link.toClient(10, reply(2, 256, 256)).map((d) => d.at), [21]);
  assertEquals(link.toClient(10, reply(3, 512, 256)).map((d) => d.at), [15]);
  assertEquals(link.toClient(10, reply(4, 256, 512)).map((d) => d.at), [15]);
  assertEquals(link.toDevice(10, request(2, 256, 256)).map((d) => d.at), [15]);
});

Deno.test("Link: jitter delays each datagram by a seeded, exponential extra, none overtaking another", () => {
  const sent = 2000;
  const a = deliveries({ delayMs: 5, jitterMs: 0.5, seed: 9 }, sent);
  assertEquals(a, deliveries({ delayMs: 5, jitterMs: 0.5, seed: 9 }, sent));
  assertEquals(a.length, sent);
  // First in, first out: a datagram held up holds up the ones behind it.
  for (let i = 1; i < a.length; i++) assert(a[i]![1] >= a[i - 1]![1], `#${i} overtook #${i - 1}`);
  const extra = a.map(([i, at]) => at - i - 5);
  assert(extra.every((x) => x >= 0), "never earlier than the delay");
  const mean = extra.reduce((s, x) => s + x, 0) / extra.length;
  // Sent 1 ms apart, a few queue behind a long one: a little over the 0.5 ms asked.
  assert(mean > 0.45 && mean < 0.65, `mean extra delay ${mean.toFixed(3)} ms`);
  assert(extra.some((x) => x > 2), "a long tail: some over 2 ms");
});
