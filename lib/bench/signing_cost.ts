/** What signing one datagram costs, natively and with node-forge, in milliseconds. */
import { type SigningKey } from "../format/keys.ts";
import { digestBlock, signedRegion } from "../format/packet.ts";
import { forgeSigner, nativeSigner } from "../format/signer.ts";

export function signingCost(key: SigningKey, block: number): { native: number; forge: number } {
  const region = signedRegion(0, new Uint8Array(block).fill(0x5a));
  const time = (sign: (b: Uint8Array) => Uint8Array, n: number) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) sign(digestBlock(region));
    return (performance.now() - t) / n;
  };
  const native = nativeSigner(key);
  const forge = forgeSigner(key);
  time(native.sign, 5);
  return {
    native: time(native.sign, key.bits > 1024 ? 100 : 400),
    forge: time(forge.sign, key.bits > 1024 ? 10 : 60),
  };
}
