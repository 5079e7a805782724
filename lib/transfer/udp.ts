/** A UDP endpoint for the sender: datagrams to one device, replies back as bytes. */
import dgram from "node:dgram";
import { listenError } from "./listen_error.ts";
import { sendError } from "./send_error.ts";
import { trace } from "../trace.ts";

export interface UdpPeer {
  send(data: Uint8Array): void;
  close(): Promise<void>;
}

/**
 * A socket on a free local port, connected to `host:port` (an IP address). A send the
 * system refuses goes to `onSendError` (the caller decides whether it ends the transfer);
 * it never crashes the process.
 *
 * Connected, because then a datagram leaves inside `send`: Deno's `node:dgram` resolves
 * the address of an unconnected send first and sends only once the calling task has
 * finished (measured: 3 ms of work after the call, the datagram 3.1–3.3 ms late; connected,
 * 0.1 ms), and a paced packet is aimed to a fraction of a millisecond (pacing.ts).
 * @throws {ListenError} If no local socket can be opened.
 * @throws {AddressError} If the system will not send to `host:port` at all.
 */
export async function openUdpPeer(
  host: string,
  port: number,
  onMessage: (data: Uint8Array) => void,
  onSendError: (error: unknown) => void = () => {},
): Promise<UdpPeer> {
  const family = host.includes(":") ? "udp6" : "udp4";
  const socket = dgram.createSocket(family);
  await new Promise<void>((resolve, reject) => {
    socket.once("error", (e) => {
      socket.close();
      reject(listenError(e, { host: "this machine", port: 0, transport: "UDP" }));
    });
    socket.bind(0, () => {
      socket.removeAllListeners("error");
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", (e) => {
      socket.close();
      reject(sendError(e, host, port) ?? e);
    });
    socket.connect(port, host, () => {
      socket.removeAllListeners("error");
      resolve();
    });
  });
  socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
    if (rinfo.port === port) onMessage(new Uint8Array(msg));
  });
  let closed = false;
  socket.on("error", (e) => {
    trace("udp", `socket error: ${e.message}`);
    if (!closed) onSendError(e);
  });
  // Sends issued in one tick may leave in reverse order (measured: 50 sent in a loop, some
  // rounds arrived out of order). The device takes offsets strictly in order, so each
  // datagram leaves only once the previous one has (about 0.1 ms each).
  const queue: Uint8Array[] = [];
  let sending = false;
  const next = (): void => {
    const data = queue.shift();
    if (data === undefined || closed) {
      sending = false;
      return;
    }
    sending = true;
    socket.send(data, (e: Error | null) => {
      if (e && !closed) onSendError(e);
      next();
    });
  };
  return {
    send(data) {
      if (closed) return;
      queue.push(data);
      if (!sending) next();
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };
}
