/**
 * The sender's socket through the C library (`lib/transfer/kernel_udp.ts`, Linux): a reply
 * is timed from when the system received it, not from when this thread got round to it.
 */
import { assert, assertEquals } from "../_assert.ts";
import { openKernelUdpPeer, openKernelUdpServer } from "../../lib/transfer/kernel_udp.ts";
import { openUdpPeer } from "../../lib/transfer/udp.ts";

const linux = Deno.build.os === "linux";

/**
 * A local "device" and a kernel socket connected to it, `first` sent so that the device
 * knows where to answer: the datagram it got, and where it came from.
 */
async function loopback(
  onMessage: (data: Uint8Array, receivedAt: number) => void,
  onSendError: (e: Error) => void = () => {},
  first = new Uint8Array([1]),
) {
  const server = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const peer = openKernelUdpPeer(
    "127.0.0.1",
    (server.addr as Deno.NetAddr).port,
    onMessage,
    onSendError,
  );
  assert(peer, "Linux with FFI: the kernel socket opens");
  peer.send(first);
  const [got, from] = await server.receive();
  return { server, peer, got, from };
}

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* this thread is busy elsewhere */ }
}

Deno.test({
  name: "kernel_udp: a reply read 20 ms late (this thread busy) keeps the time it arrived",
  ignore: !linux,
  async fn() {
    const got: { data: string; receivedAt: number; readAt: number }[] = [];
    let arrived!: () => void;
    const arrival = new Promise<void>((r) => (arrived = r));
    const { server, peer, got: ping, from } = await loopback((d, t) => {
      got.push({ data: new TextDecoder().decode(d), receivedAt: t, readAt: performance.now() });
      arrived();
    }, (e) => {
      throw e;
    }, new TextEncoder().encode("ping"));
    assertEquals(new TextDecoder().decode(ping), "ping");
    // The system turns receive timestamps on for the first socket that asks through work it
    // defers: a datagram that comes before that work ran is stamped when read (in a fresh
    // process on a quiet system, 2 runs in 15 of this test). A first answer waits for it.
    await server.send(new TextEncoder().encode("warm"), from);
    await arrival;
    await new Promise((resolve) => setTimeout(resolve, 20));
    got.length = 0;
    const pong = new Promise<void>((r) => (arrived = r));
    // Deno's send resolves after the datagram left, later still on a busy machine: it
    // arrived between the call and its end.
    const sending = performance.now();
    await server.send(new TextEncoder().encode("pong"), from);
    const sent = performance.now();
    busy(20);
    await pong;
    assertEquals(got.map((g) => g.data), ["pong"]);
    const { receivedAt, readAt } = got[0]!;
    assert(
      receivedAt > sending - 0.5 && receivedAt < sent + 2,
      `received ${receivedAt - sending} ms after the send began, which took ${sent - sending} ms`,
    );
    assert(readAt - receivedAt >= 19, `read ${readAt - receivedAt} ms after it arrived`);
    await peer.close();
    server.close();
  },
});

Deno.test({
  name: "kernel_udp: drain() hands over what has arrived at once, inside the call",
  ignore: !linux,
  async fn() {
    const got: string[] = [];
    const { server, peer, from } = await loopback((d) => got.push(new TextDecoder().decode(d)));
    await server.send(new TextEncoder().encode("a"), from);
    await server.send(new TextEncoder().encode("b"), from);
    busy(5);
    peer.drain();
    assertEquals(got, ["a", "b"]);
    await peer.close();
    server.close();
  },
});

Deno.test({
  name: "kernel_udp: a port that refuses (ICMP) is reported as ECONNREFUSED",
  ignore: !linux,
  async fn() {
    const closed = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    const port = (closed.addr as Deno.NetAddr).port;
    closed.close();
    const errors: string[] = [];
    let reported!: () => void;
    const report = new Promise<void>((r) => (reported = r));
    const peer = openKernelUdpPeer("127.0.0.1", port, () => {}, (e) => {
      errors.push((e as { code?: string }).code ?? e.message);
      reported();
    })!;
    peer.send(new Uint8Array([1]));
    await report;
    assertEquals(errors, ["ECONNREFUSED"]);
    await peer.close();
  },
});

Deno.test("kernel_udp: not an IPv4 address: undefined, and openUdpPeer falls back to node:dgram", async () => {
  assertEquals(openKernelUdpPeer("::1", 9, () => {}, () => {}), undefined);
  const server = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
  const got: { data: number; receivedAt: number | undefined }[] = [];
  let arrived!: () => void;
  const arrival = new Promise<void>((r) => (arrived = r));
  const peer = await openUdpPeer(
    "::1",
    (server.addr as Deno.NetAddr).port,
    (d, t) => {
      got.push({ data: d[0]!, receivedAt: t });
      arrived();
    },
    () => {},
    { stampReplies: true },
  );
  peer.send(new Uint8Array([7]));
  const [, from] = await server.receive();
  await server.send(new Uint8Array([8]), from);
  await arrival;
  assertEquals(got, [{ data: 8, receivedAt: undefined }]);
  await peer.close();
  server.close();
});

Deno.test({
  name: "kernel_udp: 300 replies read while the heap is churned all arrive, byte for byte",
  // The buffers the C library writes into must stay put and alive between reads: a header
  // pointing at one the collector had freed made the system write into freed memory.
  ignore: !linux,
  async fn() {
    const got: number[] = [];
    const { server, peer, from } = await loopback((d) => {
      got.push(d.length === 64 && d.every((b) => b === d[0]) ? d[0]! : -1);
    });
    let garbage: unknown[] = [];
    for (let i = 0; i < 300; i++) {
      await server.send(new Uint8Array(64).fill(i % 256), from);
      garbage = Array.from({ length: 10_000 }, (_, k) => ({ k, a: new Uint8Array(16) }));
      peer.drain();
    }
    assertEquals(garbage.length, 10_000);
    assertEquals(got, Array.from({ length: 300 }, (_, i) => i % 256));
    await peer.close();
    server.close();
  },
});

Deno.test({
  name: "kernel_udp: 40 sockets open at once each receive, and a file can still be read",
  // Deno runs blocking work (a file read, a non-blocking FFI call) on at most 32 threads:
  // a wait per socket held one each, and with 32 open a file read never began.
  ignore: !linux,
  async fn() {
    const got = new Set<number>();
    let all!: () => void;
    const allArrived = new Promise<void>((r) => (all = r));
    const servers = Array.from(
      { length: 40 },
      (_, i) =>
        openKernelUdpServer("127.0.0.1", 0, (d, from, receivedAt) => {
          assertEquals([d[0], from.address, Number.isFinite(receivedAt)], [i, "127.0.0.1", true]);
          got.add(i);
          if (got.size === 40) all();
        }, (e) => {
          throw e;
        })!,
    );
    const client = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    const read = Deno.readFile(new URL(import.meta.url));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), 5000)));
    assert((await Promise.race([read, late])) instanceof Uint8Array, "no file read in 5 s");
    for (const [i, s] of servers.entries()) {
      await client.send(new Uint8Array([i]), {
        transport: "udp",
        hostname: "127.0.0.1",
        port: s.port,
      });
    }
    assertEquals(await Promise.race([allArrived.then(() => got.size), late]), 40);
    clearTimeout(timer);
    client.close();
    await Promise.all(servers.map((s) => s.close()));
  },
});
