/**
 * A sender that behaves like the original 2016 client (pfalcon/yaota8266 `ota_client.py`):
 * 256-byte packets, stop-and-wait, 0.3 s per try, retries until told to stop, replies
 * matched by seq, offset and length, the end packet sent three times 0.1 s apart. The
 * benchmark's baseline; not used to update devices.
 */
import { firmwarePackets } from "../format/canned.ts";
import { parseReply, parseRequestHeader, type Signer } from "../format/packet.ts";
import { openUdpPeer } from "../transfer/udp.ts";

export interface BaselineResult {
  ok: boolean;
  seconds: number;
  retransmits: number;
}

export async function sendLikeOriginal(
  host: string,
  port: number,
  firmware: Uint8Array,
  signer: Signer,
  options: { block?: number; tryMs?: number; giveUpMs?: number } = {},
): Promise<BaselineResult> {
  const packets = firmwarePackets(firmware, options.block ?? 256, signer);
  const data = packets.slice(0, -3);
  const ends = packets.slice(-3);
  const tryMs = options.tryMs ?? 300;
  const giveUpAt = performance.now() + (options.giveUpMs ?? 600_000);
  let waiting: { seq: number; offset: number; len: number; resolve: () => void } | undefined;
  const peer = await openUdpPeer(host, port, (bytes) => {
    const r = parseReply(bytes);
    if (
      r && waiting && r.seq === waiting.seq && r.offset === waiting.offset && r.len === waiting.len
    ) {
      waiting.resolve();
    }
  });
  const t0 = performance.now();
  let retransmits = 0;
  try {
    for (const p of data) {
      const h = parseRequestHeader(p)!;
      for (let attempt = 0;; attempt++) {
        if (performance.now() > giveUpAt) {
          return { ok: false, seconds: (performance.now() - t0) / 1000, retransmits };
        }
        if (attempt > 0) retransmits++;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const acked = await new Promise<boolean>((resolve) => {
          waiting = { seq: h.seq, offset: h.offset, len: h.len, resolve: () => resolve(true) };
          timer = setTimeout(() => resolve(false), tryMs);
          peer.send(p);
        });
        clearTimeout(timer);
        waiting = undefined;
        if (acked) break;
      }
    }
    for (const e of ends) {
      peer.send(e);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { ok: true, seconds: (performance.now() - t0 - 300) / 1000, retransmits };
  } finally {
    await peer.close();
  }
}
