/** A UDP endpoint for the sender: datagrams to one device, replies back as bytes. */
import dgram from "node:dgram";
import { listenError } from "./listen_error.ts";
import { sendError } from "./send_error.ts";
import { trace } from "../trace.ts";
import { openKernelUdpPeer } from "./kernel_udp.ts";

export interface UdpPeer {
  send(data: Uint8Array): void;
  /** Reads now what has arrived, where the socket allows (`kernel_udp.ts`). */
  drain?(): void;
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
  onMessage: (data: Uint8Array, receivedAt?: number) => void,
  onSendError: (error: unknown) => void = () => {},
  options: { stampReplies?: boolean } = {},
): Promise<UdpPeer> {
  if (options.stampReplies) {
    let peer;
    try {
      peer = openKernelUdpPeer(host, port, onMessage, onSendError);
    } catch (e) {
      throw sendError(e, host, port) ?? e;
    }
    if (peer) return peer;
  }
  const family = host.includes(":") ? "udp6" : "udp4";
  const socket = dgram.createSocket(family);
  await socketStep(
    socket,
    (done) => socket.bind(0, done),
    (e) => listenError(e, { host: "this machine", port: 0, transport: "UDP" }),
  );
  await socketStep(
    socket,
    (done) => socket.connect(port, host, done),
    (e) => sendError(e, host, port) ?? e,
  );
  socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
    if (rinfo.port === port) onMessage(new Uint8Array(msg));
  });
  socket.on("error", (e) => trace("udp", `socket error: ${e.message}`));
  return nodeSocketSender<Uint8Array>(socket, (data, done) => socket.send(data, done), onSendError);
}

/**
 * The sending side of a bound `node:dgram` socket: datagrams leave in order (`inOrder`),
 * the socket's errors go to `onSendError` until it is closed, and it closes once.
 */
export function nodeSocketSender<T>(
  socket: dgram.Socket,
  sendOne: (item: T, done: (error: Error | null) => void) => void,
  onSendError: (error: Error) => void,
): { send(item: T): void; close(): Promise<void> } {
  let closed = false;
  socket.on("error", (e) => {
    if (!closed) onSendError(e);
  });
  const send = inOrder<T>(sendOne, (e) => !closed && onSendError(e), () => closed);
  return {
    send(item) {
      if (!closed) send(item);
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };
}

/**
 * One setup step of a `node:dgram` socket (bind, connect): resolves when `start`'s callback
 * runs; on an error the socket is closed and the promise rejects with `fail(error)`.
 */
export function socketStep(
  socket: dgram.Socket,
  start: (done: () => void) => void,
  fail: (error: Error) => unknown,
): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once("error", (e) => {
      socket.close();
      reject(fail(e));
    });
    start(() => {
      socket.removeAllListeners("error");
      resolve();
    });
  });
}

/**
 * Sends through `node:dgram` one at a time, each once the previous one has left: sends
 * issued in one tick may leave out of order (measured: 50 sent in a loop, some rounds
 * arrived out of order), and a device takes offsets strictly in order. About 0.1 ms each.
 */
function inOrder<T>(
  send: (item: T, done: (error: Error | null) => void) => void,
  onError: (error: Error) => void,
  closed: () => boolean,
): (item: T) => void {
  const queue: T[] = [];
  let sending = false;
  const next = (): void => {
    if (queue.length === 0 || closed()) {
      sending = false;
      return;
    }
    sending = true;
    send(queue.shift()!, (e) => {
      if (e) onError(e);
      next();
    });
  };
  return (item) => {
    queue.push(item);
    if (!sending) next();
  };
}
