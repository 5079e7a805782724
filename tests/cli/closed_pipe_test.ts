/**
 * A reader that closes stdout early (`deploy --events | head -1`) is the end of the
 * reader, not a bug: the task goes on, says nothing about a broken pipe, and exits with
 * its outcome's code.
 */
import { assert, assertEquals } from "../_assert.ts";
import { hermeticEnv, ROOT, tempDir, VECTORS } from "../_helpers.ts";
import { startVirtualDevice } from "../../lib/sim/virtual_device.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { equalBytes } from "../../lib/_bytes.ts";

const APP = 0x3c000;
const KEY = `${VECTORS}test-key-512.pem`;

/**
 * Runs deploy with `extra`, reads stdout's first line (or nothing), closes the pipe,
 * waits for the end.
 */
async function deployReadingOneLine(extra: string[], readFirst = true) {
  await using dir = await tempDir();
  await using locks = await tempDir();
  await using d = await startVirtualDevice({
    modulus: parsePrivateKey(await Deno.readTextFile(KEY)).modulus,
    flash: new Uint8Array(0x100000).fill(0xff),
    profile: PROFILES.instant,
    link: { delayMs: 1 },
  });
  const image = makeSampleFirmware({ size: 64 * 1024, seed: 21 });
  await Deno.writeFile(`${dir.path}/fw.bin`, image);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}tasks/deploy.ts`,
      "--ip",
      "127.0.0.1",
      "--port",
      String(d.port),
      "--key",
      KEY,
      "--boot-check-window",
      "1.5",
      `${dir.path}/fw.bin`,
      ...extra,
    ],
    cwd: dir.path,
    env: { ...hermeticEnv(), NO_COLOR: "1", OTA_LOCK_DIR: locks.path },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  const first = readFirst ? await reader.read() : { value: undefined };
  // The reader goes away, as `head -1` does: the pipe's read end is closed.
  await reader.cancel();
  const status = await child.status;
  return {
    code: status.code,
    first: new TextDecoder().decode(first.value ?? new Uint8Array()),
    stderr: await stderr,
    holds: equalBytes(d.model.flash.subarray(APP, APP + image.length), image),
  };
}

Deno.test("deploy --events whose reader closes after the first line: delivered, exit 0, no bug report", async () => {
  const r = await deployReadingOneLine(["--events"]);
  assert(r.first.includes('"type":"run.started"'), r.first);
  assert(r.holds, "the image is in flash: " + r.stderr);
  assert(!r.stderr.includes("unexpected error"), r.stderr);
  assert(!r.stderr.includes("BrokenPipe"), r.stderr);
  assertEquals(r.code, 0, r.stderr);
});

Deno.test("deploy --json whose reader has gone before the result: delivered, exit 0, no bug report", async () => {
  const r = await deployReadingOneLine(["--json"], false);
  assert(r.holds, "the image is in flash: " + r.stderr);
  assert(!r.stderr.includes("unexpected error"), r.stderr);
  assertEquals(r.code, 0, r.stderr);
});
