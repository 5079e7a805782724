import { assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { runTaskFile, tempDir, vector, vectorText } from "../_helpers.ts";
import { decodeCanned } from "../../lib/format/canned.ts";
import { UsageError } from "../../lib/errors.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { checkBlockFits, defaultOtaPath } from "../../lib/setup/sign.ts";
import { parseSignArgs } from "../../tasks/sign.ts";
import { createPublicKey } from "node:crypto";
import { join } from "node:path";

/** A temp dir holding fw-10000.bin and both test keys (mode 0600), as a user's project would. */
async function project() {
  const dir = await tempDir();
  await Deno.writeFile(join(dir.path, "fw-10000.bin"), vector("fw-10000.bin"));
  for (const bits of [512, 2048]) {
    const path = join(dir.path, `key${bits}.pem`);
    await Deno.writeTextFile(path, vectorText(`test-key-${bits}.pem`));
    // As keygen writes it: no warning about an open key.
    if (Deno.build.os !== "windows") await Deno.chmod(path, 0o600);
  }
  return dir;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

for (const [bits, block] of [[512, 256], [2048, 256], [512, 1024]] as const) {
  const name = `fw-10000.key${bits}.block${block}.ota`;
  Deno.test(`sign --force reproduces ${name} byte for byte, warning that the image is unsafe`, async () => {
    await using dir = await project();
    const out = join(dir.path, name);
    const r = await runTaskFile("sign", [
      "fw-10000.bin",
      "--key",
      `key${bits}.pem`,
      "--block",
      String(block),
      "--out",
      out,
      "--force",
    ], { cwd: dir.path });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await Deno.readFile(out), vector(name));
    // fw-10000.bin is random bytes, not an image: signing it needs --force, loudly.
    assertStringIncludes(
      r.stderr,
      "warning: --force: signing fw-10000.bin although it is NOT safe to push to app offset 0x3c000: file: not a firmware image",
    );
    const packets = Math.ceil(10000 / block);
    assertStringIncludes(
      r.stdout,
      `wrote ${out}: ${packets} packets of up to ${block} bytes + 3 end packets, ` +
        `${vector(name).length} bytes`,
    );
    const key = parsePrivateKey(vectorText(`test-key-${bits}.pem`));
    assertStringIncludes(
      r.stdout,
      `key key${bits}.pem: ${bits}-bit, fingerprint ${key.fingerprint}`,
    );
  });
}

Deno.test("sign writes FIRMWARE.ota beside a .bin by default", async () => {
  await using dir = await project();
  const r = await runTaskFile("sign", ["fw-10000.bin", "--key", "key512.pem", "--force"], {
    cwd: dir.path,
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(
    await Deno.readFile(join(dir.path, "fw-10000.ota")),
    vector("fw-10000.key512.block256.ota"),
  );
  assertStringIncludes(r.stdout, "wrote fw-10000.ota: 40 packets");
});

Deno.test("sign refuses an unsafe image without --force (exit 3) and writes nothing", async () => {
  await using dir = await project();
  const r = await runTaskFile("sign", ["fw-10000.bin", "--key", "key512.pem"], { cwd: dir.path });
  assertEquals(r.code, 3);
  assertStringIncludes(
    r.stderr,
    "error: fw-10000.bin is not safe to push to app offset 0x3c000: file: not a firmware image " +
      "(byte 0 is 0xc, not the ESP8266 image magic 0xe9): build the ESP8266 OTA image with " +
      "'deno task build-ota'",
  );
  assertStringIncludes(
    r.stderr,
    "Nothing was signed. See 'deno task inspect --key key512.pem fw-10000.bin'; sign it anyway with --force.",
  );
  assertEquals(r.stdout, "");
  assertEquals(await exists(join(dir.path, "fw-10000.ota")), false);

  // A standard (non-OTA) build passes boot8266's MD5 check and boot-loops: refused too.
  await Deno.writeFile(
    join(dir.path, "combined.bin"),
    makeSampleFirmware({ linkBase: 0x40209000 }),
  );
  const standard = await runTaskFile("sign", ["combined.bin", "--key", "key512.pem"], {
    cwd: dir.path,
  });
  assertEquals(standard.code, 3);
  assertStringIncludes(
    standard.stderr,
    "link address: a standard (non-OTA) build, linked at 0x40209000: it would boot-loop",
  );
  assertEquals(await exists(join(dir.path, "combined.ota")), false);
});

Deno.test("sign signs a safe image without --force or warning, and the file decodes back to it", async () => {
  await using dir = await project();
  const image = makeSampleFirmware({ seed: 7 });
  await Deno.writeFile(join(dir.path, "firmware-ota.bin"), image);
  const r = await runTaskFile("sign", [
    "firmware-ota.bin",
    "--key",
    "key2048.pem",
    "--block",
    "1024",
  ], {
    cwd: dir.path,
  });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stderr.includes("warning"), false, r.stderr);
  const canned = await Deno.readFile(join(dir.path, "firmware-ota.ota"));
  const file = decodeCanned(canned);
  assertEquals(file.payload, image);
  assertEquals(file.block, 1024);
  assertStringIncludes(r.stdout, "safe to push to app offset 0x3c000");
  assertStringIncludes(r.stdout, `${Math.ceil(image.length / 1024)} packets of up to 1024 bytes`);
  assertStringIncludes(r.stdout, "signed in ");
});

Deno.test("sign --json prints one object with what was written", async () => {
  await using dir = await project();
  const image = makeSampleFirmware({ seed: 8, appOffset: 0x40000 });
  await Deno.writeFile(join(dir.path, "fw.bin"), image);
  const r = await runTaskFile("sign", [
    "fw.bin",
    "--key",
    "key512.pem",
    "--app-offset",
    "0x40000",
    "--block",
    "512",
    "--json",
  ], { cwd: dir.path });
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assertEquals(lines.length, 1, r.stdout);
  const result = JSON.parse(lines[0]!);
  const canned = await Deno.readFile(join(dir.path, "fw.ota"));
  assertEquals(result.ok, true);
  assertEquals(result.out, "fw.ota");
  assertEquals(result.packets, Math.ceil(image.length / 512));
  assertEquals(result.endPackets, 3);
  assertEquals(result.bytes, canned.length);
  assertEquals(result.block, 512);
  assertEquals(result.datagramBytes, 4 + 8 + 512 + 8 + 64);
  assertEquals(result.bits, 512);
  assertEquals(result.fingerprint, parsePrivateKey(vectorText("test-key-512.pem")).fingerprint);
  assertEquals(result.appOffset, "0x40000");
  assertEquals(result.forced, false);
  assertEquals(
    result.sha1,
    Array.from(canned.subarray(canned.length - 20), (b) => b.toString(16).padStart(2, "0")).join(
      "",
    ),
  );
});

Deno.test("sign refuses a bad block size with exit 2", async () => {
  await using dir = await project();
  const bad = await runTaskFile("sign", [
    "fw-10000.bin",
    "--key",
    "key512.pem",
    "--block",
    "300",
    "--force",
  ], {
    cwd: dir.path,
  });
  assertEquals(bad.code, 2);
  assertStringIncludes(
    bad.stderr,
    "error: sign: --block expects one of 256, 512, 1024, 2048, 4096 (it must divide the " +
      "device's 4096-byte buffer), got '300'",
  );
  // Divides 4096 but does not fit one datagram with a 2048-bit key.
  const big = await runTaskFile("sign", [
    "fw-10000.bin",
    "--key",
    "key2048.pem",
    "--block",
    "2048",
    "--force",
  ], {
    cwd: dir.path,
  });
  assertEquals(big.code, 2);
  assertStringIncludes(
    big.stderr,
    "error: sign: --block 2048 with a 2048-bit key makes 2324-byte datagrams, over the 1472 " +
      "bytes of one unfragmented UDP payload",
  );
  assertStringIncludes(big.stderr, "Use --block 1024 or smaller.");
  assertEquals(await exists(join(dir.path, "fw-10000.ota")), false);
});

Deno.test("sign given a public key says signing needs the private one", async () => {
  await using dir = await project();
  const pub = createPublicKey(vectorText("test-key-512.pem")).export({
    type: "spki",
    format: "pem",
  });
  await Deno.writeTextFile(join(dir.path, "pub.key"), pub as string);
  const r = await runTaskFile("sign", ["fw-10000.bin", "--key", "pub.key", "--force"], {
    cwd: dir.path,
  });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "error: pub.key: not an RSA private key in PEM form");
  assertStringIncludes(r.stderr, "This is a public key: signing needs the private one (priv.key).");
  const missing = await runTaskFile("sign", ["fw-10000.bin", "--force"], { cwd: dir.path });
  assertEquals(missing.code, 1);
  assertStringIncludes(
    missing.stderr,
    "error: no key at 'keys/priv.key'. Create one with 'deno task keygen'",
  );
});

Deno.test("sign refuses to sign a canned .ota file again", async () => {
  await using dir = await project();
  await Deno.writeFile(join(dir.path, "x.ota"), vector("fw-10000.key512.block256.ota"));
  const r = await runTaskFile("sign", ["x.ota", "--key", "key512.pem", "--force"], {
    cwd: dir.path,
  });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "error: 'x.ota' is already a signed canned .ota file");
});

Deno.test("parseSignArgs() reads the options and refuses bad ones", () => {
  assertEquals(parseSignArgs(["fw.bin"]), {
    firmware: "fw.bin",
    keyPath: undefined,
    block: 256,
    out: undefined,
    appOffset: undefined,
    force: false,
    json: false,
    config: undefined,
  });
  const all = parseSignArgs([
    "fw.bin",
    "--key",
    "k.pem",
    "--block",
    "512",
    "--out",
    "o.ota",
    "--app-offset",
    "0x40000",
    "--force",
    "--json",
  ]);
  assertEquals([all.keyPath, all.block, all.out, all.appOffset, all.force, all.json], [
    "k.pem",
    512,
    "o.ota",
    0x40000,
    true,
    true,
  ]);
  assertThrows(() => parseSignArgs([]), UsageError, "name the firmware image: sign FIRMWARE");
  assertThrows(() => parseSignArgs(["a.bin", "b.bin"]), UsageError, "one FIRMWARE only");
  assertThrows(() => parseSignArgs(["fw.bin", "--block", "128"]), UsageError, "got '128'");
  assertThrows(
    () => parseSignArgs(["fw.bin", "--app-offset", "0x3c001"]),
    UsageError,
    "4 KiB-aligned",
  );
  assertThrows(
    () => parseSignArgs(["fw.bin", "--out", "./fw.bin"]),
    UsageError,
    "is the firmware itself",
  );
});

Deno.test("defaultOtaPath() replaces a .bin extension, else appends .ota", () => {
  assertEquals(defaultOtaPath("dist/firmware-ota.bin"), "dist/firmware-ota.ota");
  assertEquals(defaultOtaPath("FW.BIN"), "FW.ota");
  assertEquals(defaultOtaPath("build.d/firmware"), "build.d/firmware.ota");
  assertEquals(defaultOtaPath("fw.img"), "fw.img.ota");
});

Deno.test("checkBlockFits() allows 1024-byte blocks with a 2048-bit key, not 2048", () => {
  checkBlockFits(1024, 256);
  checkBlockFits(512, 512);
  assertThrows(() => checkBlockFits(2048, 256), UsageError, "2324-byte datagrams");
  assertThrows(() => checkBlockFits(1024, 512), UsageError, "Use --block 512 or smaller.");
  assertThrows(() => checkBlockFits(4096, 64), UsageError, "Use --block 1024 or smaller.");
});
