import {
  assert,
  assertEquals,
  assertNotEquals,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";
import { runTaskFile, tempDir } from "../_helpers.ts";
import { loadPublicKey, loadSigningKey } from "../../lib/config/key_file.ts";
import {
  checkKeyBits,
  keyPaths,
  largestBlock,
  modulusDefine,
  renderKeygenReport,
} from "../../lib/setup/keygen.ts";
import { parseKeygenArgs } from "../../tasks/keygen.ts";
import { UsageError } from "../../lib/errors.ts";
import { join } from "node:path";

const isPosix = Deno.build.os !== "windows";

/** The base64 body of a PEM file: what must never be printed. */
function pemBody(pem: string): string {
  return pem.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
}

function assertSecretNotShown(privatePem: string, output: string): void {
  const body = pemBody(privatePem);
  assert(body.length > 100, "the PEM has a body");
  const joined = output.replace(/\s/g, "");
  assert(!joined.includes(body.slice(0, 40)), "the private key's PEM body was printed");
  for (const line of privatePem.split("\n").slice(1, -2)) {
    assert(!output.includes(line), `a line of the private key was printed: ${line}`);
  }
}

/** `#define MODULUS "…"` → the number of `\xNN` escapes, or -1 if the line is missing. */
function modulusEscapes(text: string): number {
  const m = /^#define MODULUS "((?:\\x[0-9a-f]{2})+)"$/m.exec(text);
  return m ? m[1]!.length / 4 : -1;
}

Deno.test("keygen writes priv.key (mode 0600) and pub.key and prints the MODULUS line, never the key", async () => {
  await using dir = await tempDir();
  const out = join(dir.path, "keys");
  const r = await runTaskFile("keygen", ["--out", out]);
  assertEquals(r.code, 0, r.stderr);
  const priv = join(out, "priv.key");
  const pub = join(out, "pub.key");
  if (isPosix) assertEquals(Deno.statSync(priv).mode! & 0o777, 0o600);
  const privatePem = await Deno.readTextFile(priv);
  assertStringIncludes(privatePem, "-----BEGIN PRIVATE KEY-----");
  const key = await loadSigningKey(priv);
  assertEquals(key.bits, 2048);
  assertEquals((await loadPublicKey(pub)).modulus, key.modulus);
  // 2048 bits = 256 bytes, each one `\xNN`.
  assertEquals(modulusEscapes(r.stdout), 256);
  assertStringIncludes(r.stdout, modulusDefine(key.modulus));
  assertStringIncludes(r.stdout, `fingerprint ${key.fingerprint}`);
  assertStringIncludes(
    r.stdout,
    `wrote ${priv} (private key, mode 0600: keep it secret) and ${pub}`,
  );
  assertStringIncludes(r.stdout, `deno task build-bootloader --key ${priv}`);
  assertStringIncludes(r.stdout, `Back up ${priv}`);
  assertSecretNotShown(privatePem, r.stdout + r.stderr);
});

Deno.test("keygen refuses to overwrite a key without --force and leaves it unchanged; --force replaces it", async () => {
  await using dir = await tempDir();
  const priv = join(dir.path, "priv.key");
  const first = await runTaskFile("keygen", ["--out", dir.path, "--bits", "512"]);
  assertEquals(first.code, 0, first.stderr);
  const before = await Deno.readFile(priv);
  const pubBefore = await Deno.readFile(join(dir.path, "pub.key"));

  const again = await runTaskFile("keygen", ["--out", dir.path, "--bits", "512"]);
  assertEquals(again.code, 1);
  assertStringIncludes(
    again.stderr,
    `error: '${priv}' and '${join(dir.path, "pub.key")}' already exist: not overwritten.`,
  );
  assertStringIncludes(again.stderr, "back up the old one and pass --force");
  assertEquals(again.stdout, "");
  assertEquals(await Deno.readFile(priv), before);
  assertEquals(await Deno.readFile(join(dir.path, "pub.key")), pubBefore);

  // One existing file is enough to refuse, and the message names it.
  await Deno.remove(join(dir.path, "pub.key"));
  const onlyPriv = await runTaskFile("keygen", ["--out", dir.path, "--bits", "512"]);
  assertEquals(onlyPriv.code, 1);
  assertStringIncludes(onlyPriv.stderr, `error: '${priv}' already exists: not overwritten.`);

  // --force replaces it, and the new file is 0600 even if the old one was readable by all.
  if (isPosix) await Deno.chmod(priv, 0o644);
  const forced = await runTaskFile("keygen", ["--out", dir.path, "--bits", "512", "--force"]);
  assertEquals(forced.code, 0, forced.stderr);
  const after = await Deno.readFile(priv);
  assertNotEquals(after, before);
  if (isPosix) assertEquals(Deno.statSync(priv).mode! & 0o777, 0o600);
  assertEquals(
    (await loadPublicKey(join(dir.path, "pub.key"))).modulus,
    (await loadSigningKey(priv)).modulus,
  );
  assertEquals((await Array.fromAsync(Deno.readDir(dir.path))).length, 2, "no temp file left");
});

Deno.test("keygen --bits 512 --json prints one object with the paths, fingerprint and MODULUS line", async () => {
  await using dir = await tempDir();
  const r = await runTaskFile("keygen", ["--out", dir.path, "--bits", "512", "--json"]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assertEquals(lines.length, 1, r.stdout);
  const result = JSON.parse(lines[0]!);
  const priv = join(dir.path, "priv.key");
  const key = await loadSigningKey(priv);
  assertEquals(result, {
    ok: true,
    privateKey: priv,
    publicKey: join(dir.path, "pub.key"),
    bits: 512,
    fingerprint: key.fingerprint,
    modulusDefine: modulusDefine(key.modulus),
  });
  assertEquals(modulusEscapes(result.modulusDefine), 64);
  assertSecretNotShown(await Deno.readTextFile(priv), r.stdout + r.stderr);
});

Deno.test("keygen writes into the folder of the configured key by default", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(
    join(dir.path, "ota.config.json"),
    JSON.stringify({ key: "secrets/priv.key" }),
  );
  const r = await runTaskFile("keygen", ["--bits", "512"], { cwd: dir.path });
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, `wrote ${join(dir.path, "secrets", "priv.key")}`);
  assertEquals((await loadSigningKey(join(dir.path, "secrets", "priv.key"))).bits, 512);
  if (isPosix) assertEquals(Deno.statSync(join(dir.path, "secrets")).mode! & 0o777, 0o700);
});

Deno.test("keygen refuses bad --bits with exit 2 and writes nothing", async () => {
  await using dir = await tempDir();
  for (const bits of ["1000", "8192", "256", "abc"]) {
    const r = await runTaskFile("keygen", ["--out", dir.path, "--bits", bits]);
    assertEquals(r.code, 2, `--bits ${bits}`);
    assertStringIncludes(r.stderr, "error: keygen: --bits expects");
  }
  assertEquals((await Array.fromAsync(Deno.readDir(dir.path))).length, 0);
});

Deno.test("parseKeygenArgs() defaults to 2048 bits and checks the size", () => {
  assertEquals(parseKeygenArgs([]), {
    out: undefined,
    bits: 2048,
    force: false,
    json: false,
    config: undefined,
  });
  assertEquals(parseKeygenArgs(["--out", "k", "--bits", "512", "--force", "--json"]).bits, 512);
  assertThrows(() => parseKeygenArgs(["somewhere"]), UsageError, "--out DIR");
  assertThrows(() => parseKeygenArgs(["--bits", "3000"]), UsageError, "in steps of 256");
});

Deno.test("checkKeyBits() accepts 512 to 4096 in steps of 256; every size leaves room for 256-byte blocks", () => {
  for (const bits of [512, 768, 1024, 1536, 2048, 3072, 4096]) {
    assertEquals(checkKeyBits(bits), bits);
  }
  for (const bits of [0, 384, 513, 1000, 4352, 8192, NaN]) {
    assertThrows(
      () => checkKeyBits(bits),
      UsageError,
      "--bits expects a key size from 512 to 4096",
    );
  }
  // The largest block whose datagram fits 1472 bytes (docs/device.md: 1024 with 2048 bits).
  assertEquals(largestBlock(64), 1024);
  assertEquals(largestBlock(256), 1024);
  assertEquals(largestBlock(384), 1024);
  assertEquals(largestBlock(512), 512);
});

Deno.test("keyPaths() uses --out, else the configured key's folder, else keys/", () => {
  assertEquals(keyPaths("out"), {
    privateKey: join("out", "priv.key"),
    publicKey: join("out", "pub.key"),
  });
  assertEquals(keyPaths(undefined, "/p/secrets/my.pem").privateKey, "/p/secrets/priv.key");
  assertEquals(keyPaths(undefined).publicKey, join("keys", "pub.key"));
});

Deno.test("renderKeygenReport() lists the files, the MODULUS line and the next steps", () => {
  const modulus = new Uint8Array(64).fill(0xab);
  const lines = renderKeygenReport({
    privateKey: "keys/priv.key",
    publicKey: "keys/pub.key",
    info: { modulus, bits: 512, fingerprint: "aa:bb" },
  });
  assertEquals(lines[1], "512-bit RSA, exponent 3, fingerprint aa:bb");
  assertEquals(lines[4], `#define MODULUS "${"\\xab".repeat(64)}"`);
  assertStringIncludes(lines.join("\n"), "deno task build-bootloader --key keys/priv.key");
  assertStringIncludes(lines.join("\n"), "blocks up to 1024 bytes fit one datagram");
});
