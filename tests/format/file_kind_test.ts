import { assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir, vector, vectorText } from "../_helpers.ts";
import { identifyFile } from "../../lib/format/file_kind.ts";
import { inspectImage } from "../../lib/format/inspect.ts";
import { verifySetup } from "../../lib/setup/verify.ts";
import { prepareDeploy } from "../../lib/deploy/board_push.ts";
import { UnsafeImageError } from "../../lib/errors.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { writeU16, writeU32 } from "../../lib/_bytes.ts";
import { makeSampleBootloader } from "../fixtures/sample_bootloader.ts";
import { join } from "node:path";

const KEY_512 = parsePrivateKey(vectorText("test-key-512.pem"));

/** An ESP32-family app image as esptool's elf2image writes it: header, extended header, segments. */
function esp32Image(chipId: number, entry: number): Uint8Array {
  const image = new Uint8Array(4096);
  image.set([0xe9, 2, 2, 0x20]);
  writeU32(image, 4, entry);
  image[8] = 0xee; // WP pin: disabled
  writeU16(image, 12, chipId);
  writeU16(image, 17, 0x63); // max chip revision
  image[23] = 1; // SHA-256 appended
  writeU32(image, 24, 0x3f400020); // first segment: DROM
  writeU32(image, 28, 0x100);
  return image;
}

/** An MCUboot image header (magic 0x96f3b83d), version 1.2.3+4, then code. */
function mcubootImage(): Uint8Array {
  const image = new Uint8Array(2048);
  writeU32(image, 0, 0x96f3b83d);
  writeU16(image, 8, 0x200); // header size
  writeU32(image, 12, 0x600); // image size
  image.set([1, 2], 20);
  writeU16(image, 22, 3);
  writeU32(image, 24, 4);
  return image;
}

const bootloader = makeSampleBootloader({ modulus: KEY_512.modulus });

Deno.test("identifyFile() names each kind of file and says what to do instead", () => {
  const cases: [Uint8Array, string, string, string][] = [
    [new Uint8Array(0), "empty", "an empty file (0 bytes)", "deno task build-ota"],
    [
      Uint8Array.of(0xe9, 3, 0),
      "truncated",
      "a truncated file: 3 bytes, less than the 8-byte image header",
      "copy it again",
    ],
    [
      vector("fw-10000.key512.block256.ota"),
      "canned",
      "a signed .ota file (made by 'deno task sign'), not a firmware image",
      "'deno task deploy FILE' sends it as it is",
    ],
    [
      bootloader,
      "yaota8266",
      "the yaota8266 bootloader (boot8266 + ota-server), not a firmware image",
      "this is the bootloader: flash it at 0x0 with 'deno task flash'",
    ],
    [
      esp32Image(0, 0x40081234),
      "esp32",
      "an ESP32 application image (extended header, chip id 0, entry 0x40081234), not an ESP8266 image",
      "yaota8266 runs on the ESP8266 only",
    ],
    [
      esp32Image(9, 0x403752f4),
      "esp32",
      "an ESP32-S3 application image (extended header, chip id 9, entry 0x403752f4), not an ESP8266 image",
      "deno task build-ota",
    ],
    [
      mcubootImage(),
      "mcuboot",
      "an MCUboot image (magic 0x96f3b83d, as Zephyr and nRF Connect SDK builds use, version 1.2.3+4, 1536 bytes of code)",
      "it cannot run on an ESP8266 with yaota8266",
    ],
    [
      Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0),
      "elf",
      "an ELF file (a linker output such as firmware.elf), not a flash image",
      "use the firmware-ota.bin made from it",
    ],
    [
      new TextEncoder().encode("<!DOCTYPE html>\n<html>...</html>\n"),
      "text",
      "a text file (it starts '<!DOCTYPE html>'), not a firmware image",
      "deno task build-ota",
    ],
    [
      vector("fw-10000.bin"),
      "unknown",
      "not a firmware image (byte 0 is 0xc, not the ESP8266 image magic 0xe9)",
      "deno task build-ota",
    ],
    [makeSampleFirmware(), "esp8266", "an ESP8266 image", ""],
  ];
  for (const [bytes, id, name, next] of cases) {
    const kind = identifyFile(bytes);
    assertEquals([kind.id, kind.name], [id, name]);
    assertStringIncludes(kind.next, next);
  }
});

Deno.test("identifyFile() takes neither a real MicroPython image nor a standard build for the bootloader", () => {
  for (const linkBase of [0x40245000, 0x40209000]) {
    assertEquals(identifyFile(makeSampleFirmware({ linkBase, size: 200_000 })).id, "esp8266");
  }
  assertEquals(
    identifyFile(makeSampleBootloader({ modulus: KEY_512.modulus, rtcTrigger: false })).id,
    "yaota8266",
  );
});

Deno.test("inspectImage() of a foreign file reports one failed 'file' check, no size 'ok' and no link guess", () => {
  for (const bytes of [new Uint8Array(0), esp32Image(0, 0x40080000), mcubootImage(), bootloader]) {
    const report = inspectImage(bytes);
    assertEquals(report.safe, false);
    assertEquals(report.checks.map((c) => [c.name, c.ok]), [["file", false]]);
    assertEquals(report.link, undefined);
  }
});

/** Runs `task` with FILE as its image, in a folder that has a key, and returns the result. */
async function runOn(task: string, bytes: Uint8Array, args: (file: string) => string[]) {
  await using dir = await tempDir();
  const file = join(dir.path, "input.bin");
  await Deno.writeFile(file, bytes);
  await Deno.writeTextFile(join(dir.path, "key.pem"), vectorText("test-key-512.pem"));
  return await runTaskFile(task, args(file), { cwd: dir.path });
}

Deno.test("inspect task names an empty file, an ESP32 image, an MCUboot image and the bootloader (exit 3)", async () => {
  const empty = await runOn("inspect", new Uint8Array(0), (f) => [f]);
  assertEquals(empty.code, 3);
  assertStringIncludes(empty.stdout, ": 0 bytes (0 B)\n  FAIL  file  an empty file (0 bytes): ");
  assertEquals(empty.stdout.includes("byte 0 is"), false, empty.stdout);
  assertEquals(empty.stdout.includes(" ok "), false, "nothing about an empty file is ok");
  assertStringIncludes(empty.stderr, "input.bin is an empty file (0 bytes): was the build");

  const esp32 = await runOn("inspect", esp32Image(5, 0x40380000), (f) => [f]);
  assertEquals(esp32.code, 3);
  assertStringIncludes(
    esp32.stderr,
    "input.bin is an ESP32-C3 application image (extended header, chip id 5, entry 0x40380000), " +
      "not an ESP8266 image: yaota8266 runs on the ESP8266 only",
  );
  const mcuboot = await runOn("inspect", mcubootImage(), (f) => [f, "--json"]);
  assertEquals(mcuboot.code, 3);
  assertEquals(JSON.parse(mcuboot.stdout).fileKind.id, "mcuboot");

  const boot = await runOn("inspect", bootloader, (f) => [f, "--key", "key.pem"]);
  assertEquals(boot.code, 3);
  // The next step carries this run's --key (flash checks the bootloader holds it).
  assertStringIncludes(
    boot.stderr,
    "input.bin is the yaota8266 bootloader (boot8266 + ota-server), not a firmware image: " +
      "this is the bootloader: flash it at 0x0 with 'deno task flash --key key.pem'",
  );
  assertStringIncludes(
    boot.stdout,
    "  software trigger: yes, boot8266 enters OTA mode on the RTC magic",
  );
  assertStringIncludes(boot.stdout, "  built for app offset: 0x3c000\n");
  assertStringIncludes(
    boot.stdout,
    `  built for your key key.pem (${KEY_512.fingerprint}) (modulus at 0x5394)`,
  );
});

Deno.test("sign names a bootloader, an ESP32 image and a .ota file given as the firmware", async () => {
  const boot = await runOn("sign", bootloader, (f) => [f, "--key", "key.pem"]);
  assertEquals(boot.code, 3);
  assertStringIncludes(boot.stderr, "file: the yaota8266 bootloader (boot8266 + ota-server)");
  assertStringIncludes(boot.stderr, "flash it at 0x0 with 'deno task flash --key ");
  const esp32 = await runOn("sign", esp32Image(0, 0x40080400), (f) => [f, "--key", "key.pem"]);
  assertEquals(esp32.code, 3);
  assertStringIncludes(esp32.stderr, "file: an ESP32 application image");
  const canned = await runOn(
    "sign",
    vector("fw-10000.key512.block256.ota"),
    (f) => [f, "--key", "key.pem"],
  );
  assertEquals(canned.code, 1);
  assertStringIncludes(canned.stderr, "is already a signed canned .ota file");
});

Deno.test("prepareDeploy() refuses the bootloader and an MCUboot image by name; a .ota file is still accepted", async () => {
  await using dir = await tempDir();
  const request = (file: string) => ({
    host: "127.0.0.1",
    port: 8266,
    file,
    keyPath: join(dir.path, "key.pem"),
    block: "auto" as const,
    pace: false,
    timeoutMs: 1000,
    force: false,
    bootCheck: false,
    appOffset: 0x3c000,
    flashSize: 0x100000,
  });
  await Deno.writeTextFile(join(dir.path, "key.pem"), vectorText("test-key-512.pem"));
  await Deno.writeFile(join(dir.path, "yaota8266.bin"), bootloader);
  await assertRejects(
    () => prepareDeploy(request(join(dir.path, "yaota8266.bin"))),
    UnsafeImageError,
    "(file: the yaota8266 bootloader (boot8266 + ota-server), not a firmware image: this is the " +
      "bootloader: flash it at 0x0 with 'deno task flash')",
  );
  await Deno.writeFile(join(dir.path, "zephyr.bin"), mcubootImage());
  await assertRejects(
    () => prepareDeploy(request(join(dir.path, "zephyr.bin"))),
    UnsafeImageError,
    "file: an MCUboot image (magic 0x96f3b83d",
  );
  // A signed .ota file of a real image: deploy takes it as it is, after checking the image inside.
  const signed = await runOn("sign", makeSampleFirmware({ size: 48 * 1024 }), (f) => [
    f,
    "--key",
    "key.pem",
    "--out",
    join(dir.path, "fw.ota"),
  ]);
  assertEquals(signed.code, 0, signed.stderr);
  const prepared = await prepareDeploy(request(join(dir.path, "fw.ota")));
  assertEquals(prepared.kind, "canned");
});

Deno.test("verifySetup() names an MCUboot image given as the firmware, without 'rebuild it'", () => {
  const report = verifySetup({ firmware: { path: "zephyr.bin", bytes: mcubootImage() } });
  const check = report.checks.find((c) => c.name === "firmware")!;
  assertEquals(check.result, "failed");
  assertStringIncludes(
    check.detail,
    "zephyr.bin is not a safe OTA image for app offset 0x3c000: file: an MCUboot image (magic 0x96f3b83d",
  );
  assertEquals(check.detail.includes("Rebuild it"), false, check.detail);
});
