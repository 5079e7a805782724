/**
 * When the background signer gets work (`sign_schedule.ts`): in the sender's quiet
 * moments, as much as fits before it may next send; at once only when few packets are
 * ready. On the fake clock with the quiet board, every batch after the start falls in a
 * quiet moment (a sector write) and the signer keeps up.
 */
import { assert, assertEquals } from "../_assert.ts";
import { openingPackets, SignSchedule } from "../../lib/transfer/sign_schedule.ts";
import { liveSource } from "../../lib/transfer/packet_source.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import { quietBoardHarness } from "../_harness.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { vectorText } from "../_helpers.ts";

const offsets = (items: [number, number][]) => items.map(([o]) => o);

Deno.test("SignSchedule: with no quiet moment, twelve packets ahead, then nothing until fewer are ready", () => {
  const s = new SignSchedule(64 * 1024);
  assertEquals(offsets(s.next(0, 256, 0, 1.6)), Array.from({ length: 12 }, (_, i) => i * 256));
  assertEquals(s.next(0, 256, 0, 1.6), []);
  assertEquals(s.next(256, 256, 2, 1.6), [[3072, 256]], "one confirmed: one more");
});

Deno.test("SignSchedule: a quiet moment gets what fits before the next send, up to 48 ahead", () => {
  const s = new SignSchedule(64 * 1024);
  s.next(0, 256, 0, 1.6);
  // 20 ms quiet, 1 ms kept clear: 11 signatures of 1.6 ms.
  assertEquals(s.next(0, 256, 20, 1.6).length, 11);
  assertEquals(s.next(0, 256, 4.9, 1.6), [], "under 5 ms is no quiet moment");
  assertEquals(s.next(0, 256, 500, 1.6).length, 48 - 23);
  assertEquals(s.next(0, 256, 500, 1.6), []);
});

Deno.test("SignSchedule: stops at the image's end with its short last packet; a new block size starts over", () => {
  const s = new SignSchedule(1000);
  assertEquals(s.next(0, 256, 0, 1.6), [[0, 256], [256, 256], [512, 256], [768, 232]]);
  assertEquals(s.next(0, 256, 100, 1.6), []);
  assertEquals(s.next(512, 512, 0, 1.6), [[512, 488]]);
});

Deno.test("SignSchedule: a confirmed offset past what was asked for (a skip) starts from there", () => {
  const s = new SignSchedule(64 * 1024);
  s.next(0, 256, 0, 1.6);
  assertEquals(s.next(8192, 256, 0, 1.6)[0], [8192, 256]);
});

Deno.test("openingPackets: each size's probe first, then each size's next packets, in the order a transfer may need them", () => {
  const items = openingPackets(64 * 1024, [1024, 512, 256]);
  assertEquals(items.slice(0, 6), [
    [0, 1024],
    [0, 512],
    [0, 256],
    [1024, 1024], // the 1024-byte probe's resolving packet
    [512, 512],
    [256, 256],
  ]);
  assertEquals(items.length, 18);
  assertEquals(items.filter(([, len]) => len === 256).map(([o]) => o), [
    0,
    256,
    512,
    768,
    1024,
    1280,
  ]);
  // A short image: its last packet is short, and one listed under two sizes comes once.
  assertEquals(openingPackets(700, [512, 256]), [[0, 512], [0, 256], [512, 188], [256, 256]]);
});

Deno.test("liveSource: the background signer signs the opening packets before the transfer asks for them", async () => {
  const key = parsePrivateKey(vectorText("test-key-2048.pem"));
  const image = makeSampleFirmware({ size: 16 * 1024, seed: 4 });
  const native = nativeSigner(key);
  let onTheSpot = 0;
  const source = liveSource(image, {
    ...native,
    sign: (block) => {
      onTheSpot++;
      return native.sign(block);
    },
  }, [1024, 512, 256]);
  try {
    // 18 signatures take the worker well under a second; nothing asks it for more.
    await new Promise((r) => setTimeout(r, 3000));
    let seq = 1;
    for (const [offset, len] of openingPackets(image.length, source.blocks)) {
      source.datagram(seq++, offset, len);
    }
    assertEquals(onTheSpot, 0, "signed on the sending thread");
    source.datagram(seq++, 4096, 256);
    assertEquals(onTheSpot, 1, "a packet outside the opening is signed on the spot");
  } finally {
    source.close();
  }
});

Deno.test("Quiet board, MTU 548, fake clock: after the first sector every signing batch falls in a quiet moment, and the signer keeps up", () => {
  const key = parsePrivateKey(vectorText("test-key-2048.pem"));
  const image = makeSampleFirmware({ size: 48 * 1024, seed: 4 });
  const h = quietBoardHarness(image, key);
  const schedule = new SignSchedule(image.length);
  const SIGN_MS = 1.6;
  const batches: { at: number; confirmed: number; quiet: number; n: number }[] = [];
  /** Signing modelled as one core: when each requested packet is ready. */
  const readyAt = new Map<number, number>();
  let busyUntil = 0;
  h.afterActions = (engine, now) => {
    if (engine.phase !== "transfer") return;
    const quiet = Math.max(0, engine.quietUntil() - now);
    const items = schedule.next(engine.confirmed, engine.block, quiet, SIGN_MS);
    if (items.length === 0) return;
    batches.push({ at: now, confirmed: engine.confirmed, quiet, n: items.length });
    for (const [o] of items) readyAt.set(o, busyUntil = Math.max(busyUntil, now) + SIGN_MS);
  };
  h.start(h.options());
  const r = h.run();
  assertEquals(r.outcome?.type, "done");
  const later = batches.filter((b) => b.confirmed >= 4096);
  assert(later.length > 0);
  for (const b of later) {
    assert(
      b.quiet >= 5,
      `a batch of ${b.n} at ${b.at.toFixed(1)} ms with ${b.quiet.toFixed(1)} ms quiet`,
    );
    assert(b.n * SIGN_MS <= b.quiet, `a batch of ${b.n} overruns its ${b.quiet.toFixed(1)} ms`);
  }
  // Every data packet sent after the first sector was signed before it left.
  const late = h.sent.filter((s) =>
    s.kind === "data" && s.offset >= 4096 && !((readyAt.get(s.offset) ?? Infinity) <= s.at)
  );
  assertEquals(late.map((s) => s.offset), []);
});
