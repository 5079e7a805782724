import { assert, assertEquals } from "../_assert.ts";
import { VECTORS, vectorText } from "../_helpers.ts";
import { DeviceModel } from "../../lib/sim/device.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makePacket, parseRequestHeader } from "../../lib/format/packet.ts";
import { askOtaMode, otaQuestion, QUESTION_OFFSET } from "../../lib/transfer/ota_probe.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import { startVirtualDevice } from "../../lib/sim/virtual_device.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";

const key = parsePrivateKey(vectorText("test-key-512.pem"), VECTORS + "test-key-512.pem");
const signer = nativeSigner(key);

Deno.test("otaQuestion() is a signed packet at offset 0xFFFFFFFF with one byte: never an end packet", () => {
  const question = otaQuestion(7, signer);
  assertEquals(parseRequestHeader(question), { seq: 7, op: 0, len: 1, offset: 0xffffffff });
  assertEquals(QUESTION_OFFSET, 0xffffffff);
});

Deno.test("the device model answers the question in a fresh session, changes nothing, and still reboots when idle", () => {
  const flash = new Uint8Array(0x100000).fill(0xff);
  const device = new DeviceModel({
    modulus: key.modulus,
    flash,
    profile: PROFILES.instant,
    idleRebootMs: 60000,
    now: 0,
  });
  const before = flash.slice();
  device.receive(10, otaQuestion(1, signer), "client");
  const events = device.advance(20);
  assertEquals(
    events.filter((e) => e.type === "packet").map((e) => e.type === "packet" && e.outcome),
    ["duplicate"],
  );
  assertEquals(events.filter((e) => e.type === "reply").length, 1);
  assertEquals(flash, before);
  // The idle reboot counts from the session's start: the question does not hold it off.
  assertEquals(device.nextWakeup(), 60000);
  assert(device.advance(60000).some((e) => e.type === "reboot" && e.reason === "idle"));
});

Deno.test("the device model does not answer the question in the middle of someone else's session", () => {
  const device = new DeviceModel({
    modulus: key.modulus,
    flash: new Uint8Array(0x100000).fill(0xff),
    profile: PROFILES.instant,
    now: 0,
  });
  device.receive(0, makePacket(1, 0, new Uint8Array(256).fill(1), signer), "client");
  device.advance(1);
  device.receive(2, otaQuestion(2, signer), "client");
  const events = device.advance(3);
  assertEquals(
    events.filter((e) => e.type === "packet").map((e) => e.type === "packet" && e.outcome),
    ["unexpected-offset"],
  );
  assertEquals(events.filter((e) => e.type === "reply").length, 0);
});

Deno.test("askOtaMode() is true for a board in OTA mode, false for one running its app or for another key", async () => {
  const flash = new Uint8Array(0x100000).fill(0xff);
  flash.set(makeSampleFirmware({ size: 48 * 1024 }), DEFAULT_APP_OFFSET);
  await using ota = await startVirtualDevice({
    port: 0,
    modulus: key.modulus,
    flash: flash.slice(),
  });
  await using app = await startVirtualDevice({
    port: 0,
    modulus: key.modulus,
    flash: flash.slice(),
    start: "boot",
  });
  assertEquals(app.model.mode, "app");
  assertEquals(await askOtaMode("127.0.0.1", ota.port, signer), true);
  assertEquals(await askOtaMode("127.0.0.1", app.port, signer, { tries: 2, waitMs: 100 }), false);
  const other = nativeSigner(parsePrivateKey(vectorText("test-key-2048.pem")));
  assertEquals(await askOtaMode("127.0.0.1", ota.port, other, { tries: 2, waitMs: 100 }), false);
  // It asked and nothing else: no write, no accepted packet.
  assertEquals(ota.events.filter((e) => e.type === "flash-write").length, 0);
  assertEquals(
    ota.events.filter((e) => e.type === "packet" && e.outcome === "accepted").length,
    0,
  );
});
