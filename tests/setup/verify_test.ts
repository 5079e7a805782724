import forge from "node-forge";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir, vectorText } from "../_helpers.ts";
import { type VerifyInput, verifySetup } from "../../lib/setup/verify.ts";
import { modulusCString, parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { seededRandom } from "../../lib/_random.ts";
import { parseVerifyArgs } from "../../tasks/verify.ts";
import { makeSampleBootloader } from "../fixtures/sample_bootloader.ts";

const PEM_512 = vectorText("test-key-512.pem");
const PEM_2048 = vectorText("test-key-2048.pem");
const KEY_512 = parsePrivateKey(PEM_512);
const KEY_2048 = parsePrivateKey(PEM_2048);

function publicPem(privatePem: string): string {
  const key = forge.pki.privateKeyFromPem(privatePem);
  return forge.pki.publicKeyToPem(forge.pki.setRsaPublicKey(key.n, key.e));
}

/** A stand-in yaota8266.bin: seeded noise, the ESP image magic, the modulus at `at`. */
function fakeBootloader(modulus: Uint8Array, at = 0x2345, size = 0x3a000): Uint8Array {
  const random = seededRandom(7);
  const bytes = new Uint8Array(size).map(() => Math.floor(random() * 256));
  bytes[0] = 0xe9;
  bytes.set(modulus, at);
  return bytes;
}

function configH(modulus: Uint8Array, appOffset = "0x3c000"): string {
  return `#define MAIN_APP_OFFSET ${appOffset}\n#define BAUD_RATE 115200\n` +
    `#define MODULUS ${modulusCString(modulus)}\n#define PKT_WAIT_MS 10000\n`;
}

const firmware = makeSampleFirmware();
const standardBuild = makeSampleFirmware({ linkBase: 0x40209000 });

function allGood(): VerifyInput {
  return {
    key: { path: "keys/priv.key", text: PEM_512 },
    publicKey: { path: "keys/pub.key", text: publicPem(PEM_512) },
    configH: { path: "config.h", text: configH(KEY_512.modulus) },
    bootloader: {
      path: "dist/yaota8266.bin",
      bytes: makeSampleBootloader({ modulus: KEY_512.modulus }),
    },
    firmware: { path: "dist/firmware-ota.bin", bytes: firmware },
  };
}

function check(input: VerifyInput, name: string) {
  const found = verifySetup(input).checks.find((c) => c.name === name);
  assert(found, `no ${name} check`);
  return found;
}

Deno.test("verifySetup() passes a key, its public key, config.h, bootloader and firmware that match", () => {
  const report = verifySetup(allGood());
  assertEquals(report.checks.map((c) => [c.name, c.result]), [
    ["key", "passed"],
    ["public key", "passed"],
    ["config.h", "passed"],
    ["bootloader", "passed"],
    ["firmware", "passed"],
  ]);
  assertEquals(report.ok, true);
  assertEquals(
    report.checks[3]?.detail,
    `dist/yaota8266.bin (131072 bytes) is built for your key ${KEY_512.fingerprint} (modulus at 0x5394); ` +
      "software trigger (RTC magic): yes; BOOT button check: yes; built for app offset 0x3c000",
  );
  assertEquals(report.checks[3]?.warning, undefined);
  assertEquals(report.bootloader?.softwareTrigger, true);
});

Deno.test("verifySetup() names the key a bootloader was built for and says what to do", () => {
  const input = {
    ...allGood(),
    bootloader: { path: "dist/yaota8266.bin", bytes: fakeBootloader(KEY_2048.modulus) },
    otherKeys: [{ path: "keys/old.key", text: PEM_2048 }],
  };
  const bootloader = check(input, "bootloader");
  assertEquals(bootloader.result, "failed");
  assertEquals(
    bootloader.detail,
    `this bootloader was built for key ${KEY_2048.fingerprint} (keys/old.key), yours is ${KEY_512.fingerprint}: ` +
      `rebuild it with 'deno task build-bootloader' and flash it over serial ('deno task flash'), ` +
      `or use the key it was built with (--key keys/old.key)`,
  );
  assertEquals(verifySetup(input).ok, false);
});

Deno.test("verifySetup() says a bootloader holds another key when it knows no key that fits", () => {
  const input = {
    ...allGood(),
    bootloader: { path: "y.bin", bytes: fakeBootloader(KEY_2048.modulus) },
  };
  const bootloader = check(input, "bootloader");
  assertEquals(bootloader.result, "failed");
  assertStringIncludes(
    bootloader.detail,
    `this bootloader was built for another key: y.bin does not hold the modulus of yours (${KEY_512.fingerprint})`,
  );
  assertStringIncludes(bootloader.detail, "Rebuild it with 'deno task build-bootloader'");
});

Deno.test("verifySetup() reports a config.h MODULUS for another key, naming it", () => {
  const input = {
    ...allGood(),
    configH: { path: "yaota8266/config.h", text: configH(KEY_2048.modulus) },
    otherKeys: [{ path: "keys/old.key", text: PEM_2048 }],
  };
  const c = check(input, "config.h");
  assertEquals(c.result, "failed");
  assertEquals(
    c.detail,
    `yaota8266/config.h has the MODULUS of key ${KEY_2048.fingerprint} (keys/old.key), yours is ${KEY_512.fingerprint}: ` +
      `a bootloader built from it would ignore your updates. Regenerate it with 'deno task build-bootloader' ` +
      `(it writes MODULUS from your key)`,
  );
});

Deno.test("verifySetup() names config.h as the source of a bootloader's key", () => {
  const input = {
    ...allGood(),
    configH: { path: "config.h", text: configH(KEY_2048.modulus) },
    bootloader: { path: "b.bin", bytes: fakeBootloader(KEY_2048.modulus) },
  };
  assertStringIncludes(
    check(input, "bootloader").detail,
    `this bootloader was built for key ${KEY_2048.fingerprint} (the MODULUS in config.h), yours is ${KEY_512.fingerprint}`,
  );
});

Deno.test("verifySetup() catches a MAIN_APP_OFFSET that differs from the app offset", () => {
  const input = {
    ...allGood(),
    configH: { path: "config.h", text: configH(KEY_512.modulus, "0x40000") },
  };
  const c = check(input, "config.h");
  assertEquals(c.result, "failed");
  assertStringIncludes(
    c.detail,
    "config.h sets MAIN_APP_OFFSET 0x40000, but the app offset here is 0x3c000",
  );
});

Deno.test("verifySetup() reports a pub.key that is not the private key's public half", () => {
  const input = { ...allGood(), publicKey: { path: "keys/pub.key", text: publicPem(PEM_2048) } };
  const c = check(input, "public key");
  assertEquals(c.result, "failed");
  assertStringIncludes(
    c.detail,
    `keys/pub.key (key ${KEY_2048.fingerprint}) is not the public half of keys/priv.key (key ${KEY_512.fingerprint})`,
  );
  assertStringIncludes(c.detail, "openssl rsa -in keys/priv.key -pubout -out keys/pub.key");
});

Deno.test("verifySetup() refuses a standard (non-OTA) build and says to build the OTA one", () => {
  const input = { ...allGood(), firmware: { path: "fw.bin", bytes: standardBuild } };
  const c = check(input, "firmware");
  assertEquals(c.result, "failed");
  assertStringIncludes(
    c.detail,
    "fw.bin is not a safe OTA image for app offset 0x3c000: link address:",
  );
  assertStringIncludes(c.detail, "a standard (non-OTA) build");
  assertStringIncludes(c.detail, "deno task build-ota");
});

Deno.test("verifySetup() refuses a firmware whose MD5 trailer is broken", () => {
  const broken = firmware.slice();
  broken[0x9100] = broken[0x9100]! ^ 1;
  const c = check({ ...allGood(), firmware: { path: "fw.bin", bytes: broken } }, "firmware");
  assertEquals(c.result, "failed");
  assertStringIncludes(c.detail, "md5: MD5 trailer");
  assertStringIncludes(c.detail, "Rebuild it with 'deno task build-ota'");
});

Deno.test("verifySetup() checks a bootloader against a public key given as the key", () => {
  const input: VerifyInput = {
    key: { path: "pub.pem", text: publicPem(PEM_512) },
    bootloader: { path: "b.bin", bytes: fakeBootloader(KEY_512.modulus, 0x1000) },
  };
  const report = verifySetup(input);
  assertEquals(report.ok, true);
  assertStringIncludes(report.checks[0]!.detail, "public key, exponent 3");
  assertStringIncludes(check(input, "bootloader").detail, "(modulus at 0x1000)");
});

Deno.test("verifySetup() reports a key with the wrong exponent", () => {
  const e65537 = forge.pki.rsa.generateKeyPair({ bits: 512, e: 0x10001 });
  const c = check(
    { key: { path: "k.pem", text: forge.pki.privateKeyToPem(e65537.privateKey) } },
    "key",
  );
  assertEquals(c.result, "failed");
  assertStringIncludes(c.detail, "k.pem: the public exponent is 65537");
});

Deno.test("verifySetup() skips checks whose input is absent and still passes", () => {
  const report = verifySetup({
    key: { path: "keys/priv.key", text: PEM_512 },
    skipped: { bootloader: "no dist/yaota8266.bin" },
  });
  assertEquals(report.ok, true);
  assertEquals(report.checks.map((c) => [c.name, c.result]), [
    ["key", "passed"],
    ["public key", "skipped"],
    ["config.h", "skipped"],
    ["bootloader", "skipped"],
    ["firmware", "skipped"],
  ]);
  assertEquals(report.counts, { passed: 1, failed: 0, skipped: 4 });
  assertEquals(report.checks[3]?.detail, "no dist/yaota8266.bin");
});

Deno.test("parseVerifyArgs() reads the files and the app offset", () => {
  assertEquals(
    parseVerifyArgs(["--key", "k", "--config-h", "c.h", "--app-offset", "0x40000", "--json"]),
    {
      paths: { keyPath: "k", bootloader: undefined, configH: "c.h", firmware: undefined },
      appOffset: 0x40000,
      json: true,
      config: undefined,
    },
  );
});

async function project(files: Record<string, string | Uint8Array>) {
  const dir = await tempDir();
  for (const [name, content] of Object.entries(files)) {
    const path = `${dir.path}/${name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(path, content);
    else await Deno.writeFile(path, content);
  }
  return dir;
}

Deno.test("verify task prints one ok line per check and exits 0 when all match", async () => {
  await using dir = await project({
    "keys/priv.key": PEM_512,
    "keys/pub.key": publicPem(PEM_512),
    "yaota8266/config.h": configH(KEY_512.modulus),
    "dist/yaota8266.bin": makeSampleBootloader({ modulus: KEY_512.modulus }),
    "dist/firmware-ota.bin": firmware,
  });
  const r = await runTaskFile("verify", ["--config-h", "yaota8266/config.h"], { cwd: dir.path });
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assertEquals(lines.map((l) => l.split(/\s+/)[0]), ["ok", "ok", "ok", "ok", "ok"]);
  assertStringIncludes(lines[0]!, `ok   key         keys/priv.key: 512-bit RSA private key`);
  assertStringIncludes(r.stderr, "all 5 checks passed");
});

Deno.test("verify task --json names the key a bootloader was built for and exits 1", async () => {
  await using dir = await project({
    "keys/priv.key": PEM_512,
    "keys/old.key": PEM_2048,
    "dist/yaota8266.bin": fakeBootloader(KEY_2048.modulus),
    "dist/firmware-ota.bin": standardBuild,
  });
  const r = await runTaskFile("verify", ["--json"], { cwd: dir.path });
  assertEquals(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout);
  assertEquals(report.ok, false);
  assertEquals(
    report.checks.map((c: { name: string; result: string }) => [c.name, c.result]),
    [
      ["key", "passed"],
      ["public key", "skipped"],
      ["config.h", "skipped"],
      ["bootloader", "failed"],
      ["firmware", "failed"],
    ],
  );
  assertStringIncludes(
    report.checks[3].detail,
    `this bootloader was built for key ${KEY_2048.fingerprint} (keys/old.key), yours is ${KEY_512.fingerprint}`,
  );
});

Deno.test("verify task skips absent default files but fails on a missing named one", async () => {
  await using dir = await project({ "keys/priv.key": PEM_512 });
  const skipped = await runTaskFile("verify", [], { cwd: dir.path });
  assertEquals(skipped.code, 0, skipped.stderr);
  assertStringIncludes(skipped.stdout, "skip bootloader  no dist/yaota8266.bin");
  const missing = await runTaskFile("verify", ["--bootloader", "nope.bin"], { cwd: dir.path });
  assertEquals(missing.code, 1);
  assertStringIncludes(missing.stderr, "error: no bootloader at 'nope.bin'");
});

Deno.test("verify task fails when there is nothing to check", async () => {
  await using dir = await tempDir();
  const r = await runTaskFile("verify", [], { cwd: dir.path });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stdout, "FAIL inputs      nothing to verify");
});
