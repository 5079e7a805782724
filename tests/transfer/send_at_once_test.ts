/**
 * A datagram leaves inside the call that sends it, not when the calling task ends: the
 * sender's paced packets (`transfer/udp.ts`, a connected socket) and the virtual device's
 * replies (`sim/datagram_socket.ts`). A receiver on another thread raises a shared flag;
 * the sending thread, still inside the task that sent, waits for it.
 */
import { assert, assertEquals } from "../_assert.ts";
import { openUdpPeer } from "../../lib/transfer/udp.ts";
import { openDatagramSocket, sendsAtOnce } from "../../lib/sim/datagram_socket.ts";

/** A receiver in another process: prints its port, touches `marker` on a datagram. */
const RECEIVER = `
const marker = Deno.args[0];
const c = Deno.listenDatagram({ port: 0, transport: "udp", hostname: "127.0.0.1" });
console.log(c.addr.port);
for await (const _ of c) Deno.writeTextFileSync(marker, "1");
`;

/**
 * Opens a sender towards a receiver in another process (`open`), then sends with it and,
 * without yielding, waits up to 2 s for the datagram: true if it arrived meanwhile.
 */
async function arrivesWithinTheTask<T extends { close(): Promise<void> }>(
  open: (port: number) => Promise<T>,
  send: (sender: T, port: number) => void,
): Promise<boolean> {
  const dir = await Deno.makeTempDir();
  const marker = `${dir}/arrived`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--unstable-net", RECEIVER, marker],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let sender: T | undefined;
  try {
    let line = "";
    while (!line.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the receiver ended before it listened");
      line += value;
    }
    const port = Number(line.trim());
    sender = await open(port);
    // The first send on a new socket may wait for the event loop (the system's readiness
    // is learned once); a sender's later ones are what is timed.
    send(sender, port);
    for (let i = 0; i < 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      try {
        Deno.statSync(marker);
        break;
      } catch {
        // not yet
      }
    }
    await Deno.remove(marker).catch(() => {});
    send(sender, port);
    const until = performance.now() + 2000;
    while (performance.now() < until) {
      try {
        Deno.statSync(marker);
        return true;
      } catch {
        // not yet
      }
    }
    return false;
  } finally {
    await sender?.close();
    child.kill();
    await reader.cancel();
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("openUdpPeer: a datagram leaves inside send(), before the sending task ends", async () => {
  const arrived = await arrivesWithinTheTask(
    (port) => openUdpPeer("127.0.0.1", port, () => {}),
    (peer) => peer.send(new Uint8Array(300)),
  );
  assert(arrived, "the datagram left only once the task that sent it had ended");
});

Deno.test("the virtual device's socket: a reply leaves inside send(), before the task ends", async () => {
  assertEquals(sendsAtOnce(), true, "deno.json asks for --unstable-net (Deno.listenDatagram)");
  const arrived = await arrivesWithinTheTask(
    () => openDatagramSocket({ hostname: "127.0.0.1", port: 0, onMessage: () => {} }),
    (socket, port) => socket.send(new Uint8Array(40), "127.0.0.1", port),
  );
  assert(arrived, "the reply left only once the task that sent it had ended");
});
