/**
 * Signers for the packets' digest blocks. The native one (`node:crypto`
 * `privateEncrypt` with PKCS#1 v1.5 padding) is the hot path; the node-forge one is the
 * reference it is tested against (same bytes: type-1 padding is deterministic).
 */
import forge from "node-forge";
import { constants, createPrivateKey, type KeyObject, privateEncrypt } from "node:crypto";
import type { Signer } from "./packet.ts";
import type { SigningKey } from "./keys.ts";

export function nativeSigner(key: SigningKey): Signer & { pem: string } {
  return {
    ...nativeSignerFromKeyObject(createPrivateKey(key.pem), key.modulus.length),
    pem: key.pem,
  };
}

export function nativeSignerFromKeyObject(keyObject: KeyObject, signatureLength: number): Signer {
  return {
    signatureLength,
    sign: (block) =>
      new Uint8Array(
        privateEncrypt({ key: keyObject, padding: constants.RSA_PKCS1_PADDING }, block),
      ),
  };
}

export function forgeSigner(key: SigningKey): Signer {
  const privateKey = forge.pki.privateKeyFromPem(key.pem);
  return {
    signatureLength: key.modulus.length,
    sign: (block) => {
      const binary = forge.pki.rsa.encrypt(String.fromCharCode(...block), privateKey, 0x01);
      return Uint8Array.from(binary as string, (c: string) => c.charCodeAt(0));
    },
  };
}
