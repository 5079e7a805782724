/**
 * The device model against docs/device.md, one rule per test, on a fake clock.
 * Every test scripts the datagrams the device receives and checks the events it gives
 * back: replies as bytes, packet outcomes, flash-write addresses and the flash itself.
 */
import { assert, assertEquals } from "../_assert.ts";
import { vectorText } from "../_helpers.ts";
import { type DeviceEvent, DeviceModel, type DeviceOptions } from "../../lib/sim/device.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import {
  datagramSize,
  makeEndPacket,
  makePacket,
  makeReply,
  signedRegion,
  type Signer,
  withSeq,
} from "../../lib/format/packet.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { concat, readU32, writeU32 } from "../../lib/_bytes.ts";
import { createHash } from "node:crypto";

const key512 = parsePrivateKey(vectorText("test-key-512.pem"));
const key2048 = parsePrivateKey(vectorText("test-key-2048.pem"));
const signer512 = nativeSigner(key512);
const signer2048 = nativeSigner(key2048);
const APP = DEFAULT_APP_OFFSET;
const SECTOR = 4096;
const esp8266 = PROFILES.esp8266!;

function blankFlash(): Uint8Array {
  return new Uint8Array(1 << 20).fill(0xff);
}

/** A device in OTA mode (as if the button was pressed) with the 512-bit test key. */
function device(options: Partial<DeviceOptions> = {}): DeviceModel {
  return new DeviceModel({ modulus: key512.modulus, flash: blankFlash(), ...options });
}

/** Recognisable block contents, never all 0xFF. */
function block(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 17 + 1) & 0x7f);
}

type EventOf<T extends DeviceEvent["type"]> = Extract<DeviceEvent, { type: T }>;

function ofType<T extends DeviceEvent["type"]>(events: DeviceEvent[], type: T): EventOf<T>[] {
  return events.filter((e): e is EventOf<T> => e.type === type);
}

function outcomes(events: DeviceEvent[]): string[] {
  return ofType(events, "packet").map((e) => e.outcome);
}

function writes(events: DeviceEvent[]): number[] {
  return ofType(events, "flash-write").map((e) => e.address);
}

/** Hands the device one datagram at `now` and returns what happened by then. */
function send(dev: DeviceModel, now: number, datagram: Uint8Array): DeviceEvent[] {
  dev.receive(now, datagram);
  return dev.advance(now);
}

function assertAbout(actual: number | undefined, expected: number, what: string): void {
  assert(
    actual !== undefined && Math.abs(actual - expected) < 1e-6,
    `${what}: expected ${expected} ms, got ${actual}`,
  );
}

/** Sends `image` from offset 0 in `blockSize` packets, one per ms from `t0`, then one end packet. */
function sendImage(
  dev: DeviceModel,
  image: Uint8Array,
  blockSize: number,
  signer: Signer,
  t0 = 0,
): { events: DeviceEvent[]; t: number } {
  const events: DeviceEvent[] = [];
  let t = t0;
  let seq = 1;
  for (let offset = 0; offset < image.length; offset += blockSize) {
    const data = image.subarray(offset, offset + blockSize);
    events.push(...send(dev, t++, makePacket(seq++, offset, data, signer)));
  }
  events.push(...send(dev, t, makeEndPacket(seq, signer)));
  return { events, t };
}

// A small valid image whose length is not a multiple of 4096 (46,864 bytes: 1,808 left
// in the buffer at the end), so the end packet has a partial buffer to flush.
const firmware = makeSampleFirmware({ size: 0x9000 + 10000 });

Deno.test("DeviceModel: the sample firmware is 46,864 bytes, a partial last sector", () => {
  assertEquals(firmware.length, 46864);
  assertEquals(firmware.length % SECTOR, 1808);
});

// ---- Rule 6 and the reply layout -------------------------------------------------------

Deno.test("DeviceModel accepts a valid packet at offset 0 and replies with seq + its 8 header bytes", () => {
  const dev = device();
  const packet = makePacket(7, 0, block(256, 1), signer512);
  const events = send(dev, 0, packet);
  assertEquals(ofType(events, "packet"), [
    {
      type: "packet",
      at: 0,
      seq: 7,
      offset: 0,
      len: 256,
      outcome: "accepted",
      arrived: 0,
      started: 0,
    },
  ]);
  const replies = ofType(events, "reply");
  assertEquals(replies.length, 1);
  const reply = replies[0]!.data;
  assertEquals(reply.length, 20);
  assertEquals(readU32(reply, 0), 7);
  assertEquals(reply.subarray(0, 12), packet.subarray(0, 12));
  assertEquals(reply, makeReply(packet));
  assertEquals(dev.session, { expected: 256, bufferedBytes: 256 });
});

Deno.test("DeviceModel: seq is not signed, so a re-sequenced packet verifies and its reply carries the new seq", () => {
  const dev = device();
  const packet = makePacket(1, 0, block(256, 1), signer512).slice();
  writeU32(packet, 0, 0xdeadbeef);
  const events = send(dev, 0, packet);
  assertEquals(outcomes(events), ["accepted"]);
  assertEquals(readU32(ofType(events, "reply")[0]!.data, 0), 0xdeadbeef);
});

Deno.test("DeviceModel writes nothing until the 4096-byte buffer is full, then the sector at the app offset", () => {
  const dev = device();
  const blocks = Array.from({ length: 16 }, (_, i) => block(256, i));
  for (let i = 0; i < 15; i++) {
    const events = send(dev, i, makePacket(i + 1, i * 256, blocks[i]!, signer512));
    assertEquals(outcomes(events), ["accepted"]);
    assertEquals(ofType(events, "reply").length, 1);
    assertEquals(writes(events), []);
  }
  assert(dev.flash.every((b) => b === 0xff), "nothing may be written before the buffer is full");
  assertEquals(dev.session, { expected: 3840, bufferedBytes: 3840 });
  // The 16th packet fills the buffer: the sector is written, then the reply goes out.
  const events = send(dev, 15, makePacket(16, 3840, blocks[15]!, signer512));
  assertEquals(events.map((e) => e.type), ["packet", "flash-write", "reply"]);
  assertEquals(ofType(events, "flash-write"), [
    { type: "flash-write", at: 15, address: APP, belowApp: false },
  ]);
  assertEquals(dev.flash.subarray(APP, APP + SECTOR), concat(blocks));
  assert(dev.flash.subarray(0, APP).every((b) => b === 0xff), "nothing below the app offset");
  assertEquals(dev.session, { expected: 4096, bufferedBytes: 0 });
});

// ---- Rule 1: drops before anything else ------------------------------------------------

Deno.test("DeviceModel drops a datagram under 12 bytes as short, with no reply", () => {
  const dev = device();
  const packet = makePacket(1, 0, block(256, 1), signer512);
  for (const length of [0, 1, 11]) {
    const events = send(dev, 0, packet.subarray(0, length));
    assertEquals(outcomes(events), ["short"]);
    assertEquals(ofType(events, "reply"), []);
  }
  assertEquals(dev.session, { expected: 0, bufferedBytes: 0 });
});

Deno.test("DeviceModel drops a packet with a corrupted signature silently", () => {
  const dev = device();
  const packet = makePacket(1, 0, block(256, 1), signer512).slice();
  packet[packet.length - 1] = packet[packet.length - 1]! ^ 0x01;
  const events = send(dev, 0, packet);
  assertEquals(outcomes(events), ["bad-signature"]);
  assertEquals(ofType(events, "reply"), []);
  assertEquals(writes(events), []);
  assertEquals(dev.session, { expected: 0, bufferedBytes: 0 });
});

Deno.test("DeviceModel drops a packet signed with another key silently", () => {
  const dev = device(); // built for the 512-bit key
  for (let i = 0; i < 16; i++) {
    // Even a whole sector's worth: nothing is buffered, nothing written.
    const events = send(dev, i, makePacket(i + 1, i * 256, block(256, i), signer2048));
    assertEquals(outcomes(events), ["bad-signature"]);
    assertEquals(ofType(events, "reply"), []);
    assertEquals(writes(events), []);
  }
  assertEquals(dev.session, { expected: 0, bufferedBytes: 0 });
  assert(dev.flash.every((b) => b === 0xff));
});

Deno.test("DeviceModel drops a packet whose data was tampered with (SHA1 mismatch)", () => {
  const dev = device();
  const packet = makePacket(1, 0, block(256, 1), signer512).slice();
  packet[12 + 100] = packet[12 + 100]! ^ 0x40;
  const events = send(dev, 0, packet);
  assertEquals(outcomes(events), ["bad-signature"]);
  assertEquals(ofType(events, "reply"), []);
  assertEquals(dev.session, { expected: 0, bufferedBytes: 0 });
});

Deno.test("DeviceModel drops a packet whose tampered header changes its offset", () => {
  const dev = device();
  const packet = makePacket(1, 0, block(256, 1), signer512).slice();
  writeU32(packet, 8, 256);
  const events = send(dev, 0, packet);
  assertEquals(outcomes(events), ["bad-signature"]);
  assertEquals(ofType(events, "reply"), []);
});

Deno.test("DeviceModel drops a signature whose recovered payload is not 36 bytes", () => {
  const dev = device();
  const region = signedRegion(0, block(256, 1));
  // A valid type-1 signature over the bare SHA1 (20 bytes, no key16).
  const sha1 = new Uint8Array(createHash("sha1").update(region).digest());
  const packet = withSeq(1, concat([region, signer512.sign(sha1)]));
  const events = send(dev, 0, packet);
  assertEquals(outcomes(events), ["bad-signature"]);
  assertEquals(ofType(events, "reply"), []);
});

Deno.test("DeviceModel drops a datagram over the mtu (it would arrive fragmented) as bad-signature", () => {
  // 2048-bit key, 1024-byte block: 4 + 8 + 1024 + 8 (zero pad) + 256 = 1300 bytes
  // (docs/device.md, "Wire protocol"), over a 548-byte path.
  const packet = makePacket(1, 0, block(1024, 1), signer2048);
  assertEquals(packet.length, 1300);
  assertEquals(datagramSize(1024, 256), 1300);
  const small = device({ modulus: key2048.modulus, mtu: 548 });
  const events = send(small, 0, packet);
  assertEquals(outcomes(events), ["bad-signature"]);
  assertEquals(ofType(events, "reply"), []);
  assertEquals(small.session, { expected: 0, bufferedBytes: 0 });
  // The same datagram fits the default 1472-byte payload and is accepted.
  const normal = device({ modulus: key2048.modulus });
  assertEquals(outcomes(send(normal, 0, packet)), ["accepted"]);
});

// ---- Rule 3: duplicates ------------------------------------------------------------------

Deno.test("DeviceModel re-replies to a duplicate (offset == previous offset) and buffers nothing", () => {
  const dev = device();
  const data = block(256, 1);
  assertEquals(outcomes(send(dev, 0, makePacket(1, 0, data, signer512))), ["accepted"]);
  // The client missed the reply and resends the same offset under a new seq.
  const again = makePacket(2, 0, data, signer512);
  const events = send(dev, 1, again);
  assertEquals(outcomes(events), ["duplicate"]);
  assertEquals(ofType(events, "reply").map((r) => r.data), [makeReply(again)]);
  assertEquals(dev.session, { expected: 256, bufferedBytes: 256 });
});

Deno.test("DeviceModel writes nothing for a duplicate of the packet that filled a sector", () => {
  const dev = device();
  let events: DeviceEvent[] = [];
  for (let i = 0; i < 4; i++) {
    events = send(dev, i, makePacket(i + 1, i * 1024, block(1024, i), signer512));
  }
  assertEquals(writes(events), [APP]);
  const dup = send(dev, 10, makePacket(5, 3072, block(1024, 3), signer512));
  assertEquals(outcomes(dup), ["duplicate"]);
  assertEquals(ofType(dup, "reply").length, 1);
  assertEquals(writes(dup), []);
  assertEquals(dev.session, { expected: 4096, bufferedBytes: 0 });
});

// ---- Rule 4: unexpected offsets ----------------------------------------------------------

Deno.test("DeviceModel drops a packet at an unexpected offset silently", () => {
  const dev = device();
  let events = send(dev, 0, makePacket(1, 256, block(256, 1), signer512));
  assertEquals(outcomes(events), ["unexpected-offset"]);
  assertEquals(ofType(events, "reply"), []);
  assertEquals(outcomes(send(dev, 1, makePacket(2, 0, block(256, 0), signer512))), ["accepted"]);
  // One block skipped: expected 256, got 512.
  events = send(dev, 2, makePacket(3, 512, block(256, 2), signer512));
  assertEquals(outcomes(events), ["unexpected-offset"]);
  assertEquals(ofType(events, "reply"), []);
  assertEquals(dev.session, { expected: 256, bufferedBytes: 256 });
});

// ---- Rule 5: buffer overflow -------------------------------------------------------------

Deno.test("DeviceModel drops a packet that would overflow the 4096-byte buffer", () => {
  const dev = device();
  // 256 then 1024-byte blocks: the fourth 1024 would straddle the sector (3328 + 1024).
  assertEquals(outcomes(send(dev, 0, makePacket(1, 0, block(256, 0), signer512))), ["accepted"]);
  for (const [i, offset] of [256, 1280, 2304].entries()) {
    const events = send(dev, i + 1, makePacket(i + 2, offset, block(1024, i), signer512));
    assertEquals(outcomes(events), ["accepted"]);
  }
  const events = send(dev, 10, makePacket(5, 3328, block(1024, 9), signer512));
  assertEquals(outcomes(events), ["overflow"]);
  assertEquals(ofType(events, "reply"), []);
  assertEquals(writes(events), []);
  assertEquals(dev.session, { expected: 3328, bufferedBytes: 3328 });
});

// ---- Rule 2: the end packet --------------------------------------------------------------

Deno.test("DeviceModel: an end packet flushes a partial buffer at the rounded-down address and reboots", () => {
  const dev = device();
  const blocks = [block(1024, 0), block(1024, 1), block(1024, 2), block(1024, 3), block(512, 4)];
  let offset = 0;
  for (const [i, data] of blocks.entries()) {
    send(dev, i, makePacket(i + 1, offset, data, signer512));
    offset += data.length;
  }
  assertEquals(dev.session, { expected: 4608, bufferedBytes: 512 });
  const events = send(dev, 10, makeEndPacket(6, signer512));
  assertEquals(outcomes(events), ["end"]);
  assertEquals(ofType(events, "reply"), [], "the end packet gets no reply");
  // APP + 4608 is not 4096-aligned: rounded down to APP + 4096.
  assertEquals(ofType(events, "flash-write"), [
    { type: "flash-write", at: 10, address: APP + SECTOR, belowApp: false },
  ]);
  assertEquals(ofType(events, "reboot"), [{ type: "reboot", at: 10, reason: "end-packet" }]);
  const second = dev.flash.subarray(APP + SECTOR, APP + 2 * SECTOR);
  assertEquals(second.subarray(0, 512), blocks[4]!);
  assert(second.subarray(512).every((b) => b === 0xff), "unfilled bytes are written as 0xFF");
});

Deno.test("DeviceModel: an end packet with an empty buffer writes nothing and reboots", () => {
  const dev = device();
  const events = send(dev, 0, makeEndPacket(1, signer512));
  assertEquals(outcomes(events), ["end"]);
  assertEquals(writes(events), []);
  assertEquals(ofType(events, "reboot").map((e) => e.reason), ["end-packet"]);
  assert(dev.flash.every((b) => b === 0xff));
});

Deno.test("DeviceModel boots a valid image sent whole: boot ok, mode app", () => {
  const dev = device();
  const { events, t } = sendImage(dev, firmware, 1024, signer512);
  const packets = ofType(events, "packet");
  assert(packets.slice(0, -1).every((p) => p.outcome === "accepted"), "every block accepted");
  assertEquals(packets.at(-1)?.outcome, "end");
  // 11 full sectors written as they fill, then the end packet's flush of 1,808 bytes.
  assertEquals(writes(events), Array.from({ length: 12 }, (_, i) => APP + i * SECTOR));
  assertEquals(dev.flash.subarray(APP, APP + firmware.length), firmware);
  assert(dev.appIsValid());
  const boot = dev.advance(t + PROFILES.instant!.rebootMs);
  assertEquals(ofType(boot, "boot"), [
    {
      type: "boot",
      at: t + PROFILES.instant!.rebootMs,
      mode: "app",
      boot: "ok",
      bootloaderOverwritten: false,
    },
  ]);
  assertEquals(dev.mode, "app");
  // In app mode the OTA port is closed: nothing answers OTA packets any more.
  const after = send(dev, t + 1000, makePacket(99, 0, block(256, 0), signer512));
  assertEquals(outcomes(after), ["not-listening"]);
  assertEquals(ofType(after, "reply"), []);
});

Deno.test("DeviceModel: an image with a broken MD5 fails the boot check and returns to OTA mode, buffer clean", () => {
  const broken = firmware.slice();
  broken[broken.length - 1] = broken[broken.length - 1]! ^ 0xff; // last byte of the MD5 trailer
  const dev = device();
  const { t } = sendImage(dev, broken, 1024, signer512);
  assertEquals(dev.flash.subarray(APP, APP + broken.length), broken);
  const boot = dev.advance(t + PROFILES.instant!.rebootMs);
  assertEquals(ofType(boot, "boot").map((b) => [b.mode, b.boot, b.bootloaderOverwritten]), [
    ["ota", "fail", false],
  ]);
  assertEquals(dev.mode, "ota");
  assertEquals(dev.session, { expected: 0, bufferedBytes: 0 });
});

Deno.test({
  // docs/device.md, "Wire protocol", rule 2: "`len == 0` → write the buffer, reboot".
  name: "DeviceModel treats any signed len-0 packet as the end, whatever its offset",
  fn() {
    const dev = device();
    send(dev, 0, makePacket(1, 0, block(256, 1), signer512));
    const events = send(dev, 1, makePacket(2, 256, new Uint8Array(0), signer512));
    assertEquals(outcomes(events), ["end"]);
    assertEquals(ofType(events, "reply"), []);
    assertEquals(writes(events), [APP]);
    assertEquals(ofType(events, "reboot").map((e) => e.reason), ["end-packet"]);
  },
});

Deno.test({
  // docs/device.md, "Wire protocol", rule 1: the drops are a bad signature, a payload not
  // 36 bytes, a SHA1 mismatch.
  name: "DeviceModel does not check the vestigial key16 bytes of the signed block",
  fn() {
    const dev = device();
    const region = signedRegion(0, block(256, 1));
    const sha1 = new Uint8Array(createHash("sha1").update(region).digest());
    const digestBlock = concat([new Uint8Array(16).fill(0x02), sha1]);
    const packet = withSeq(1, concat([region, signer512.sign(digestBlock)]));
    assertEquals(outcomes(send(dev, 0, packet)), ["accepted"]);
  },
});

// ---- Timers: PKT_WAIT_MS and IDLE_REBOOT_MS ----------------------------------------------

Deno.test("DeviceModel restarts the session 10 s after the last confirmation, keeping the buffer", () => {
  const dev = device();
  send(dev, 1000, makePacket(1, 0, block(256, 1), signer512));
  assertEquals(dev.advance(10999), []);
  assertEquals(dev.nextWakeup(), 11000);
  assertEquals(dev.advance(11000), [{ type: "session-restart", at: 11000, staleBytes: 256 }]);
  // Expected offset back to 0; the 256 bytes stay in the buffer (no buf_init).
  assertEquals(dev.session, { expected: 0, bufferedBytes: 256 });
});

Deno.test("DeviceModel: the stale bytes after a session restart are the confirmed bytes mod 4096", () => {
  const dev = device();
  for (let i = 0; i < 5; i++) send(dev, i, makePacket(i + 1, i * 1024, block(1024, i), signer512));
  const events = dev.advance(4 + 10000);
  assertEquals(ofType(events, "session-restart"), [
    { type: "session-restart", at: 10004, staleBytes: 5120 % 4096 },
  ]);
  assertEquals(dev.session, { expected: 0, bufferedBytes: 1024 });
});

Deno.test("DeviceModel: a duplicate is a confirmation and pushes the session timer back", () => {
  const dev = device();
  send(dev, 0, makePacket(1, 0, block(256, 1), signer512));
  assertEquals(outcomes(send(dev, 8000, makePacket(2, 0, block(256, 1), signer512))), [
    "duplicate",
  ]);
  assertEquals(dev.advance(17999), []);
  assertEquals(dev.advance(18000).map((e) => e.type), ["session-restart"]);
});

Deno.test("DeviceModel: packets at an unexpected offset do not keep the session alive", () => {
  const dev = device();
  send(dev, 0, makePacket(1, 0, block(256, 0), signer512));
  send(dev, 1, makePacket(2, 256, block(256, 1), signer512));
  // A new deploy starts at offset 0 while the device expects 512: not confirmed.
  assertEquals(outcomes(send(dev, 8000, makePacket(1, 0, block(256, 0), signer512))), [
    "unexpected-offset",
  ]);
  assertEquals(dev.advance(10000), []);
  assertEquals(dev.advance(10001).map((e) => e.type), ["session-restart"]);
});

Deno.test("DeviceModel: a transfer restarted at offset 0 after a session restart is shifted by the stale bytes", () => {
  const dev = device();
  const stale = block(256, 99);
  send(dev, 0, makePacket(1, 0, stale, signer512));
  dev.advance(10000); // session restart, 256 stale bytes
  const blocks = Array.from({ length: 16 }, (_, i) => block(256, i));
  const events: DeviceEvent[] = [];
  for (let i = 0; i < 15; i++) {
    events.push(...send(dev, 10001 + i, makePacket(i + 1, i * 256, blocks[i]!, signer512)));
  }
  assert(outcomes(events).every((o) => o === "accepted"));
  // 256 stale + 15 × 256 fill the buffer after offset 3584: APP + 3840 rounds down to APP.
  assertEquals(writes(events), [APP]);
  assertEquals(dev.flash.subarray(APP, APP + SECTOR), concat([stale, ...blocks.slice(0, 15)]));
  // The device counts 3840 bytes where the client sent 3840: every later sector is 256 late.
  assertEquals(dev.session, { expected: 3840, bufferedBytes: 0 });
});

Deno.test("DeviceModel: a 4096-byte packet at offset 0 overflows the stale bytes of an old session", () => {
  const dev = device({ mtu: 8192 });
  send(dev, 0, makePacket(1, 0, block(256, 1), signer512));
  dev.advance(10000);
  const events = send(dev, 10001, makePacket(2, 0, block(4096, 2), signer512));
  assertEquals(outcomes(events), ["overflow"]);
  assertEquals(ofType(events, "reply"), [], "an unconfirmed packet at offset 0 tells nothing");
});

Deno.test("DeviceModel: an end packet at expected offset 0 with stale bytes overwrites the sector below the app", () => {
  const dev = device();
  const stale = block(256, 1);
  send(dev, 0, makePacket(1, 0, stale, signer512));
  assertEquals(dev.advance(10000).map((e) => e.type), ["session-restart"]);
  const events = send(dev, 10001, makeEndPacket(2, signer512));
  assertEquals(outcomes(events), ["end"]);
  // Offset 0 is 4096-aligned, so the flush goes one sector back: 0x3b000.
  assertEquals(ofType(events, "flash-write"), [
    { type: "flash-write", at: 10001, address: APP - SECTOR, belowApp: true },
  ]);
  assertEquals(APP - SECTOR, 0x3b000);
  assert(dev.bootloaderOverwritten);
  const below = dev.flash.subarray(APP - SECTOR, APP);
  assertEquals(below.subarray(0, 256), stale);
  assert(below.subarray(256).every((b) => b === 0xff));
  const boot = ofType(dev.advance(10001 + PROFILES.instant!.rebootMs), "boot");
  assertEquals(boot.map((b) => b.bootloaderOverwritten), [true]);
});

Deno.test("DeviceModel: one confirmed packet at offset 0 then the end packet cleans up safely after a session restart", () => {
  // A device with a valid app, put in OTA mode, left with stale bytes by an old session.
  const flash = blankFlash();
  flash.set(firmware, APP);
  const dev = device({ flash });
  const stale = block(256, 1);
  send(dev, 0, makePacket(1, 0, stale, signer512));
  assertEquals(dev.advance(10000), [{ type: "session-restart", at: 10000, staleBytes: 256 }]);
  // Step 1: one packet at offset 0, confirmed.
  const probe = block(256, 2);
  const confirmed = send(dev, 10001, makePacket(1, 0, probe, signer512));
  assertEquals(outcomes(confirmed), ["accepted"]);
  assertEquals(ofType(confirmed, "reply").length, 1);
  // Step 2: the end packet at once. Expected is 256, so the flush lands at the app offset.
  const end = send(dev, 10002, makeEndPacket(2, signer512));
  assertEquals(ofType(end, "flash-write"), [
    { type: "flash-write", at: 10002, address: APP, belowApp: false },
  ]);
  assert(!dev.bootloaderOverwritten);
  assert(dev.flash.subarray(0, APP).every((b) => b === 0xff), "nothing below the app offset");
  assertEquals(dev.flash.subarray(APP, APP + 512), concat([stale, probe]));
  // Step 3: the app no longer passes the check; the device is back in OTA mode, clean.
  const boot = ofType(dev.advance(10002 + PROFILES.instant!.rebootMs), "boot");
  assertEquals(boot.map((b) => [b.mode, b.boot, b.bootloaderOverwritten]), [
    ["ota", "fail", false],
  ]);
  assertEquals(dev.session, { expected: 0, bufferedBytes: 0 });
  // Step 4: the whole image from offset 0 boots.
  const { t } = sendImage(dev, firmware, 1024, signer512, 20000);
  const final = ofType(dev.advance(t + PROFILES.instant!.rebootMs), "boot");
  assertEquals(final.map((b) => [b.mode, b.boot]), [["app", "ok"]]);
});

Deno.test("DeviceModel reboots when no first packet arrives within idleRebootMs", () => {
  const dev = device();
  assertEquals(dev.nextWakeup(), 60000);
  assertEquals(dev.advance(59999), []);
  const events = dev.advance(60000 + PROFILES.instant!.rebootMs);
  assertEquals(events, [
    { type: "reboot", at: 60000, reason: "idle" },
    // The flash holds no valid app: boot8266 goes back to OTA mode.
    {
      type: "boot",
      at: 60000 + PROFILES.instant!.rebootMs,
      mode: "ota",
      boot: "fail",
      bootloaderOverwritten: false,
    },
  ]);
});

Deno.test("DeviceModel does not idle-reboot once a first packet arrived", () => {
  const dev = device();
  send(dev, 100, makePacket(1, 0, block(256, 1), signer512));
  const events = dev.advance(65000);
  assertEquals(events.map((e) => e.type), ["session-restart"]);
});

// ---- Re-entrancy (esp8266 profile) --------------------------------------------------------

// 512-bit key on the esp8266 profile: log 13 ms (40 % before the check), check 0.25 ms.
// A packet started at 0 reaches its last ets_loop_iter() at 5.2 + 0.125 ms and ends at 13.25.

Deno.test("DeviceModel: a datagram already waiting at the signature check is handled inside it; the first is lost", () => {
  const dev = device({ profile: esp8266 });
  dev.receive(0, makePacket(1, 0, block(256, 0), signer512));
  dev.receive(1, makePacket(2, 256, block(256, 1), signer512)); // sent back to back
  const events = dev.advance(100);
  // The second sees the old expected offset (0) and is dropped; the first is lost too.
  assertEquals(
    ofType(events, "packet").map((p) => [p.seq, p.outcome, p.nested ?? false]),
    [[2, "unexpected-offset", true], [1, "lost-in-nested-check", false]],
  );
  assertEquals(ofType(events, "reply"), []);
  assertEquals(dev.session, { expected: 0, bufferedBytes: 0 });
});

Deno.test("DeviceModel: a nested datagram carrying exactly the expected offset is accepted", () => {
  const dev = device({ profile: esp8266 });
  dev.receive(0, makePacket(1, 0, block(256, 0), signer512));
  const retry = makePacket(2, 0, block(256, 0), signer512); // a retransmission, new seq
  dev.receive(1, retry);
  const events = dev.advance(100);
  assertEquals(
    ofType(events, "packet").map((p) => [p.seq, p.outcome, p.nested ?? false]),
    [[2, "accepted", true], [1, "lost-in-nested-check", false]],
  );
  assertEquals(ofType(events, "reply").map((r) => r.data), [makeReply(retry)]);
  assertEquals(dev.session, { expected: 256, bufferedBytes: 256 });
});

Deno.test("DeviceModel: a nested datagram repeating the previous packet is re-acknowledged", () => {
  const dev = device({ profile: esp8266 });
  dev.receive(0, makePacket(1, 0, block(256, 0), signer512));
  dev.advance(100);
  dev.receive(200, makePacket(2, 256, block(256, 1), signer512));
  const dup = makePacket(3, 0, block(256, 0), signer512);
  dev.receive(201, dup);
  const events = dev.advance(300);
  assertEquals(
    ofType(events, "packet").map((p) => [p.seq, p.outcome, p.nested ?? false]),
    [[3, "duplicate", true], [2, "lost-in-nested-check", false]],
  );
  assertEquals(ofType(events, "reply").map((r) => r.data), [makeReply(dup)]);
  assertEquals(dev.session, { expected: 256, bufferedBytes: 256 });
});

Deno.test("DeviceModel: a datagram arriving after the check point waits and is handled next, in order", () => {
  const dev = device({ profile: esp8266 });
  const first = makePacket(1, 0, block(256, 0), signer512);
  const second = makePacket(2, 256, block(256, 1), signer512);
  dev.receive(0, first);
  dev.receive(10, second); // after the check point (5.325 ms), before the first ends (13.25)
  const events = dev.advance(100);
  assertEquals(
    ofType(events, "packet").map((p) => [p.seq, p.outcome, p.nested ?? false]),
    [[1, "accepted", false], [2, "accepted", false]],
  );
  const replies = ofType(events, "reply");
  assertEquals(replies.map((r) => r.data), [makeReply(first), makeReply(second)]);
  assertAbout(replies[0]?.at, 13.25, "first reply");
  assertAbout(replies[1]?.at, 26.5, "second reply (starts when the first ends)");
  assertEquals(dev.session, { expected: 512, bufferedBytes: 512 });
  // The bench reads the device's idle time from when each packet arrived and began.
  assertEquals(
    ofType(events, "packet").map((p) => [p.arrived, p.started]),
    [[0, 0], [10, 13.25]],
  );
});

Deno.test("DeviceModel drops a datagram when the receive queue (rxq 2) is full", () => {
  const dev = device({ profile: esp8266, rxq: 2 });
  dev.receive(0, makePacket(1, 0, block(256, 0), signer512)); // being handled
  dev.receive(1, makePacket(2, 256, block(256, 1), signer512)); // queued
  dev.receive(1, makePacket(3, 512, block(256, 2), signer512)); // queued
  dev.receive(1, makePacket(4, 768, block(256, 3), signer512)); // no room
  const full = ofType(dev.advance(1), "packet");
  assertEquals(full, [
    { type: "packet", at: 1, seq: 4, offset: 768, len: 256, outcome: "queue-full" },
  ]);
});

// ---- Timing (esp8266 profile) -------------------------------------------------------------

Deno.test("DeviceModel replies logMs + check time after the start, plus sectorWriteMs for the sector-filling packet", () => {
  // 2048-bit key: check 4 ms, so a reply comes 13 + 4 = 17 ms after the start.
  const dev = device({ modulus: key2048.modulus, profile: esp8266 });
  const starts = [0, 100, 200, 300];
  const events: DeviceEvent[] = [];
  for (const [i, start] of starts.entries()) {
    dev.receive(start, makePacket(i + 1, i * 1024, block(1024, i), signer2048));
    events.push(...dev.advance(start + 99));
  }
  const replies = ofType(events, "reply");
  assertEquals(replies.length, 4);
  for (const [i, start] of starts.entries()) {
    const sector = i === 3 ? esp8266.sectorWriteMs : 0;
    assertAbout(replies[i]?.at, start + esp8266.logMs + 4 + sector, `reply ${i + 1}`);
  }
  assertEquals(writes(events), [APP]);
});

// ---- Entering OTA mode ---------------------------------------------------------------------

Deno.test("DeviceModel: RTC memory 'yaotaota' then reset() enters OTA mode although the app is valid", () => {
  const flash = blankFlash();
  flash.set(firmware, APP);
  const dev = device({ flash, start: "boot", profile: esp8266 });
  assertEquals(ofType(dev.advance(0), "boot").map((b) => [b.mode, b.boot]), [["app", "ok"]]);
  dev.rtcMemory = new TextEncoder().encode("yaotaota");
  dev.reset(100);
  assertEquals(dev.advance(100 + esp8266.rebootMs - 1), [
    { type: "reboot", at: 100, reason: "reset" },
  ]);
  assertEquals(dev.advance(100 + esp8266.rebootMs), [
    {
      type: "boot",
      at: 100 + esp8266.rebootMs,
      mode: "ota",
      boot: "ota-requested",
      bootloaderOverwritten: false,
    },
  ]);
  assertEquals(dev.mode, "ota");
  // boot8266 overwrites the magic: the next reset runs the app again.
  assert(new TextDecoder().decode(dev.rtcMemory) !== "yaotaota", "the magic is consumed");
  dev.reset(5000);
  const boot = ofType(dev.advance(5000 + esp8266.rebootMs), "boot");
  assertEquals(boot.map((b) => [b.mode, b.boot]), [["app", "ok"]]);
});

Deno.test("DeviceModel: reset() without the RTC magic and with a valid app runs the app", () => {
  const flash = blankFlash();
  flash.set(firmware, APP);
  const dev = device({ flash, start: "boot" });
  dev.advance(0);
  dev.reset(10);
  const events = dev.advance(10 + PROFILES.instant!.rebootMs);
  assertEquals(events, [
    { type: "reboot", at: 10, reason: "reset" },
    {
      type: "boot",
      at: 10 + PROFILES.instant!.rebootMs,
      mode: "app",
      boot: "ok",
      bootloaderOverwritten: false,
    },
  ]);
  assertEquals(dev.mode, "app");
});

// ---- Rebooting: silent, in every profile ---------------------------------------------------

for (const profile of Object.values(PROFILES)) {
  Deno.test(`DeviceModel (${profile.name}): a rebooting device drops every datagram silently until it boots`, () => {
    const dev = device({ profile });
    // One packet every 200 ms: each is handled before the next (the profile's costs).
    const events: DeviceEvent[] = [];
    let seq = 1;
    for (let offset = 0; offset < firmware.length; offset += 1024) {
      const data = firmware.subarray(offset, offset + 1024);
      events.push(...send(dev, seq * 200, makePacket(seq, offset, data, signer512)));
      seq++;
    }
    events.push(...dev.advance(seq * 200 - 1));
    assertEquals(ofType(events, "reply").length, seq - 1, "every packet confirmed");
    events.push(...send(dev, seq * 200, makeEndPacket(seq, signer512)));
    events.push(...dev.advance(seq * 200 + 100));
    const reboots = ofType(events, "reboot");
    assertEquals(reboots.map((e) => e.reason), ["end-packet"]);
    const t = reboots[0]!.at;
    assertEquals(dev.rebootingUntil, t + profile.rebootMs);
    // The original client's other two end packets (0.1 s apart), and a data packet: each
    // vanishes. No reply, nothing written, the device stays down.
    const during = [
      ...send(dev, t + 100, makeEndPacket(90, signer512)),
      ...send(dev, t + 200, makeEndPacket(91, signer512)),
      ...send(dev, t + profile.rebootMs - 1, makePacket(92, 0, block(256, 3), signer512)),
    ];
    assertEquals(outcomes(during), ["rebooting", "rebooting", "rebooting"]);
    assertEquals(ofType(during, "reply"), []);
    assertEquals(writes(during), []);
    assertEquals(ofType(during, "boot"), []);
    assertEquals(dev.mode, "rebooting");
    const boot = dev.advance(t + profile.rebootMs);
    assertEquals(ofType(boot, "boot").map((b) => [b.at, b.mode, b.boot]), [
      [t + profile.rebootMs, "app", "ok"],
    ]);
    assertEquals(dev.rebootingUntil, undefined);
    assertEquals(dev.flash.subarray(APP, APP + firmware.length), firmware);
  });
}

Deno.test("DeviceModel: every profile's reboot outlasts the original client's three end packets", () => {
  // ota_client.py `ota FILE` sends each end packet through its 0.3 s receive timeout: the
  // third leaves 0.6 s after the first, which rebooted the device (docs/device.md,
  // "Wire protocol"). A shorter reboot would have it refused by a closed port.
  for (const profile of Object.values(PROFILES)) {
    assert(profile.rebootMs >= 900, `${profile.name}: rebootMs ${profile.rebootMs}`);
  }
});

Deno.test("DeviceModel: an image that fails boot8266's check comes back in OTA mode after the silent reboot", () => {
  const broken = firmware.slice();
  broken[broken.length - 1] = broken[broken.length - 1]! ^ 0xff;
  const dev = device();
  const { t } = sendImage(dev, broken, 1024, signer512);
  const rebootMs = PROFILES.instant!.rebootMs;
  assertEquals(outcomes(send(dev, t + rebootMs - 1, makePacket(50, 0, block(256, 4), signer512))), [
    "rebooting",
  ]);
  const back = send(dev, t + rebootMs, makePacket(51, 0, block(256, 4), signer512));
  assertEquals(ofType(back, "boot").map((b) => [b.mode, b.boot]), [["ota", "fail"]]);
  assertEquals(outcomes(back), ["accepted"]);
  assertEquals(ofType(back, "reply").length, 1);
});
