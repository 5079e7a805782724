/// <reference lib="deno.worker" />
/** Signs packet bodies off the sender's thread, so signing never delays a send or a reply. */
import { createPrivateKey } from "node:crypto";
import { nativeSignerFromKeyObject } from "../format/signer.ts";
import { signBody } from "../format/packet.ts";

let firmware = new Uint8Array(0);
let signer: ReturnType<typeof nativeSignerFromKeyObject> | undefined;

self.onmessage = (e: MessageEvent) => {
  const m = e.data;
  if (m.type === "init") {
    firmware = m.firmware;
    signer = nativeSignerFromKeyObject(createPrivateKey(m.pem), m.signatureLength);
    return;
  }
  if (m.type === "sign" && signer) {
    for (const [offset, len] of m.items as [number, number][]) {
      const started = performance.now();
      const body = signBody(offset, firmware.subarray(offset, offset + len), signer);
      const ms = performance.now() - started;
      self.postMessage({ offset, len, body, ms }, [body.buffer as ArrayBuffer]);
    }
  }
};
