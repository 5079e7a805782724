/**
 * "Are you in OTA mode?" without changing anything (docs/device.md, "Asking whether a
 * device is in OTA mode"): a correctly signed packet at offset 0xFFFFFFFF with one byte
 * of data. A fresh session's previous offset is 0xFFFFFFFF, so the OTA server only
 * re-acknowledges it; a device in someone else's session, a board running its app and
 * an absent one all stay silent. Never with `len = 0` (that is the end packet).
 */
import { makePacket, parseReply, type Signer } from "../format/packet.ts";
import { openUdpPeer } from "./udp.ts";

/** `ota_prev_offset` of a fresh session: −1 in a `uint32_t`. */
export const QUESTION_OFFSET = 0xffffffff;
/** One byte: `len ≥ 1`, so that it is never taken for an end packet. */
const QUESTION_DATA = new Uint8Array([0]);
export const DEFAULT_QUESTION_TRIES = 3;
export const DEFAULT_QUESTION_WAIT_MS = 300;

/** The question as a datagram. Pure (type-1 padding is deterministic). */
export function otaQuestion(seq: number, signer: Signer): Uint8Array {
  return makePacket(seq, QUESTION_OFFSET, QUESTION_DATA, signer);
}

/** Whether `reply` answers the question: same offset and length. Pure. */
export function answersQuestion(reply: Uint8Array): boolean {
  const r = parseReply(reply);
  return r !== undefined && r.offset === QUESTION_OFFSET && r.len === QUESTION_DATA.length;
}

/**
 * Asks `host:port` whether it is in OTA mode, `tries` times `waitMs` apart (a datagram
 * may be lost). True if it answered; false means "not in OTA mode, busy with another
 * session, built for another key, or absent" (the wire cannot tell them apart).
 * Needs `--allow-net`.
 */
export async function askOtaMode(
  host: string,
  port: number,
  signer: Signer,
  options: { tries?: number; waitMs?: number; signal?: AbortSignal } = {},
): Promise<boolean> {
  const tries = options.tries ?? DEFAULT_QUESTION_TRIES;
  const waitMs = options.waitMs ?? DEFAULT_QUESTION_WAIT_MS;
  let answered = false;
  let wake: () => void = () => {};
  const peer = await openUdpPeer(host, port, (data) => {
    if (!answersQuestion(data)) return;
    answered = true;
    wake();
  });
  try {
    for (let seq = 1; seq <= tries && !answered && !options.signal?.aborted; seq++) {
      peer.send(otaQuestion(seq, signer));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        function done() {
          clearTimeout(timer);
          options.signal?.removeEventListener("abort", done);
          resolve();
        }
        wake = done;
        options.signal?.addEventListener("abort", done);
      });
    }
    return answered;
  } finally {
    await peer.close();
  }
}
