/**
 * The sender's UDP endpoint keeps the order of datagrams: the device takes offsets strictly
 * in order (docs/device.md, "What the server does with a datagram"), so packets sent in
 * one burst must leave in the order they were sent.
 */
import { assertEquals } from "../_assert.ts";
import { openUdpPeer } from "../../lib/transfer/udp.ts";
import { createSocket } from "node:dgram";

Deno.test("openUdpPeer: 40 datagrams sent in one tick arrive in the order they were sent", async () => {
  const rx = createSocket("udp4");
  await new Promise<void>((resolve) => rx.bind(0, "127.0.0.1", resolve));
  const got: number[] = [];
  const all = Promise.withResolvers<void>();
  rx.on("message", (m: Uint8Array) => {
    got.push(m[0]!);
    if (got.length === 40) all.resolve();
  });
  const peer = await openUdpPeer("127.0.0.1", rx.address().port, () => {});
  try {
    for (let i = 0; i < 40; i++) {
      const d = new Uint8Array(i % 2 ? 1300 : 300);
      d[0] = i;
      peer.send(d);
    }
    const timer = setTimeout(() => all.resolve(), 5000);
    await all.promise;
    clearTimeout(timer);
    assertEquals(got, Array.from({ length: 40 }, (_, i) => i));
  } finally {
    await peer.close();
    await new Promise<void>((resolve) => rx.close(() => resolve()));
  }
});
