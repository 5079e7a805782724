/**
 * The quiet board (`esp8266-quiet`: no log line per packet, a ~4 ms signature check) on the
 * fake clock: the narrowest window in which a packet may reach the device (docs/device.md,
 * "Re-entrancy"). No packet may meet another inside a signature check, and the flash is
 * byte-exact.
 */
import { assert, assertEquals } from "../_assert.ts";
import { Harness, type HarnessResult } from "../_harness.ts";
import type { TransferTrace } from "../../lib/transfer/engine.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import { AUTO_BLOCKS, liveSource } from "../../lib/transfer/packet_source.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import type { LinkOptions } from "../../lib/sim/link.ts";
import { equalBytes } from "../../lib/_bytes.ts";
import { parseReply } from "../../lib/format/packet.ts";
import { vectorText } from "../_helpers.ts";

const APP = 0x3c000;
const key = parsePrivateKey(vectorText("test-key-2048.pem"));
const image = makeSampleFirmware({ size: 24 * 1024, seed: 3 });

/** A transfer on the fake clock; `records`, if given, gets its trace. */
function run(
  link: LinkOptions,
  mtu: number,
  jitterMs = 0,
  records?: TransferTrace[],
): { h: Harness; r: HarnessResult } {
  const h = new Harness(
    {
      modulus: key.modulus,
      flash: new Uint8Array(0x100000).fill(0xff),
      profile: PROFILES["esp8266-quiet"],
      mtu,
    },
    { delayMs: 5, ...link },
    liveSource(image, nativeSigner(key), AUTO_BLOCKS, false),
  );
  h.timerJitterMs = jitterMs;
  h.start(records ? { ...h.options(), trace: (t) => records.push(t) } : h.options());
  return { h, r: h.run() };
}

function nested(r: HarnessResult): string[] {
  return r.deviceEvents.flatMap((e) =>
    e.type === "packet" && (e.nested || e.outcome === "lost-in-nested-check")
      ? [`${e.offset}+${e.len} ${e.outcome} at ${e.at.toFixed(1)} ms`]
      : []
  );
}

function assertClean(h: Harness, r: HarnessResult, what: string): void {
  assertEquals(r.outcome?.type, "done", what);
  assertEquals(nested(r), [], `${what}: packets met inside a signature check`);
  assert(equalBytes(h.device.flash.subarray(APP, APP + image.length), image), `${what}: flash`);
}

Deno.test("Quiet board, MTU 548: the reply before a sector's last packet is lost: the packets after the sector follow each other, not a write that never happens", () => {
  // 11776+256's reply is lost; the device took it and 12032+256 (the sector's last) and
  // wrote the sector. The sender resends both before that reply comes; the second copy is
  // a duplicate to the device, checked and answered, no write. Planned as a write, it held
  // 12544+256 back 10 ms behind 12288+256.
  const { h, r } = run({ loseReplies: ["11776:256"] }, 548);
  assertClean(h, r, "lost reply before a sector's last packet");
  const packets = r.deviceEvents.filter((e) => e.type === "packet");
  assert(
    packets.some((e) => e.type === "packet" && e.offset === 12032 && e.outcome === "duplicate"),
  );
  const start = (offset: number) => {
    const e = packets.find((e) =>
      e.type === "packet" && e.offset === offset && e.outcome === "accepted"
    );
    assert(e?.type === "packet" && e.started !== undefined, `${offset} accepted`);
    return e.started;
  };
  const idle = start(12544) - (start(12288) + PROFILES["esp8266-quiet"]!.check2048Ms);
  assert(idle < 1, `the device waited ${idle.toFixed(1)} ms for 12544+256`);
});

Deno.test("Quiet board, MTU 548: a sector packet whose reply is lost is resent, and its quick duplicate answer does not shrink the sector-write estimate", () => {
  // The device took 3840+256 (the first sector) and wrote flash; only its reply is lost. The
  // resent packet is answered at once as a duplicate: timed, it would say a sector write
  // costs a round trip, and the next sector packet's timer would fire while the device is
  // still writing, its retransmission reaching the device behind other queued packets.
  const { h, r } = run({ loseReplies: ["3840:256"] }, 548);
  assertClean(h, r, "lost sector reply");
});

Deno.test("Quiet board, MTU 548 and 1500, 1 % loss: no packet meets another in a signature check over 3 seeds", () => {
  for (const mtu of [548, 1500]) {
    for (const seed of [1, 2, 3]) {
      const { h, r } = run({ loss: 0.01, seed }, mtu);
      assertClean(h, r, `MTU ${mtu}, seed ${seed}`);
    }
  }
});

Deno.test("Quiet board, MTU 548: with every timer up to 4 ms late, no packet meets another in a signature check", () => {
  for (const seed of [1, 2, 3]) {
    const { h, r } = run({ loss: 0.01, seed }, 548, 4);
    assertClean(h, r, `seed ${seed}`);
  }
});

/**
 * Around the packet at `offset` that was lost: the accepted packet before it, and how long the
 * device sat idle between that one's end and the resend's start.
 */
function aroundResend(r: HarnessResult, offset: number) {
  const accepted = r.deviceEvents.flatMap((e) =>
    e.type === "packet" && e.outcome === "accepted" && !e.nested ? [e] : []
  );
  const i = accepted.findIndex((e) => e.offset === offset);
  const before = accepted[i - 1]!;
  return { accepted, i, before, idle: accepted[i]!.started! - (before.started! + 4) };
}

Deno.test("Quiet board, MTU 548: a lost packet is resent behind the packets in flight, not after waiting them out", () => {
  // 21504+256 is lost on its way; the 4 or 5 packets behind it reach the device and are
  // dropped there ("unexpected offset"), each after its signature check. With replies
  // timing the device steadily, the resend is paced behind the last of them and lands
  // just after its check began: the device sits idle for the round trip that tells the
  // sender, not for the timers of every packet behind it too.
  const { h, r } = run({ losePackets: ["21504:256"] }, 548);
  assertClean(h, r, "one lost packet");
  const { accepted, i, before, idle } = aroundResend(r, 21504);
  const dropped =
    r.deviceEvents.filter((e) =>
      e.type === "packet" && e.outcome === "unexpected-offset" && e.at > before.at &&
      e.at < accepted[i]!.at
    ).length;
  assert(dropped >= 3, `${dropped} packets behind the lost one reached the device`);
  // Waiting out every packet in flight left it idle 36.5 ms here; paced behind them, under 30.
  assert(idle < 30, `the device waited ${idle.toFixed(1)} ms for the resend`);
});

Deno.test("Quiet board, MTU 548: a packet lost twice is resent from the same offset, with the pipeline behind it", () => {
  // 21504+256 and its first resend are both lost on their way. The likeliest cause of an
  // unanswered resend is one more loss: resent from the same offset again, packets paced
  // behind it, the device waits about two retransmission timers. (Before: the next resend
  // went to 21760 as if the device had taken 21504 with every reply lost, then 22016, ...,
  // one packet at a time, each timer doubled, then stop-and-wait: 290–510 ms idle, then 13
  // packets each with a round trip of idle before it.)
  const { h, r } = run({ losePackets: ["21504:256", "21504:256"] }, 548);
  assertClean(h, r, "one packet lost twice");
  const { accepted, i, idle } = aroundResend(r, 21504);
  assert(idle < 100, `the device waited ${idle.toFixed(1)} ms for the second resend`);
  // The pipeline resumes: of the 12 packets after it, none waits a round trip (stop-and-wait).
  const after = accepted.slice(i, i + 13);
  const waits = after.slice(1).map((e, k) => e.started! - (after[k]!.started! + 4));
  const slow = waits.filter((w) => w > 8 && w < 40);
  assert(slow.length <= 1, `gaps after the resend: ${waits.map((w) => w.toFixed(1)).join(", ")}`);
});

Deno.test("Quiet board, MTU 548: the pipeline deepens before the first sector is written, on the round trips of packets that reached the device idle", () => {
  // While the estimate comes down from a whole round trip, the packets reach an idle device
  // and time no service; the ramp's own gaps kept the model "not steady", 3 packets deep
  // (the device idle a fifth of the time), until the third sector on this clock and for
  // 0.45 s on real sockets. Their round trips are idle round trips, and they scatter little.
  const records: TransferTrace[] = [];
  const { h, r } = run({}, 548, 0, records);
  assertClean(h, r, "clean link");
  const deeper = records.find((t) => t.type === "pacing" && t.pacing.depth > 3);
  const written = r.deviceEvents.find((e) =>
    e.type === "packet" && e.outcome === "accepted" && e.offset + e.len === 4096
  );
  assert(deeper && written, "the pipeline deepened and the first sector was written");
  assert(
    deeper.at < written.at,
    `deeper at ${deeper.at.toFixed(1)} ms, the first sector written at ${written.at.toFixed(1)} ms`,
  );
});

Deno.test("Quiet board, MTU 1500: one reply held up 2 ms behind the first sector write sets no service estimate alone", () => {
  // The reply to 3072+1024 (the sector's last packet) comes 2 ms late and the next on
  // time: a first gap of 2.0 ms for a 4 ms service. The estimate that took the smallest gap
  // while fewer than six were known planned the packets after it on 2 ms, and they met in
  // pairs in each other's checks (4 here).
  const { h, r } = run({ holdReplies: { "3072:1024": 2 } }, 1500);
  assertClean(h, r, "a reply held up behind the first sector write");
});

Deno.test("Quiet board, MTU 548, a jittery link (0.5 ms mean each way, a long tail) and late timers: the flash is byte-exact", () => {
  // Datagrams held up by more than the 2 ms between a check's start and its end meet the
  // next one on the device (docs/device.md, "Re-entrancy"): both are lost and resent.
  for (const seed of [1, 2]) {
    const { h, r } = run({ loss: 0.01, seed, jitterMs: 0.5 }, 548, 0.5);
    assertEquals(r.outcome?.type, "done", `seed ${seed}`);
    assert(
      equalBytes(h.device.flash.subarray(APP, APP + image.length), image),
      `seed ${seed}: flash`,
    );
  }
});

Deno.test("After a trigger, probes go every 100 ms until the rebooting board first answers, which it does within 0.12 s of its boot", () => {
  const flash = new Uint8Array(0x100000).fill(0xff);
  flash.set(image, APP);
  const h = new Harness(
    { modulus: key.modulus, flash, profile: PROFILES["esp8266-quiet"], start: "boot" },
    { delayMs: 5 },
    liveSource(image, nativeSigner(key), AUTO_BLOCKS, false),
  );
  // The trigger: the app sets the RTC magic and resets; boot8266 comes up in OTA mode.
  h.run(10);
  h.device.rtcMemory = new TextEncoder().encode("yaotaota");
  h.device.reset(h.now);
  h.start(h.options({ freshSession: true }));
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  const boot = r.deviceEvents.find((e) => e.type === "boot" && e.mode === "ota")!;
  const blind = h.sent.filter((s) => s.kind === "probe" && s.at < boot.at);
  const gaps = blind.slice(1).map((s, i) => s.at - blind[i]!.at);
  assert(gaps.length >= 10, `${gaps.length} probes while the board rebooted`);
  assert(Math.max(...gaps) <= 100, `probes ${gaps.map((g) => g.toFixed(0))} ms apart`);
  const answered = r.deviceEvents.find((e) => e.type === "reply" && e.at > boot.at)!;
  assert(
    answered.at - boot.at <= 120,
    `first answer ${(answered.at - boot.at).toFixed(0)} ms after the boot`,
  );
});

Deno.test("Quiet board, MTU 548, a jittery link: a lost packet is resent behind the packets in flight, not held until they are all overdue", () => {
  // With replies that scatter (1 ms mean jitter each way) the model is not steady and
  // keeps 3 packets in flight. 21504+256 is lost; the resend is still paced behind the
  // last packet sent (into no check). Holding it until every packet behind had timed out
  // left a quiet board idle 70-100 ms when one of them filled a sector (on real sockets
  // under a CPU hog, 0.2-2.3 s of idle device per 160 KiB).
  const records: TransferTrace[] = [];
  const { h, r } = run({ jitterMs: 1, seed: 2, losePackets: ["21504:256"] }, 548, 0, records);
  assertEquals(r.outcome?.type, "done");
  assert(equalBytes(h.device.flash.subarray(APP, APP + image.length), image), "flash");
  const timeout = records.find((t) => t.type === "timeout" && t.what.includes("offset 21504"));
  assert(timeout?.type === "timeout" && /^lost: /.test(timeout.then), JSON.stringify(timeout));
  const steady = records.findLast((t) => t.type === "pacing" && t.at < timeout.at);
  assertEquals(
    steady?.type === "pacing" && steady.pacing.steady,
    false,
    "the model was not steady",
  );
  const { idle } = aroundResend(r, 21504);
  assert(idle < 30, `the device waited ${idle.toFixed(1)} ms for the resend`);
});

Deno.test("MTU 548: the resolving packet's answer is an idle round trip, so two stop-and-wait data packets follow it, not three, before pipelining", () => {
  // The 1024- and 512-byte probes never pass; the 256-byte one is answered; the resolving
  // packet at 256 (did the device take a larger probe?) goes alone and is answered. With
  // the probe's, two of the three idle round trips pipelining waits for: one more data
  // packet alone (512), then 768 on its answer, and 1024 before 768's answer.
  const { h, r } = run({}, 548);
  assertClean(h, r, "clean link");
  const kinds = h.sent.slice(0, 5).map((s) => `${s.kind} ${s.offset}+${s.len}`);
  assertEquals(kinds, [
    "probe 0+1024",
    "probe 0+512",
    "probe 0+256",
    "resolve 256+256",
    "data 512+256",
  ]);
  // When the answer to the packet at `offset` reached the sender (5 ms after it left).
  const answered = (offset: number) =>
    r.deviceEvents.find((e) => e.type === "reply" && parseReply(e.data)?.offset === offset)!.at + 5;
  const sentAt = (offset: number) => h.sent.find((s) => s.offset === offset && s.len === 256)!.at;
  assert(sentAt(512) >= answered(256), "512 waited for the resolving packet's answer");
  assert(sentAt(768) >= answered(512), "768 waited for 512's answer");
  assert(
    sentAt(1024) < answered(768),
    `1024 left ${(sentAt(1024) - answered(768)).toFixed(1)} ms after 768's answer arrived`,
  );
});
