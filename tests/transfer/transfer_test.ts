/**
 * The transfer engine against the device model over the link model, on a fake clock:
 * every failure path, and what left the socket.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { Harness, type HarnessResult } from "../_harness.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import { AUTO_BLOCKS, liveSource } from "../../lib/transfer/packet_source.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import type { LinkOptions } from "../../lib/sim/link.ts";
import type { TransferOptions } from "../../lib/transfer/engine.ts";
import { equalBytes } from "../../lib/_bytes.ts";
import { vectorText } from "../_helpers.ts";

const APP = 0x3c000;
const key512 = parsePrivateKey(vectorText("test-key-512.pem"));
const key2048 = parsePrivateKey(vectorText("test-key-2048.pem"));
const image = makeSampleFirmware({ size: 48 * 1024, seed: 3 });

interface Setup {
  link?: LinkOptions;
  bits?: 512 | 2048;
  deviceKey?: 512 | 2048;
  firmware?: Uint8Array;
  blocks?: number[];
  profile?: "instant" | "esp8266";
  mtu?: number;
  rxq?: number;
  engine?: Partial<TransferOptions>;
}

function harness(s: Setup = {}): Harness {
  const key = s.bits === 2048 ? key2048 : key512;
  const deviceKey = (s.deviceKey ?? s.bits) === 2048 ? key2048 : key512;
  const firmware = s.firmware ?? image;
  return new Harness(
    {
      modulus: deviceKey.modulus,
      flash: new Uint8Array(0x100000).fill(0xff),
      profile: PROFILES[s.profile ?? "esp8266"],
      mtu: s.mtu,
      rxq: s.rxq,
    },
    { delayMs: 3, seed: 1, ...s.link },
    liveSource(firmware, nativeSigner(key), s.blocks ?? AUTO_BLOCKS, false),
  );
}

function options(h: Harness, s: Setup = {}): TransferOptions {
  return h.options({ bootCheck: true, ...s.engine });
}

function flashHolds(h: Harness, firmware = image): boolean {
  return equalBytes(h.device.flash.subarray(APP, APP + firmware.length), firmware);
}

/** The rule of issue 7: no end packet unless every byte before it is confirmed in the device's current session. */
function assertEndPacketsSafe(r: HarnessResult): void {
  // A packet of length 0 is an end packet to the device (rule 2): only ever on purpose.
  assert(r.sent.every((s) => s.end || s.len > 0), "a data packet of length 0 left the socket");
  for (const s of r.sent.filter((x) => x.end)) {
    assert(
      s.deviceExpected > 0 || s.deviceBuffered === 0,
      `end packet (${s.kind}) at ${
        s.at.toFixed(0)
      } ms while the device expected offset 0 with ${s.deviceBuffered} stale bytes`,
    );
  }
  assert(
    !r.deviceEvents.some((e) => e.type === "flash-write" && e.belowApp),
    "a flush landed below the app offset",
  );
}

function lastBoot(r: HarnessResult) {
  return r.deviceEvents.findLast((e) => e.type === "boot");
}

Deno.test("TransferEngine sends an image over a clean link: flash equals it and the device boots it", () => {
  const h = harness();
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  assert(flashHolds(h));
  assertEquals(lastBoot(r)?.type === "boot" && lastBoot(r)?.mode, "app");
  assertEquals(r.sent.filter((s) => s.end).length, 1);
  assertEndPacketsSafe(r);
});

Deno.test("TransferEngine survives 10 % loss, 5 % duplication, 5 % reordering, 548-byte datagrams and a 2-place queue", () => {
  for (const seed of [1, 2, 3]) {
    const h = harness({
      link: { loss: 0.1, dup: 0.05, reorder: 0.05, seed },
      mtu: 548,
      rxq: 2,
      bits: 2048,
    });
    h.start(options(h));
    const r = h.run();
    assertEquals(r.outcome?.type, "done", `seed ${seed}`);
    assert(flashHolds(h), `seed ${seed}: flash differs`);
    if (r.outcome?.type === "done") assertEquals(r.outcome.result.block, 256);
    assertEndPacketsSafe(r);
  }
});

Deno.test("TransferEngine completes when the reply to the accepted 1024-byte probe is lost", () => {
  const h = harness({ link: { loseReplies: ["0:1024"] } });
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  if (r.outcome?.type === "done") assertEquals(r.outcome.result.block, 1024);
  assert(flashHolds(h));
  assertEndPacketsSafe(r);
});

Deno.test("TransferEngine recovers from an 11 s outage mid-transfer (2048-bit key, 1024-byte blocks)", () => {
  const h = harness({
    bits: 2048,
    blocks: [1024],
    link: { outage: { afterBytes: 24 * 1024, ms: 11000 } },
  });
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  assert(
    r.deviceEvents.some((e) => e.type === "session-restart" && e.staleBytes > 0),
    "no stale session restart",
  );
  assert(
    r.statuses.some((s) =>
      s.message.includes("device restarted its session — cleaning up, resending")
    ),
  );
  assert(flashHolds(h));
  assertEquals(lastBoot(r)?.type === "boot" && lastBoot(r)?.mode, "app");
  assertEndPacketsSafe(r);
});

Deno.test("TransferEngine fails within the timeout when the outage outlasts it, and sends no end packet", () => {
  const h = harness({ link: { outage: { afterBytes: 20 * 1024, ms: 60000 } } });
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type, "failed");
  if (r.outcome?.type === "failed") assertEquals(r.outcome.failure.kind, "stopped-answering");
  assertEquals(r.sent.filter((s) => s.end).length, 0);
  assert(r.endAt < 40000, `took ${r.endAt} ms`);
});

Deno.test("TransferEngine: a deploy started while the device is still inside an interrupted one cleans up and completes", () => {
  const h = harness();
  h.start(options(h));
  h.run(600_000, () => h.device.session.expected >= 18 * 1024);
  h.stopped = true; // Ctrl-C: the old sender is gone mid-transfer
  h.idle(50);
  assert(h.device.session.expected > 0 && h.device.session.bufferedBytes > 0);
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  assert(r.statuses.some((s) => s.message.includes("earlier session")));
  assert(flashHolds(h));
  assertEquals(lastBoot(r)?.type === "boot" && lastBoot(r)?.mode, "app");
  assertEndPacketsSafe(r);
});

Deno.test("TransferEngine: after a session that restarted with stale bytes, the boot check catches the shifted image and the second attempt boots", () => {
  const h = harness();
  h.start(options(h));
  h.run(600_000, () => h.device.session.expected >= 18 * 1024 + 512);
  h.stopped = true;
  h.idle(12000); // past PKT_WAIT_MS: expected offset 0, stale bytes kept
  assertEquals(h.device.session.expected, 0);
  assert(h.device.session.bufferedBytes > 0);
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  if (r.outcome?.type === "done") {
    assertEquals(r.outcome.result.attempts, 2);
    assertEquals(r.outcome.result.bootCheck, "passed");
  }
  assert(r.statuses.some((s) => s.message.includes("did not boot the new image")));
  assert(flashHolds(h));
  assertEndPacketsSafe(r);
});

Deno.test("TransferEngine reports an image that fails boot8266's check after the second attempt", () => {
  const bad = image.slice();
  bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff; // MD5 trailer broken
  const h = harness({ firmware: bad });
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type, "failed");
  if (r.outcome?.type === "failed") {
    assertEquals(r.outcome.failure, { kind: "boot-failed", attempts: 2 });
  }
  assertEndPacketsSafe(r);
});

Deno.test("TransferEngine --no-boot-check skips the watch after the end packet", () => {
  const h = harness();
  h.start(options(h, { engine: { bootCheck: false } }));
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  if (r.outcome?.type === "done") assertEquals(r.outcome.result.bootCheck, "skipped");
});

Deno.test("TransferEngine gives up on a device that never answers, having sent no end packet", () => {
  const h = harness({ link: { loss: 1 } });
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type, "failed");
  if (r.outcome?.type === "failed") assertEquals(r.outcome.failure.kind, "no-answer");
  assertEquals(r.sent.filter((s) => s.end).length, 0);
  assert(r.endAt >= 15000 && r.endAt < 16000, `gave up at ${r.endAt} ms`);
});

Deno.test("TransferEngine: a device built for another key answers nothing and nothing is written", () => {
  const h = harness({ deviceKey: 2048 });
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type === "failed" && r.outcome.failure.kind, "no-answer");
  assert(!r.deviceEvents.some((e) => e.type === "flash-write"));
  assertEquals(r.sent.filter((s) => s.end).length, 0);
});

Deno.test("TransferEngine: the end-packet rule holds on every path (random impairments and outages)", () => {
  for (let seed = 1; seed <= 12; seed++) {
    const h = harness({
      link: {
        loss: 0.05 * (seed % 3),
        dup: 0.03,
        reorder: 0.03,
        seed,
        outage: seed % 2
          ? { afterBytes: (seed * 3000) % 40000 + 1024, ms: 8000 + seed * 400 }
          : undefined,
      },
    });
    h.start(options(h));
    const r = h.run();
    assertEndPacketsSafe(r);
    if (r.outcome?.type === "done") assert(flashHolds(h), `seed ${seed}`);
  }
});

Deno.test("TransferEngine paces packets: no two meet inside a signature check on a clean link", () => {
  const h = harness({ bits: 2048, link: { delayMs: 5 } });
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  const nested = r.deviceEvents.filter((e) =>
    e.type === "packet" && (e.nested || e.outcome === "lost-in-nested-check")
  );
  assertEquals(nested.length, 0);
  const status = r.statuses.map((s) => s.message).join("\n");
  assertStringIncludes(status, "block size 1024 bytes");
});

Deno.test("TransferEngine never sends a zero-length data packet, even for a tiny image with a lost probe reply", () => {
  for (const size of [300, 700, 1024, 2048]) {
    const tiny = new Uint8Array(size).map((_, i) => i * 7);
    const h = new Harness(
      {
        modulus: key512.modulus,
        flash: new Uint8Array(0x100000).fill(0xff),
        profile: PROFILES.esp8266,
      },
      { delayMs: 3, loseReplies: [`0:${Math.min(size, 1024)}`] },
      liveSource(tiny, nativeSigner(key512), AUTO_BLOCKS, false),
    );
    h.start(options(h));
    const r = h.run();
    assert(r.outcome !== undefined, `size ${size}: no outcome`);
    assertEndPacketsSafe(r);
  }
});

Deno.test("TransferEngine: a tiny image, small datagrams and a session restart never flush below the app", () => {
  const tiny = new Uint8Array(700).map((_, i) => i * 3);
  const h = new Harness(
    {
      modulus: key512.modulus,
      flash: new Uint8Array(0x100000).fill(0xff),
      profile: PROFILES.esp8266,
      mtu: 548,
    },
    { delayMs: 3, outage: { afterBytes: 512, ms: 10500 } },
    liveSource(tiny, nativeSigner(key512), AUTO_BLOCKS, false),
  );
  h.start(options(h));
  assertEndPacketsSafe(h.run());
});

Deno.test("TransferEngine: replies that waited out a stalled sender (over PKT_WAIT_MS) never lead to an end packet", () => {
  const odd = makeSampleFirmware({ size: 48 * 1024 + 700, seed: 13 });
  const h = harness({ firmware: odd });
  h.stall = { when: (offset, len) => offset + len === odd.length, ms: 12000 };
  h.start(options(h));
  const r = h.run();
  assert(
    r.deviceEvents.some((e) => e.type === "session-restart" && e.staleBytes > 0),
    "no stale restart",
  );
  assertEndPacketsSafe(r);
  assertEquals(r.outcome?.type, "done");
  assert(flashHolds(h, odd));
});

Deno.test("TransferEngine: a reply lost right after a clean-up does not stall the transfer", () => {
  const h = harness({
    bits: 2048,
    blocks: [1024],
    link: { outage: { afterBytes: 24 * 1024, ms: 11000 }, loseReplies: ["256:768"] },
  });
  h.start(options(h));
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  assert(flashHolds(h));
  assertEndPacketsSafe(r);
  if (r.outcome?.type === "done") assertEquals(r.outcome.result.recoveries, 1);
});
