/**
 * The virtual device's UDP socket: a datagram reaches the model when it reached the
 * machine, and the replies leave the moment the model makes them, as a board's do. On Linux
 * (IPv4) it is opened through the C library with the system's receive times
 * (`transfer/kernel_udp.ts`, `openKernelUdpServer`), sending inside the call. Elsewhere a
 * datagram is timed when the process reads it, and: Deno's `node:dgram` hands a datagram
 * to an unconnected socket only once the calling task has finished (measured: a send
 * followed by 3 ms of work in the same callback arrived 3.1–3.3 ms late, every time) — a
 * reply late by whatever the device process did next, jitter a board does not have;
 * `Deno.listenDatagram` sends inside the call (0.14 ms). That API is behind
 * `--unstable-net` (deno.json and `startSimProcess` ask for it); without it this falls
 * back to `node:dgram`. (The sender connects its socket instead, `transfer/udp.ts`: a
 * socket that may broadcast has no place there, and Deno's own has broadcasting on.)
 */
import dgram from "node:dgram";
import { nodeSocketSender, socketStep } from "../transfer/udp.ts";
import { openKernelUdpServer } from "../transfer/kernel_udp.ts";

export interface Sender {
  address: string;
  port: number;
}

export interface DatagramSocket {
  /** The local port (chosen by the system when 0 was asked for). */
  readonly port: number;
  /** Sends `data`; datagrams leave in the order of the calls. */
  send(data: Uint8Array, host: string, port: number): void;
  /** Reads what the system has received by now, where that can be done at once. */
  drain?(): void;
  close(): Promise<void>;
}

export interface DatagramSocketOptions {
  /** Local address to bind: "0.0.0.0", "::", "127.0.0.1", ... */
  hostname: string;
  /** Local port; 0 picks a free one. */
  port: number;
  /** `receivedAt`: when the system received it (`performance.now()` ms), where known. */
  onMessage(data: Uint8Array, from: Sender, receivedAt?: number): void;
  /** A datagram the system would not send (no route, a broadcast address, ...). */
  onSendError?(error: unknown): void;
}

/**
 * Binds a UDP socket.
 * @throws The system's error if the address or port cannot be bound (see `listenError`).
 */
export function openDatagramSocket(options: DatagramSocketOptions): Promise<DatagramSocket> {
  return Promise.try(() =>
    openKernelUdpServer(
      options.hostname,
      options.port,
      options.onMessage,
      (e) => options.onSendError?.(e),
    ) ??
      (sendsAtOnce() ? openDenoSocket(options) : openNodeSocket(options))
  );
}

/** Whether sends leave inside the call (Deno's own UDP API is available). */
export function sendsAtOnce(): boolean {
  return "listenDatagram" in Deno && typeof Deno.listenDatagram === "function";
}

function openDenoSocket(o: DatagramSocketOptions): DatagramSocket {
  const conn = Deno.listenDatagram({ hostname: o.hostname, port: o.port, transport: "udp" });
  let closed = false;
  // The pending read holds the socket: it is released (the port free again) once it ends.
  const reading = (async () => {
    try {
      for await (const [data, addr] of conn) {
        if (closed) break;
        const from = addr as Deno.NetAddr;
        o.onMessage(data, { address: from.hostname, port: from.port });
      }
    } catch {
      // Closed under the loop (BadResource / Interrupted): nothing more to read.
    }
  })();
  // A send that cannot complete at once (a full socket buffer) stays pending: the ones
  // behind it wait for it, so none overtakes another.
  let pending: Promise<void> | undefined;
  const transmit = (data: Uint8Array, hostname: string, port: number): Promise<void> =>
    conn.send(data, { transport: "udp", hostname, port }).then(
      () => {},
      (e) => {
        if (!closed) o.onSendError?.(e);
      },
    );
  return {
    port: (conn.addr as Deno.NetAddr).port,
    send(data, host, port) {
      if (closed) return;
      const p = pending
        ? pending.then(() => transmit(data, host, port))
        : transmit(data, host, port);
      pending = p;
      void p.then(() => {
        if (pending === p) pending = undefined;
      });
    },
    close() {
      if (!closed) {
        closed = true;
        conn.close();
      }
      return reading;
    },
  };
}

async function openNodeSocket(o: DatagramSocketOptions): Promise<DatagramSocket> {
  const socket = dgram.createSocket(o.hostname.includes(":") ? "udp6" : "udp4");
  await socketStep(socket, (done) => socket.bind(o.port, o.hostname, done), (e) => e);
  socket.on("message", (msg: Uint8Array, rinfo: Sender) => {
    o.onMessage(new Uint8Array(msg), { address: rinfo.address, port: rinfo.port });
  });
  const sender = nodeSocketSender<{ data: Uint8Array; host: string; port: number }>(
    socket,
    (d, done) => socket.send(d.data, d.port, d.host, done),
    (e) => o.onSendError?.(e),
  );
  return {
    port: socket.address().port,
    send: (data, host, port) => sender.send({ data, host, port }),
    close: sender.close,
  };
}
