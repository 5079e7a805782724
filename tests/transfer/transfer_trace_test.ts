/**
 * The transfer engine's trace records (`--verbose`) on a fake clock: one record per
 * datagram it asks for, what each reply meant, timeouts, pacing, recovery and the boot
 * check; and tracing changes nothing the engine does.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { Harness } from "../_harness.ts";
import { vectorText } from "../_helpers.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import { AUTO_BLOCKS, liveSource } from "../../lib/transfer/packet_source.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import type { LinkOptions } from "../../lib/sim/link.ts";
import type { PacingSnapshot, TransferTrace } from "../../lib/transfer/engine.ts";
import { describeTransferTrace, pacingChange } from "../../lib/transfer/transfer_trace.ts";

const key = parsePrivateKey(vectorText("test-key-512.pem"));
const image = makeSampleFirmware({ size: 24 * 1024, seed: 3 });

function run(link: LinkOptions, trace?: (r: TransferTrace) => void) {
  const h = new Harness(
    { modulus: key.modulus, flash: new Uint8Array(0x100000).fill(0xff), profile: PROFILES.esp8266 },
    { delayMs: 3, seed: 1, ...link },
    liveSource(image, nativeSigner(key), AUTO_BLOCKS, false),
  );
  h.start(h.options({ bootCheck: true, bootCheckMs: 3000, ...(trace ? { trace } : {}) }));
  return h.run();
}

Deno.test("TransferEngine traces each datagram, each reply, the pacing and the boot check on a fake clock", () => {
  const records: TransferTrace[] = [];
  const r = run({}, (rec) => records.push(rec));
  assertEquals(r.outcome?.type, "done");
  // One send or end record per datagram that left, in the same order, at the same time.
  const sends = records.filter((x) => x.type === "send" || x.type === "end");
  assertEquals(
    sends.map((x) => x.type === "send" ? [x.at, x.kind, x.offset, x.len] : [x.at, x.reason, 0, 0]),
    r.sent.map((s) => [s.at, s.kind, s.offset, s.len]),
  );
  const first = records.find((x) => x.type === "send")!;
  assert(first.type === "send");
  assertEquals([first.kind, first.offset, first.len], ["probe", 0, 1024]);
  assertStringIncludes(first.why, "does a 1024-byte block pass the link?");
  // Replies: every one traced, the bytes confirmed rising to the image's size.
  const replies = records.filter((x) => x.type === "reply");
  assertEquals(replies.length, r.deviceEvents.filter((e) => e.type === "reply").length);
  const confirmed = replies.map((x) => x.type === "reply" ? x.confirmed : -1);
  assert(confirmed.every((c, i) => i === 0 || c >= confirmed[i - 1]!), "confirmed went down");
  assertEquals(confirmed.at(-1), image.length);
  const ack = replies.find((x) => x.type === "reply" && x.offset === 1024);
  assert(ack?.type === "reply");
  assertEquals([ack.answers, ack.len, ack.confirmed], ["data", 1024, 2048]);
  assertStringIncludes(ack.meaning, "ack: confirms every byte before 2048");
  // Pacing: calibrated from what the replies measured, then paced packets say so.
  const calibrated = records.find((x) => x.type === "pacing" && x.pacing.calibrated);
  assert(calibrated?.type === "pacing", "no pacing record");
  assertStringIncludes(calibrated.why, "calibrated from 3 idle round trips");
  const paced = records.find((x) => x.type === "send" && x.why.startsWith("paced:"));
  assert(paced?.type === "send", "no paced packet");
  const service = records.findLast((x) => x.type === "pacing")!;
  assert(service.type === "pacing" && service.pacing.serviceMs !== undefined);
  // The device model's per-packet cost for a 512-bit key: the log plus the RSA check.
  const expected = PROFILES.esp8266!.logMs + PROFILES.esp8266!.check2048Ms / 16;
  assert(
    Math.abs(service.pacing.serviceMs - expected) < 1,
    `service ${service.pacing.serviceMs} ms, device model ${expected} ms`,
  );
  // The end packet, then the boot check's verdict.
  const end = records.find((x) => x.type === "end");
  assert(end?.type === "end" && end.reason === "final");
  assertStringIncludes(end.why, `every byte (${image.length}) confirmed`);
  const steps = records.filter((x) => x.type === "step").map((x) => x.type === "step" && x.text);
  assert(steps.includes("checking that the device boots the new image"));
  assert(
    steps.some((t) => t && t.startsWith("boot check passed: nothing answered offset 0 for 3 s")),
  );
  assert(records.some((x) => x.type === "send" && x.kind === "boot-probe"));
  // Times are the engine's (the fake clock), in order.
  assert(
    records.every((x, i) => i === 0 || x.at >= records[i - 1]!.at),
    "records out of time order",
  );
});

Deno.test("TransferEngine traces the timeouts and the recovery steps of an 11 s outage", () => {
  const records: TransferTrace[] = [];
  const r = run({ outage: { afterBytes: 12 * 1024, ms: 11000 } }, (rec) => records.push(rec));
  assertEquals(r.outcome?.type, "done");
  const lines = records.map(describeTransferTrace);
  assert(lines.some((l) => /^timeout: #\d+ \(offset \d+, 1024 bytes\).* unanswered/.test(l)));
  assert(lines.some((l) => l.includes("lost: retransmission timer ×2")));
  assert(
    lines.some((l) => /^send #\d+ session-probe offset 0 len 256: nothing confirmed for/.test(l)),
  );
  assert(lines.some((l) => l.includes("the session probe was answered: the device restarted")));
  assert(lines.some((l) => l.startsWith("recovery 1 of at most 5: offset 0 is confirmed")));
  assert(lines.some((l) => /^send #\d+ END \(cleanup, len 0: flush and reboot\)/.test(l)));
  assert(lines.some((l) => l.includes("offset 0 answered: a fresh session with an empty buffer")));
});

Deno.test("TransferEngine sends exactly the same datagrams with and without a trace", () => {
  const link = { loss: 0.05, dup: 0.02, reorder: 0.02, seed: 9 };
  const plain = run(link);
  const traced = run(link, () => {});
  assertEquals(traced.sent, plain.sent);
  assertEquals(traced.outcome, plain.outcome);
});

Deno.test("pacingChange() reports calibration, the aim and a service time that moved, not noise", () => {
  const base: PacingSnapshot = {
    serviceMs: 15,
    sectorServiceMs: 65,
    twoWayMs: 6,
    aimMs: 12,
    phase: 0.8,
    guardMs: 8,
    idleSamples: 2,
    calibrationSamples: 3,
    calibrated: false,
    recentLosses: 0,
    stopAndWait: false,
    depth: 3,
    steady: false,
  };
  assertEquals(pacingChange(base, { ...base, serviceMs: 15.2 }), undefined);
  assertEquals(
    pacingChange(base, { ...base, steady: true, depth: 5 }),
    "replies time the device steadily: a deeper pipeline, resends paced behind it",
  );
  assertEquals(
    pacingChange(base, { ...base, idleSamples: 3, calibrated: true }),
    "calibrated from 3 idle round trips: pipelining",
  );
  assertEquals(
    pacingChange(base, { ...base, phase: 0.9, serviceMs: 17 }),
    "aim later (phase 0.80 → 0.90): losses close together; service 15.0 ms → 17.0 ms",
  );
  assertEquals(
    pacingChange(base, { ...base, stopAndWait: true, recentLosses: 4 }),
    "4 losses in the last 16 packets: stop-and-wait, the service to be measured again",
  );
});

Deno.test("describeTransferTrace() renders a record as one line", () => {
  assertEquals(
    describeTransferTrace({
      type: "reply",
      at: 10,
      seq: 4,
      offset: 3072,
      len: 1024,
      answers: "data",
      rttMs: 19.25,
      meaning: "ack: confirms every byte before 4096",
      confirmed: 4096,
    }),
    "reply #4 offset 3072 len 1024 (to data, round trip 19.3 ms): ack: confirms every byte " +
      "before 4096; confirmed 4096",
  );
  assertEquals(
    describeTransferTrace({ type: "end", at: 1, seq: 9, reason: "final", why: "all confirmed" }),
    "send #9 END (final, len 0: flush and reboot): all confirmed",
  );
});
