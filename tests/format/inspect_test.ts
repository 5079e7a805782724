import { assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { runTaskFile, tempDir } from "../_helpers.ts";
import { inspectImage } from "../../lib/format/inspect.ts";
import { renderInspectReport } from "../../lib/cli/inspect_report.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { UsageError } from "../../lib/errors.ts";
import { parseInspectArgs } from "../../tasks/inspect.ts";
import { join } from "node:path";

interface JsonReport {
  ok: boolean;
  file: string;
  safe: boolean;
  checks: { name: string; ok: boolean; detail: string }[];
  link?: { bestBaseHex: string; linkedAt?: string; builtForAppOffset?: string };
  version?: string;
}

/** Writes `image` to a temp file and runs `inspect FILE --json ...extra` on it. */
async function inspectJson(image: Uint8Array, extra: string[] = []) {
  await using dir = await tempDir();
  const file = join(dir.path, "fw.bin");
  await Deno.writeFile(file, image);
  const r = await runTaskFile("inspect", [file, "--json", ...extra]);
  const lines = r.stdout.trim().split("\n");
  assertEquals(lines.length, 1, `one JSON object on stdout:\n${r.stdout}`);
  const report = JSON.parse(lines[0]!) as JsonReport;
  const failed = report.checks.filter((c) => !c.ok).map((c) => c.name);
  return { code: r.code, report, failed, stderr: r.stderr };
}

const valid = makeSampleFirmware({ seed: 3 });

Deno.test("inspect passes a valid OTA image (exit 0) and prints the report", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "firmware-ota.bin");
  await Deno.writeFile(file, valid);
  const r = await runTaskFile("inspect", [file]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(
    r.stdout,
    `${file}: ${valid.length} bytes (96.0 KiB), MicroPython v1.19.1 on 2022-06-18\n`,
  );
  assertStringIncludes(r.stdout, "  ok    md5           MD5 trailer ");
  assertStringIncludes(r.stdout, "  ok    link address  irom linked at 0x40245000");
  assertStringIncludes(r.stdout, "safe to push to app offset 0x3c000 (flash 1.00 MiB)\n");
  assertEquals(r.stderr, "");
});

Deno.test("inspect --json prints one object; every check passes for a valid image", async () => {
  const { code, report, failed } = await inspectJson(valid);
  assertEquals(code, 0);
  assertEquals(failed, []);
  assertEquals(report.ok, true);
  assertEquals(report.safe, true);
  assertEquals(report.link?.bestBaseHex, "0x40245000");
  assertEquals(report.version, "v1.19.1 on 2022-06-18");
  assertEquals(report.checks.map((c) => c.name), [
    "header",
    "segments",
    "ram size",
    "length word",
    "md5",
    "link address",
    "size",
  ]);
});

Deno.test("inspect refuses a truncated image (exit 3, kind UnsafeImageError)", async () => {
  const shortOfIrom = await inspectJson(valid.subarray(0, valid.length - 100));
  assertEquals(shortOfIrom.code, 3);
  assertEquals((shortOfIrom.report as unknown as { kind: string }).kind, "UnsafeImageError");
  assertEquals(shortOfIrom.failed, ["length word", "md5"]);
  assertStringIncludes(
    shortOfIrom.report.checks[3]!.detail,
    `does not fit the ${valid.length - 100}-byte file: it is truncated (100 bytes missing)`,
  );
  const ramOnly = await inspectJson(valid.subarray(0, 0x8000));
  assertEquals(ramOnly.code, 3);
  assertEquals(ramOnly.failed, ["length word", "md5"]);
  assertStringIncludes(ramOnly.report.checks[3]!.detail, "shorter than 0x9000: truncated");
});

Deno.test("inspect refuses an image whose MD5 trailer does not match, as boot8266 would", async () => {
  const corrupted = valid.slice();
  corrupted[0x9000 + 1234] = corrupted[0x9000 + 1234]! ^ 0x01;
  const { code, failed, report, stderr } = await inspectJson(corrupted);
  assertEquals(code, 3);
  assertEquals(failed, ["md5"]);
  assertStringIncludes(
    report.checks.find((c) => c.name === "md5")!.detail,
    "boot8266 would refuse to boot it",
  );
  assertEquals(stderr, "", "with --json the verdict is in the object");
  // Bytes 0..3 are outside the MD5 (esptool may rewrite the flash mode and size).
  const modeChanged = valid.slice();
  modeChanged[2] = 0x03;
  assertEquals((await inspectJson(modeChanged)).failed, []);
});

Deno.test("inspect refuses a standard-linked image (irom pointers into 0x40209000…) that would boot-loop", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "firmware-combined.bin");
  await Deno.writeFile(file, makeSampleFirmware({ linkBase: 0x40209000, seed: 4 }));
  const r = await runTaskFile("inspect", [file]);
  assertEquals(r.code, 3);
  assertStringIncludes(r.stdout, "  ok    md5 ");
  assertStringIncludes(
    r.stdout,
    "  FAIL  link address  a standard (non-OTA) build, linked at 0x40209000: it would boot-loop",
  );
  assertStringIncludes(r.stdout, "NOT safe to push to app offset 0x3c000");
  assertStringIncludes(
    r.stderr,
    `error: ${file} is not safe to push: link address: a standard (non-OTA) build, linked at ` +
      "0x40209000: it would boot-loop (it passes boot8266's MD5 check, then crashes;",
  );
  assertStringIncludes(r.stderr, "Build the OTA image with 'deno task build-ota'");
});

Deno.test("inspect refuses an image built for another app offset unless told that offset", async () => {
  const image = makeSampleFirmware({ appOffset: 0x40000, seed: 5 });
  const atDefault = await inspectJson(image);
  assertEquals(atDefault.failed, ["link address"]);
  assertStringIncludes(
    atDefault.report.checks[5]!.detail,
    "irom linked at 0x40249000, not 0x40245000: built for app offset 0x40000 (",
  );
  assertStringIncludes(atDefault.report.checks[5]!.detail, "pass --app-offset 0x40000");
  assertEquals(atDefault.report.link?.builtForAppOffset, "0x40000");
  assertEquals((await inspectJson(image, ["--app-offset", "0x40000"])).code, 0);
});

Deno.test("inspect refuses an image larger than the flash above the app offset", async () => {
  const big = makeSampleFirmware({ size: 300_000, seed: 6 });
  assertEquals((await inspectJson(big)).code, 0);
  const small = await inspectJson(big, ["--flash-size", "512K"]);
  assertEquals(small.code, 3);
  assertEquals(small.failed, ["size"]);
  assertStringIncludes(
    small.report.checks.at(-1)!.detail,
    "278528 bytes of flash above the app offset 0x3c000",
  );
  // Over boot8266's 800000-byte limit on a 1 MiB device: too big twice over.
  const huge = await inspectJson(makeSampleFirmware({ size: 810_000, seed: 6 }));
  assertEquals(huge.code, 3);
  for (const name of ["length word", "size"]) assertEquals(huge.failed.includes(name), true, name);
  assertStringIncludes(huge.report.checks[3]!.detail, "is over boot8266's limit 800000");
  // Too big, but linked right: the link check says so rather than guessing another base.
  assertEquals(huge.failed.includes("link address"), false);
  assertEquals(huge.report.link?.linkedAt, "0x40245000");
});

Deno.test("inspect names a missing file and refuses bad arguments", async () => {
  const missing = await runTaskFile("inspect", ["/nonexistent/fw.bin"]);
  assertEquals(missing.code, 1);
  assertStringIncludes(missing.stderr, "error: cannot read the image '/nonexistent/fw.bin'");
  const none = await runTaskFile("inspect", []);
  assertEquals(none.code, 2);
  assertStringIncludes(none.stderr, "error: inspect: name the image to inspect: inspect FILE");
  assertThrows(
    () => parseInspectArgs(["fw.bin", "--app-offset", "0x3c001"]),
    UsageError,
    "4 KiB-aligned",
  );
  assertThrows(
    () => parseInspectArgs(["fw.bin", "--flash-size", "big"]),
    UsageError,
    "--flash-size expects",
  );
  assertEquals(parseInspectArgs(["fw.bin", "--flash-size", "4M", "--json"]), {
    file: "fw.bin",
    appOffset: undefined,
    flashSize: 4 * 1024 * 1024,
    json: true,
    keyPath: undefined,
    config: undefined,
  });
});

Deno.test("renderInspectReport() shows each check, the layout and the verdict", () => {
  const lines = renderInspectReport(inspectImage(valid), "fw.bin");
  assertEquals(
    lines[0],
    `fw.bin: ${valid.length} bytes (96.0 KiB), MicroPython v1.19.1 on 2022-06-18`,
  );
  assertEquals(lines.filter((l) => l.startsWith("  ok  ")).length, 7);
  assertStringIncludes(
    lines.join("\n"),
    "  RAM segments: 0x40100000 (24576 bytes), 0x3ffe8000 (2048 bytes), entry 0x40100004",
  );
  assertEquals(lines.at(-1), "safe to push to app offset 0x3c000 (flash 1.00 MiB)");
});
