import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";
import { tempDir, vectorText } from "../_helpers.ts";
import {
  generateKey,
  keyFingerprint,
  modulusCString,
  modulusFromConfigH,
  parsePrivateKey,
  parsePublicKey,
} from "../../lib/format/keys.ts";
import { loadPublicKey, loadSigningKey } from "../../lib/config/key_file.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import { KeyError } from "../../lib/errors.ts";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { join } from "node:path";

const pkcs8 = vectorText("test-key-512.pem");
/** The same key as `openssl genrsa -3` before openssl 3 wrote it: `BEGIN RSA PRIVATE KEY`. */
const pkcs1 = createPrivateKey(pkcs8).export({ type: "pkcs1", format: "pem" }) as string;

/** The vector's modulus as node:crypto reads it (JWK `n`, base64url). */
function modulusOf(pem: string): Uint8Array {
  const n = createPrivateKey(pem).export({ format: "jwk" }).n!;
  return Uint8Array.from(atob(n.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
}

Deno.test("parsePrivateKey() reads the PKCS#8 vector (BEGIN PRIVATE KEY, openssl 3)", () => {
  assertStringIncludes(pkcs8, "-----BEGIN PRIVATE KEY-----");
  const key = parsePrivateKey(pkcs8);
  assertEquals(key.bits, 512);
  assertEquals(key.modulus, modulusOf(pkcs8));
  assertEquals(key.modulus.length, 64);
  assertEquals(key.fingerprint, keyFingerprint(key.modulus));
  assertEquals(key.fingerprint, "73:ce:76:bd:5f:0d:3b:f1");
});

Deno.test("parsePrivateKey() reads the same key as PKCS#1 (BEGIN RSA PRIVATE KEY) and signs alike", () => {
  assertStringIncludes(pkcs1, "-----BEGIN RSA PRIVATE KEY-----");
  const a = parsePrivateKey(pkcs8);
  const b = parsePrivateKey(pkcs1);
  assertEquals(b.bits, 512);
  assertEquals(b.modulus, a.modulus);
  assertEquals(b.fingerprint, a.fingerprint);
  // Normalised to PKCS#8 for the native signer either way.
  assertStringIncludes(b.pem, "-----BEGIN PRIVATE KEY-----");
  const block = new Uint8Array(36).map((_, i) => i);
  assertEquals(nativeSigner(b).sign(block), nativeSigner(a).sign(block));
});

Deno.test("loadSigningKey() reads PKCS#1 and PKCS#8 files and names the path", async () => {
  await using dir = await tempDir();
  for (const [name, pem] of [["pkcs8.key", pkcs8], ["pkcs1.key", pkcs1]]) {
    const path = join(dir.path, name!);
    await Deno.writeTextFile(path, pem!);
    const key = await loadSigningKey(path);
    assertEquals(key.path, path);
    assertEquals(key.modulus, modulusOf(pkcs8));
    assertEquals((await loadPublicKey(path)).fingerprint, key.fingerprint);
  }
});

Deno.test("parsePrivateKey() refuses a key whose public exponent is not 3, saying why", () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 512,
    publicExponent: 65537,
  });
  for (const type of ["pkcs8", "pkcs1"] as const) {
    const pem = privateKey.export({ type, format: "pem" }) as string;
    assertThrows(
      () => parsePrivateKey(pem, "keys/other.key"),
      KeyError,
      "keys/other.key: the public exponent is 65537, but yaota8266 verifies signatures with " +
        "exponent 3 only, so the device would reject every packet. Make a key with " +
        "'deno task keygen'",
    );
  }
  const pub = publicKey.export({ type: "spki", format: "pem" }) as string;
  assertThrows(() => parsePublicKey(pub, "pub.key"), KeyError, "the public exponent is 65537");
});

Deno.test("parsePrivateKey() given a public key says signing needs the private one", async () => {
  const spki = createPublicKey(pkcs8).export({ type: "spki", format: "pem" }) as string;
  const rsaPublic = createPublicKey(pkcs8).export({ type: "pkcs1", format: "pem" }) as string;
  for (const pem of [spki, rsaPublic]) {
    assertThrows(
      () => parsePrivateKey(pem, "keys/pub.key"),
      KeyError,
      "This is a public key: signing needs the private one (priv.key).",
    );
  }
  await using dir = await tempDir();
  const path = join(dir.path, "pub.key");
  await Deno.writeTextFile(path, spki);
  const e = await assertRejects(
    () => loadSigningKey(path),
    KeyError,
    `${path}: not an RSA private key`,
  );
  assertStringIncludes(e.message, "signing needs the private one");
  // Where a public key is enough, it is accepted.
  assertEquals((await loadPublicKey(path)).modulus, modulusOf(pkcs8));
});

Deno.test("parsePrivateKey() refuses an encrypted key with the command that decrypts it", () => {
  const encrypted = createPrivateKey(pkcs8).export({
    type: "pkcs8",
    format: "pem",
    cipher: "aes-256-cbc",
    passphrase: "secret",
  }) as string;
  assertThrows(() => parsePrivateKey(encrypted), KeyError, "Encrypted keys are not supported");
});

Deno.test("loadSigningKey() names a missing key and how to make one", async () => {
  await assertRejects(
    () => loadSigningKey("/nonexistent/priv.key"),
    KeyError,
    "no key at '/nonexistent/priv.key'. Create one with 'deno task keygen', or name yours with --key.",
  );
});

Deno.test("generateKey() makes an exponent-3 key whose PEMs parse back to the same modulus", () => {
  const key = generateKey(512);
  assertEquals(key.info.bits, 512);
  assertStringIncludes(key.privatePem, "-----BEGIN PRIVATE KEY-----");
  assertStringIncludes(key.publicPem, "-----BEGIN PUBLIC KEY-----");
  assertEquals(parsePrivateKey(key.privatePem).modulus, key.info.modulus);
  assertEquals(parsePublicKey(key.publicPem).modulus, key.info.modulus);
  assertEquals(createPrivateKey(key.privatePem).export({ format: "jwk" }).e, "Aw"); // 3
});

Deno.test("modulusCString() writes the modulus as config.h escapes that read back", () => {
  const { modulus } = parsePrivateKey(pkcs8);
  const literal = modulusCString(modulus);
  assert(/^"(\\x[0-9a-f]{2}){64}"$/.test(literal), literal);
  assertEquals(literal.slice(0, 5), `"\\x${modulus[0]!.toString(16).padStart(2, "0")}`);
  assertEquals(modulusFromConfigH(`#define MODULUS ${literal}\n`), modulus);
});
