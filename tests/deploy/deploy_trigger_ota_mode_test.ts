/**
 * `deploy --trigger` to a board already in OTA mode (issue 21): an interrupted rollout
 * leaves it there, WebREPL is closed, and the OTA-mode question tells; the push goes ahead
 * instead of "no WebREPL … is WebREPL enabled?".
 */
import { assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { tempDir, VECTORS } from "../_helpers.ts";
import { deployWithTrigger } from "../../lib/deploy/board_trigger.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { loadPublicKey } from "../../lib/config/key_file.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { startVirtualDevice } from "../../lib/sim/virtual_device.ts";
import { WebReplError } from "../../lib/errors.ts";

const KEY = VECTORS + "test-key-512.pem";
const PASSWORD = "pw-Zq7x4";
const FLASH_SIZE = 0x100000;

async function setUp(start: "ota" | "boot", keyPath = KEY) {
  const key = await loadPublicKey(KEY);
  const flash = new Uint8Array(FLASH_SIZE).fill(0xff);
  flash.set(makeSampleFirmware({ version: "v1.19.1-old", size: 96 * 1024 }), DEFAULT_APP_OFFSET);
  const device = await startVirtualDevice({
    host: "127.0.0.1",
    port: 0,
    modulus: key.modulus,
    flash,
    start,
    webrepl: { password: PASSWORD },
  });
  const dir = await tempDir();
  const image = makeSampleFirmware({ version: "v1.20.0-new", seed: 2 });
  const file = `${dir.path}/firmware-ota.bin`;
  await Deno.writeFile(file, image);
  const said: string[] = [];
  const request = {
    host: "127.0.0.1",
    port: device.port,
    file,
    keyPath,
    block: "auto" as const,
    pace: true,
    timeoutMs: 5000,
    force: false,
    bootCheck: true,
    bootCheckMs: 20000,
    appOffset: DEFAULT_APP_OFFSET,
    flashSize: FLASH_SIZE,
    password: PASSWORD,
    otaWaitMs: 10000,
    comeBackMs: 20000,
  };
  return {
    device,
    flash,
    image,
    said,
    request,
    [Symbol.asyncDispose]: async () => {
      await device.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

Deno.test("deployWithTrigger() to a board already in OTA mode asks the OTA-mode question and pushes", async () => {
  await using t = await setUp("ota");
  assertEquals(t.device.model.mode, "ota");
  const result = await deployWithTrigger(t.request, undefined, {
    onStep: (m) => t.said.push(m),
  });
  assertEquals(result.trigger, "already in OTA mode");
  assertEquals(result.versionAfter, "v1.20.0-new on 2022-06-18");
  assertEquals(
    t.flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + t.image.length),
    t.image,
  );
  assertStringIncludes(
    t.said.join("\n"),
    "it answered the OTA-mode question: in OTA mode already, so nothing to trigger",
  );
});

Deno.test("deployWithTrigger() to a board that refuses WebREPL and is not in OTA mode still says so", async () => {
  // The key the board was not built for: the question goes unanswered.
  await using t = await setUp("ota", VECTORS + "test-key-2048.pem");
  await assertRejects(
    () => deployWithTrigger(t.request),
    WebReplError,
    "no WebREPL at",
  );
});
