/** A UDP endpoint for the sender: datagrams to one device, replies back as bytes. */
import dgram from "node:dgram";
import { trace } from "./trace.ts";

export interface UdpPeer {
  send(data: Uint8Array): void;
  close(): Promise<void>;
}

export async function openUdpPeer(
  host: string,
  port: number,
  onMessage: (data: Uint8Array) => void,
): Promise<UdpPeer> {
  const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
    if (rinfo.port === port) onMessage(new Uint8Array(msg));
  });
  // A send error (no route, unreachable) must not crash the process: the engine's
  // timers report a device that does not answer.
  socket.on("error", (e: Error) => trace("udp", `socket error (the timers decide): ${e.message}`));
  let closed = false;
  return {
    send(data) {
      if (!closed) socket.send(data, port, host);
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };
}
