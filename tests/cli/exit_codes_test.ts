/**
 * The exit code table (lib/exit_codes.ts): each error's code, a fleet's, the README's
 * table, and a fleet where every device fails as a user sees it. The other codes are
 * asserted where they happen: deploy_test (3, 4, 6), flash_test (3, 5), fleet_test (10,
 * 130), config_lookup_test (inspect's 3), yaota_test and values_test (2).
 */
import { assert, assertEquals } from "../_assert.ts";
import { ROOT, runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import {
  EXIT,
  EXIT_CODE_TABLE,
  exitCodeOf,
  FLEET_KIND,
  fleetExitCode,
} from "../../lib/exit_codes.ts";
import {
  BootCheckError,
  CannedFileError,
  ConfigError,
  DeviceUnreachableError,
  FileError,
  InterruptedError,
  KeyError,
  KeyMismatchError,
  UnsafeImageError,
  UsageError,
} from "../../lib/errors.ts";
import { OtaModeTimeoutError } from "../../lib/deploy/board_trigger.ts";
import { UpdateNotAppliedError } from "../../lib/deploy/board_verify.ts";
import { EsptoolError } from "../../lib/setup/esptool.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { createSocket } from "node:dgram";

Deno.test("exitCodeOf() gives each error class its code, subclasses their parent's", () => {
  const cases: [unknown, number][] = [
    [new UsageError("x"), 2],
    [new UnsafeImageError("x"), 3],
    [new CannedFileError("x"), 3],
    [new DeviceUnreachableError("x"), 4],
    [new OtaModeTimeoutError("x"), 4],
    [new KeyMismatchError("x"), 5],
    [new BootCheckError("x"), 6],
    [new UpdateNotAppliedError("x"), 6],
    [new InterruptedError("x"), 130],
    [new ConfigError("x"), 1],
    [new KeyError("x"), 1],
    [new FileError("x"), 1],
    [new EsptoolError("x", 2, []), 1],
    [new TypeError("a bug"), 1],
  ];
  for (const [error, code] of cases) {
    assertEquals(exitCodeOf(error), code, (error as Error).name);
  }
  // Every code in the table is distinct, and every kind it names is given that code.
  const codes = EXIT_CODE_TABLE.map((r) => r.code);
  assertEquals(new Set(codes).size, codes.length);
  assertEquals(codes, Object.values(EXIT).sort((a, b) => a - b));
  for (const [error, code] of cases) {
    const row = EXIT_CODE_TABLE.find((r) => r.kinds.includes((error as Error).name));
    if (row) assertEquals(row.code, code, (error as Error).name);
  }
});

Deno.test("fleetExitCode(): 0 all updated, 10 some failed, 11 all failed, 130 interrupted", () => {
  const ok = { ok: true };
  const failed = { ok: false, kind: "DeviceUnreachableError" };
  const stopped = { ok: false, kind: "InterruptedError" };
  assertEquals(fleetExitCode([ok, ok]), EXIT.ok);
  assertEquals(fleetExitCode([ok, failed]), 10);
  assertEquals(fleetExitCode([failed, failed]), 11);
  assertEquals(fleetExitCode([ok, stopped]), 130);
  assertEquals(fleetExitCode([failed, stopped]), 130);
  assertEquals([FLEET_KIND.someFailed, FLEET_KIND.allFailed], [
    "SomeDevicesFailed",
    "AllDevicesFailed",
  ]);
});

Deno.test("the README's exit code table is lib/exit_codes.ts's", () => {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  const rows = [...readme.matchAll(/^\| (\d+) +\| (.+?) +\| (.*?) *\|$/gm)].map((m) => ({
    code: Number(m[1]),
    meaning: m[2]!,
    kinds: [...m[3]!.matchAll(/`(\w+)`/g)].map((k) => k[1]!),
  }));
  assertEquals(
    rows.map((r) => [r.code, r.meaning, r.kinds]),
    EXIT_CODE_TABLE.map((r) => [r.code, r.meaning, r.kinds.filter((k) => k !== "…")]),
  );
});

/** A UDP port nobody listens on: bound by the OS, then closed. */
async function deadPort(): Promise<number> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

Deno.test("deploy --fleet where every device fails exits 11, kind AllDevicesFailed", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/fw.bin`, makeSampleFirmware({ size: 32 * 1024 }));
  await Deno.writeTextFile(
    `${dir.path}/ota.config.json`,
    JSON.stringify({
      key: `${VECTORS}test-key-512.pem`,
      devices: [
        { name: "gone1", ip: "127.0.0.1", port: await deadPort() },
        { name: "gone2", ip: "127.0.0.1", port: await deadPort() },
      ],
    }),
  );
  const r = await runTaskFile("deploy", ["--fleet", "--json", "--timeout", "1", "fw.bin"], {
    cwd: dir.path,
  });
  assertEquals(r.code, 11, r.stderr);
  const report = JSON.parse(r.stdout);
  assertEquals([report.ok, report.kind, report.failed], [false, "AllDevicesFailed", [
    "gone1",
    "gone2",
  ]]);
  assert(
    report.devices.every((d: { kind: string }) => d.kind === "DeviceUnreachableError"),
    r.stdout,
  );
});

Deno.test("fleetExitCode(): a rollout stopped by its canary is 'some failed' (10): not attempted is not failed", () => {
  const failed = { ok: false, kind: "BootCheckError", result: "failed" };
  const notAttempted = { ok: false, result: "not-attempted" };
  assertEquals(fleetExitCode([failed, notAttempted, notAttempted]), 10);
  assertEquals(fleetExitCode([failed, failed]), 11);
  assertEquals(fleetExitCode([{ ok: true, result: "skipped" }, notAttempted]), 10);
});
