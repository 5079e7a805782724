import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir } from "../_helpers.ts";
import { findLinkBase, stringStarts } from "../../lib/format/link_address.ts";
import { inspectImage } from "../../lib/format/inspect.ts";
import { buildOtaImage, parseImage } from "../../lib/format/image.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { seededRandom } from "../../lib/_random.ts";
import { readU32 } from "../../lib/_bytes.ts";
import { shiftIromPointers } from "../fixtures/relink.ts";
import { join } from "node:path";

const hex = (n: number) => "0x" + n.toString(16);
const linkCheck = (image: Uint8Array, appOffset?: number) =>
  inspectImage(image, { appOffset }).checks.find((c) => c.name === "link address")!;

/** The size of the real OTA build the window estimate refused (598,092 bytes). */
const REAL_SIZE = 598_092;

Deno.test("stringStarts() marks the first byte of NUL-terminated printable strings only", () => {
  const bytes = new TextEncoder().encode("ab\0\0cd\0x\0\x01ef\0gh");
  // "ab" at 0 (start of data), "cd" after a NUL; "x" is too short; "ef" follows 0x01,
  // not a NUL; "gh" has no NUL after it.
  assertEquals([...stringStarts(bytes)].flatMap((s, i) => s ? [i] : []), [0, 4]);
});

Deno.test("findLinkBase() finds the true base of generated builds of every size, with a clear margin", () => {
  for (const size of [0x9000 + 4096, 48 * 1024, 96 * 1024, 300_000, REAL_SIZE]) {
    for (const linkBase of [0x40245000, 0x40209000, 0x40249000]) {
      const irom = parseImage(makeSampleFirmware({ size, linkBase, seed: size % 97 })).irom!;
      const found = findLinkBase(irom);
      const what = `${size} bytes linked at ${hex(linkBase)}`;
      assertEquals(found.base, linkBase, `${what}: ${found.doubt}`);
      assert(
        found.best.hits >= 3 * found.runnerUp.hits,
        `${what}: margin ${JSON.stringify(found)}`,
      );
    }
  }
});

Deno.test("sample firmware points past its irom's end, as real builds do (what fooled the window count)", () => {
  const image = makeSampleFirmware({ size: REAL_SIZE });
  const irom = parseImage(image).irom!;
  const end = 0x40245000 + irom.length;
  let past = 0;
  let firstPages = 0;
  for (let at = 0; at + 4 <= irom.length; at += 4) {
    const w = readU32(irom, at);
    if (w >= end && w < end + 0x3000) past++;
    if (w >= 0x40245000 && w < 0x40245000 + 0x3000) firstPages++;
  }
  // More pointers just past the end than into the first pages: a window of the irom's
  // length fits better a few pages up. The string count must not care.
  assert(past > firstPages, `past the end ${past}, into the first pages ${firstPages}`);
  assertEquals(linkCheck(image).ok, true);
  assertStringIncludes(linkCheck(image).detail, "irom linked at 0x40245000 (");
});

Deno.test("inspectImage() refuses an irom relinked by ±0x1000 and larger steps, naming the app offset; that --app-offset passes", () => {
  const image = makeSampleFirmware({ size: 300_000, seed: 1 });
  for (const delta of [-0x1000, 0x1000, -0x2000, 0x3000, -0x10000, 0x20000]) {
    const moved = shiftIromPointers(image, delta);
    const builtFor = 0x3c000 + delta;
    const check = linkCheck(moved);
    assertEquals(check.ok, false, `shift ${delta}`);
    assertStringIncludes(
      check.detail,
      `irom linked at ${hex(0x40245000 + delta)}, not 0x40245000: built for app offset ${
        hex(builtFor)
      } (`,
    );
    assertStringIncludes(check.detail, `pass --app-offset ${hex(builtFor)}`);
    const there = inspectImage(moved, { appOffset: builtFor });
    assertEquals(there.safe, true, `at ${hex(builtFor)}: ${JSON.stringify(there.checks)}`);
  }
});

Deno.test("inspectImage() names a standard build at 0x40209000, also when shifted builds are near", () => {
  const standard = makeSampleFirmware({ size: 200_000, linkBase: 0x40209000, seed: 9 });
  const check = linkCheck(standard);
  assertEquals(check.ok, false);
  assertStringIncludes(
    check.detail,
    "a standard (non-OTA) build, linked at 0x40209000: it would boot-loop",
  );
  // One page off a standard build is not "standard": it is named by its own offset.
  assertStringIncludes(
    linkCheck(shiftIromPointers(standard, 0x1000)).detail,
    "built for app offset 0x1000",
  );
  assertStringIncludes(
    linkCheck(shiftIromPointers(standard, -0x1000)).detail,
    "irom linked at 0x40208000 (",
  );
});

Deno.test("inspectImage() says it cannot tell where an irom without strings is linked, and refuses it", () => {
  const random = seededRandom(4);
  const irom = new Uint8Array(64 * 1024).map(() => Math.floor(random() * 256));
  const image = buildOtaImage({
    entry: 0x40100004,
    segments: [{ address: 0x40100000, data: new Uint8Array(64) }],
    irom,
  });
  const report = inspectImage(image);
  const check = report.checks.find((c) => c.name === "link address")!;
  assertEquals(check.ok, false);
  assertStringIncludes(check.detail, "cannot tell where the irom is linked: only ");
  assertStringIncludes(check.detail, "Is it a MicroPython build?");
  assertEquals(report.link?.linkedAt, undefined);
  assertEquals(report.safe, false);
});

Deno.test("inspect task: a copy relinked for 0x3b000 is refused naming 0x3b000, and passes with --app-offset 0x3b000", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "firmware-ota.bin");
  await Deno.writeFile(file, shiftIromPointers(makeSampleFirmware({ seed: 3 }), -0x1000));
  const refused = await runTaskFile("inspect", [file]);
  assertEquals(refused.code, 3);
  assertStringIncludes(
    refused.stderr,
    `error: ${file} is not safe to push: link address: irom linked at 0x40244000, not ` +
      "0x40245000: built for app offset 0x3b000",
  );
  const passed = await runTaskFile("inspect", [file, "--app-offset", "0x3b000"]);
  assertEquals(passed.code, 0, passed.stderr);
  assertStringIncludes(passed.stdout, "  ok    link address  irom linked at 0x40244000 (");
  assertStringIncludes(passed.stdout, "safe to push to app offset 0x3b000");
});
