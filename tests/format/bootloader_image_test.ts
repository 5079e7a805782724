import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir, vectorText } from "../_helpers.ts";
import { analyseBootloader, looksLikeYaota8266 } from "../../lib/format/bootloader_image.ts";
import { verifySetup } from "../../lib/setup/verify.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { seededRandom } from "../../lib/_random.ts";
import { indexOfBytes, writeU32 } from "../../lib/_bytes.ts";
import { makeSampleBootloader } from "../fixtures/sample_bootloader.ts";
import { join } from "node:path";

const PEM_512 = vectorText("test-key-512.pem");
const KEY_512 = parsePrivateKey(PEM_512);
const KEY_2048 = parsePrivateKey(vectorText("test-key-2048.pem"));
const keys = [
  { label: "your key", modulus: KEY_512.modulus },
  { label: "keys/old.key", modulus: KEY_2048.modulus },
];
const YAOTAOTA = new TextEncoder().encode("yaotaota");

Deno.test("analyseBootloader() finds the software trigger, the button check, the app offset and the key", () => {
  const bytes = makeSampleBootloader({ modulus: KEY_2048.modulus, appOffset: 0x40000 });
  const facts = analyseBootloader(bytes, keys);
  assertEquals(facts.recognised, true);
  assertEquals(facts.otaServerAt, 0x1000);
  assertEquals(facts.softwareTrigger, true);
  const at = indexOfBytes(bytes, YAOTAOTA);
  assert(at > 0 && at < 0x1000, "the constants sit in boot8266's literal pool");
  assertEquals(facts.triggerEvidence, [
    `the RTC magic constants 0x746f6179, 0x61746f61 ('yaotaota') at 0x${at.toString(16)}`,
    `the log line 'OTA mode: magic word in RTC memory' at 0x${
      indexOfBytes(bytes, new TextEncoder().encode("OTA mode: magic")).toString(16)
    }`,
  ]);
  assertEquals(facts.buttonCheck, true);
  assertEquals(facts.appOffset, 0x40000);
  assertEquals(facts.key, { label: "keys/old.key", at: indexOfBytes(bytes, KEY_2048.modulus) });
});

Deno.test("analyseBootloader() says 'no software trigger' for an upstream boot8266", () => {
  const facts = analyseBootloader(
    makeSampleBootloader({ modulus: KEY_512.modulus, rtcTrigger: false }),
    keys,
  );
  assertEquals([facts.recognised, facts.softwareTrigger, facts.triggerEvidence], [true, false, []]);
  assertEquals([facts.buttonCheck, facts.appOffset, facts.key?.label], [true, 0x3c000, "your key"]);
});

Deno.test("analyseBootloader() knows the trigger by the two constants apart, or by its log line alone", () => {
  const upstream = makeSampleBootloader({ modulus: KEY_512.modulus, rtcTrigger: false });
  // The two words in one literal pool, not next to each other.
  const apart = upstream.slice();
  writeU32(apart, 0x100, 0x746f6179);
  writeU32(apart, 0x108, 0x61746f61);
  const facts = analyseBootloader(apart);
  assertEquals(facts.softwareTrigger, true);
  assertEquals(facts.triggerEvidence, [
    "the RTC magic constants 0x746f6179 and 0x61746f61 near 0x100",
  ]);
  // Far apart they are not one check.
  const far = upstream.slice();
  writeU32(far, 0x100, 0x746f6179);
  writeU32(far, 0x4000, 0x61746f61);
  assertEquals(analyseBootloader(far).softwareTrigger, false);
  // A build whose constants we would miss still says so in its log.
  const logged = upstream.slice();
  logged.set(new TextEncoder().encode("\0Magic word in RTC memory: entering OTA\0"), 0x8ff);
  assertEquals(analyseBootloader(logged).triggerEvidence, [
    "the log line 'Magic word in RTC memory: entering OTA' at 0x900",
  ]);
});

Deno.test("analyseBootloader() of a blob it cannot take apart still looks for the constants", () => {
  const random = seededRandom(3);
  const blob = new Uint8Array(0x8000).map(() => Math.floor(random() * 256));
  blob[0] = 0xe9;
  blob.set(KEY_512.modulus, 0x5123);
  const plain = analyseBootloader(blob, keys);
  assertEquals([plain.recognised, plain.softwareTrigger, plain.appOffset], [
    false,
    false,
    undefined,
  ]);
  assertEquals(plain.key, { label: "your key", at: 0x5123 });
  blob.set(YAOTAOTA, 0x6000);
  assertEquals(analyseBootloader(blob).softwareTrigger, true);
});

Deno.test("looksLikeYaota8266() is false for MicroPython images", () => {
  assertEquals(looksLikeYaota8266(makeSampleFirmware()), false);
  assertEquals(looksLikeYaota8266(makeSampleFirmware({ linkBase: 0x40209000 })), false);
  assertEquals(looksLikeYaota8266(makeSampleBootloader({ modulus: KEY_512.modulus })), true);
});

const input = (bootloader: Uint8Array) => ({
  key: { path: "keys/priv.key", text: PEM_512 },
  bootloader: { path: "dist/yaota8266.bin", bytes: bootloader },
});

Deno.test("verifySetup() marks a bootloader without the software trigger 'warn', and one with it plain ok", () => {
  const without = verifySetup(
    input(makeSampleBootloader({ modulus: KEY_512.modulus, rtcTrigger: false })),
  );
  assertEquals(without.ok, true);
  const check = without.checks.find((c) => c.name === "bootloader")!;
  assertStringIncludes(
    check.detail,
    "software trigger (RTC magic): NO; BOOT button check: yes; built for app offset 0x3c000",
  );
  assertEquals(
    check.warning,
    "no software trigger: OTA mode only with the BOOT button within 3 s of reset; `trigger` and " +
      "`deploy --trigger` will not work on this board. Rebuild it with 'deno task build-bootloader' " +
      "and flash it over serial ('deno task flash') to get the software trigger",
  );
  assertEquals(without.bootloader?.softwareTrigger, false);

  const withIt = verifySetup(input(makeSampleBootloader({ modulus: KEY_512.modulus })));
  assertEquals(withIt.checks.find((c) => c.name === "bootloader")!.warning, undefined);
  assertEquals(withIt.bootloader?.softwareTrigger, true);
});

Deno.test("verifySetup() names a firmware image or an empty file given as the bootloader", () => {
  const firmware = verifySetup(input(makeSampleFirmware()));
  const c = firmware.checks.find((c) => c.name === "bootloader")!;
  assertEquals([c.result, c.problem], ["failed", "file"]);
  assertEquals(
    c.detail,
    "dist/yaota8266.bin is a MicroPython firmware image, not the yaota8266 bootloader: give it " +
      "as --firmware, and yaota8266.bin as --bootloader ('deno task build-bootloader' makes one)",
  );
  const empty = verifySetup(input(new Uint8Array(0))).checks.find((c) => c.name === "bootloader")!;
  assertEquals(empty.result, "failed");
  assertStringIncludes(empty.detail, "dist/yaota8266.bin is an empty file (0 bytes), not the");
});

Deno.test("verify task prints 'warn' and carries the software trigger in --json", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, "keys"));
  await Deno.writeTextFile(join(dir.path, "keys/priv.key"), PEM_512);
  await Deno.writeFile(
    join(dir.path, "upstream.bin"),
    makeSampleBootloader({ modulus: KEY_512.modulus, rtcTrigger: false }),
  );
  await Deno.writeFile(
    join(dir.path, "patched.bin"),
    makeSampleBootloader({ modulus: KEY_512.modulus }),
  );
  const text = await runTaskFile("verify", ["--bootloader", "upstream.bin"], { cwd: dir.path });
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(text.stdout, "warn bootloader  upstream.bin (131072 bytes) is built for");
  assertStringIncludes(
    text.stdout,
    "\n                 no software trigger: OTA mode only with the BOOT button",
  );
  assertStringIncludes(
    text.stderr,
    "2 of 5 checks passed, 3 skipped (public key, config.h, firmware: not there, not checked), " +
      "with a warning for bootloader",
  );

  const json = await runTaskFile("verify", ["--bootloader", "upstream.bin", "--json"], {
    cwd: dir.path,
  });
  const report = JSON.parse(json.stdout);
  assertEquals(report.bootloader.softwareTrigger, false);
  assertEquals(report.bootloader.appOffset, "0x3c000");
  assertStringIncludes(report.checks[3].warning, "no software trigger");

  const patched = await runTaskFile("verify", ["--bootloader", "patched.bin", "--json"], {
    cwd: dir.path,
  });
  const good = JSON.parse(patched.stdout);
  assertEquals([good.ok, good.bootloader.softwareTrigger], [true, true]);
  assertEquals(good.checks[3].warning, undefined);
});

Deno.test("inspect of a bootloader says whether it logs every packet, and --json carries it", async () => {
  await using dir = await tempDir();
  const runs = [
    ["on", "  serial log: logs every packet on its serial port (~150 characters, about 13 ms"],
    [
      "off",
      "  serial log: quiet: no per-packet serial log (built with --quiet-log), error lines kept\n",
    ],
    [undefined, "  serial log: not found (no OTA server log line this tool knows)\n"],
  ] as const;
  for (const [packetLog, line] of runs) {
    const file = join(dir.path, `boot-${packetLog}.bin`);
    await Deno.writeFile(
      file,
      makeSampleBootloader({ modulus: KEY_512.modulus, ...(packetLog ? { packetLog } : {}) }),
    );
    const text = await runTaskFile("inspect", [file]);
    assertEquals(text.code, 3, text.stderr);
    assertStringIncludes(text.stdout, line);
    const json = await runTaskFile("inspect", [file, "--json"]);
    assertEquals(JSON.parse(json.stdout).bootloader.packetLog.state, packetLog ?? "unknown");
  }
  const quiet = analyseBootloader(
    makeSampleBootloader({ modulus: KEY_512.modulus, packetLog: "off" }),
  );
  assertEquals(quiet.packetLog, { state: "off", found: [] });
});
