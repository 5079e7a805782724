/**
 * yaota8266 signing keys: RSA with public exponent 3 (docs/device.md, "Keys").
 * Reads PKCS#1 (`BEGIN RSA PRIVATE KEY`) and PKCS#8 (`BEGIN PRIVATE KEY`) PEM as
 * written by `openssl genrsa -3`, and public keys as PEM. Pure: files are read by
 * `lib/config/key_file.ts`.
 */
import forge from "node-forge";
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { KeyError } from "../errors.ts";
import { toHex } from "../_bytes.ts";

export interface PublicKeyInfo {
  /** Big-endian modulus bytes, exactly `bits / 8` long: what `config.h` holds. */
  modulus: Uint8Array;
  bits: number;
  /** Short, stable name for the key: the first 8 bytes of SHA-256(modulus). */
  fingerprint: string;
}

export interface SigningKey extends PublicKeyInfo {
  /** The private key as PEM (PKCS#8), for the native signer. Never print it. */
  pem: string;
  /** Where it was read from, for messages. */
  path?: string;
}

function bigIntegerBytes(n: forge.jsbn.BigInteger): Uint8Array {
  const hex = n.toString(16);
  const even = hex.length % 2 ? "0" + hex : hex;
  return Uint8Array.from(even.match(/../g) ?? [], (h: string) => parseInt(h, 16));
}

export function keyFingerprint(modulus: Uint8Array): string {
  const digest = createHash("sha256").update(modulus).digest();
  return toHex(new Uint8Array(digest.subarray(0, 8)), ":");
}

function publicInfo(
  n: forge.jsbn.BigInteger,
  e: forge.jsbn.BigInteger,
  where: string,
): PublicKeyInfo {
  if (e.toString() !== "3") {
    throw new KeyError(
      `${where}: the public exponent is ${e.toString()}, but yaota8266 verifies signatures with exponent 3 ` +
        `only, so the device would reject every packet. Make a key with 'deno task keygen' ` +
        `(or 'openssl genrsa -3').`,
    );
  }
  const modulus = bigIntegerBytes(n);
  return { modulus, bits: n.bitLength(), fingerprint: keyFingerprint(modulus) };
}

const NEEDS_RSA = "yaota8266 needs an RSA key with exponent 3: make one with 'deno task keygen'";

/** The algorithm an OpenSSH key file names inside its base64 body, if it is one. */
function openSshKind(text: string): string | undefined {
  const line = /^\s*(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+) AAAA/.exec(text);
  if (line) return line[1];
  const body = /-----BEGIN OPENSSH PRIVATE KEY-----([^-]*)-----END/.exec(text)?.[1];
  if (body === undefined) return undefined;
  let decoded = "";
  try {
    decoded = atob(body.replace(/\s+/g, ""));
  } catch {
    return "unknown";
  }
  // After the "openssh-key-v1" magic, the first public key blob starts with its type.
  return /(ssh-(?:ed25519|ed448|rsa|dss)|ecdsa-sha2-[a-z0-9]+|sk-[a-z0-9-]+@openssh\.com)/
    .exec(decoded.slice("openssh-key-v1".length))?.[1] ?? "unknown";
}

/**
 * What a key that is not an RSA key is, for a message: "an EC key (curve prime256v1)",
 * "an Ed25519 key", "an OpenSSH key (ssh-ed25519)". Undefined for RSA or non-keys. Pure.
 */
export function foreignKeyKind(text: string): string | undefined {
  const ssh = openSshKind(text);
  if (ssh !== undefined) {
    return ssh === "ssh-rsa"
      ? "an RSA key in OpenSSH format (not read here, and ssh-keygen makes exponent 65537)"
      : `an OpenSSH key (${ssh})`;
  }
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch {
    return undefined;
  }
  const type = key.asymmetricKeyType;
  if (type === undefined || type === "rsa") return undefined;
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return `an EC key${curve ? ` (curve ${curve})` : ""}`;
  }
  const names: Record<string, string> = {
    "rsa-pss": "an RSA-PSS key (RSA restricted to PSS signatures)",
    ed25519: "an Ed25519 key",
    ed448: "an Ed448 key",
    x25519: "an X25519 key",
    x448: "an X448 key",
    dsa: "a DSA key",
    dh: "a Diffie-Hellman key",
  };
  return names[type] ?? `a ${type} key`;
}

/** A key file with nothing in it, or another kind of key than RSA: named as such. */
function refuseEmptyOrForeign(text: string, where: string): void {
  if (text.trim() === "") {
    throw new KeyError(
      `${where} is empty (no key in it): make a key pair with 'deno task keygen' (--force ` +
        "replaces an empty file), or name your key with --key.",
    );
  }
  const kind = foreignKeyKind(text);
  if (kind !== undefined) throw new KeyError(`${where} is ${kind}, but ${NEEDS_RSA}.`);
}

/**
 * Parses a private key PEM (PKCS#1 or PKCS#8).
 * @throws {KeyError} If it is empty, not an RSA private key, or its exponent is not 3.
 */
export function parsePrivateKey(pem: string, where = "key"): SigningKey {
  refuseEmptyOrForeign(pem, where);
  let key: forge.pki.rsa.PrivateKey;
  try {
    key = forge.pki.privateKeyFromPem(pem);
  } catch (e) {
    const hint = /BEGIN (RSA )?PUBLIC KEY/.test(pem)
      ? " This is a public key: signing needs the private one (priv.key)."
      : /ENCRYPTED/.test(pem)
      ? " Encrypted keys are not supported: decrypt it with 'openssl pkey -in KEY -out priv.key'."
      : "";
    throw new KeyError(
      `${where}: not an RSA private key in PEM form (${(e as Error).message}).${hint}`,
    );
  }
  const info = publicInfo(key.n, key.e, where);
  const pkcs8 = forge.pki.privateKeyInfoToPem(
    forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(key)),
  );
  return { ...info, pem: pkcs8 };
}

/** Parses a public key PEM, or takes the public half of a private key PEM. */
export function parsePublicKey(pem: string, where = "key"): PublicKeyInfo {
  refuseEmptyOrForeign(pem, where);
  if (/BEGIN (RSA |ENCRYPTED )?PRIVATE KEY/.test(pem)) {
    const { modulus, bits, fingerprint } = parsePrivateKey(pem, where);
    return { modulus, bits, fingerprint };
  }
  let key: forge.pki.rsa.PublicKey;
  try {
    key = forge.pki.publicKeyFromPem(pem);
  } catch (e) {
    throw new KeyError(`${where}: not an RSA public key in PEM form (${(e as Error).message})`);
  }
  return publicInfo(key.n, key.e, where);
}

export interface GeneratedKey {
  privatePem: string;
  publicPem: string;
  info: PublicKeyInfo;
}

/** Generates an RSA key pair with exponent 3 (node-forge). */
export function generateKey(bits: number): GeneratedKey {
  const pair = forge.pki.rsa.generateKeyPair({ bits, e: 3 });
  return {
    privatePem: forge.pki.privateKeyInfoToPem(
      forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(pair.privateKey)),
    ),
    publicPem: forge.pki.publicKeyToPem(pair.publicKey),
    info: publicInfo(pair.publicKey.n, pair.publicKey.e, "generated key"),
  };
}

/** The modulus as a C string literal for yaota8266's `config.h`: `"\xce\x4a…"`. */
export function modulusCString(modulus: Uint8Array): string {
  return '"' + Array.from(modulus, (b) => "\\x" + b.toString(16).padStart(2, "0")).join("") + '"';
}

/** Parses the `MODULUS` string literal(s) out of a `config.h`; undefined if absent. */
export function modulusFromConfigH(text: string): Uint8Array | undefined {
  const m = /#define\s+MODULUS\s+((?:"(?:[^"\\]|\\.)*"\s*)+)/.exec(text);
  if (!m?.[1]) return undefined;
  const bytes: number[] = [];
  for (const lit of m[1].matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
    const body = lit[1] ?? "";
    for (let i = 0; i < body.length; i++) {
      const c = body[i]!;
      if (c !== "\\") {
        bytes.push(c.charCodeAt(0));
        continue;
      }
      const next = body[i + 1];
      if (next === "x") {
        const hex = /^[0-9a-fA-F]+/.exec(body.slice(i + 2))?.[0] ?? "";
        bytes.push(parseInt(hex, 16) & 0xff);
        i += 1 + hex.length;
      } else if (next !== undefined && /[0-7]/.test(next)) {
        const oct = /^[0-7]{1,3}/.exec(body.slice(i + 1))?.[0] ?? "0";
        bytes.push(parseInt(oct, 8));
        i += oct.length;
      } else {
        const simple: Record<string, number> = { n: 10, r: 13, t: 9, "0": 0, "\\": 92, '"': 34 };
        bytes.push(simple[next ?? ""] ?? (next ?? "").charCodeAt(0));
        i += 1;
      }
    }
  }
  return new Uint8Array(bytes);
}
