/**
 * The `esp8266-quiet` profile (a board whose bootloader was built with `build-bootloader
 * --quiet-log`) on a fake clock: the engine learns its shorter per-packet cost, paces to
 * it without a packet meeting another inside a signature check, and the image lands.
 */
import { assert, assertEquals } from "../_assert.ts";
import { Harness } from "../_harness.ts";
import { vectorText } from "../_helpers.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import { AUTO_BLOCKS, liveSource } from "../../lib/transfer/packet_source.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { checkMs, PROFILES } from "../../lib/sim/device_profile.ts";
import type { TransferTrace } from "../../lib/transfer/engine.ts";
import { equalBytes } from "../../lib/_bytes.ts";
import { parseSimArgs } from "../../tasks/sim.ts";

const key = parsePrivateKey(vectorText("test-key-2048.pem"));
const image = makeSampleFirmware({ size: 48 * 1024, seed: 8 });

function deploy(profile: string) {
  const h = new Harness(
    {
      modulus: key.modulus,
      flash: new Uint8Array(0x100000).fill(0xff),
      profile: PROFILES[profile],
    },
    { delayMs: 5, seed: 2 },
    liveSource(image, nativeSigner(key), AUTO_BLOCKS, false),
  );
  const records: TransferTrace[] = [];
  h.start(h.options({ bootCheck: true, trace: (r) => records.push(r) }));
  const r = h.run();
  const pacing = records.findLast((x) => x.type === "pacing");
  assert(pacing?.type === "pacing");
  return { h, r, pacing: pacing.pacing };
}

Deno.test("esp8266-quiet: the engine measures the check alone as the per-packet cost and paces to it, with no packet lost in a check", () => {
  const quiet = PROFILES["esp8266-quiet"]!;
  const { h, r, pacing } = deploy("esp8266-quiet");
  assertEquals(r.outcome?.type, "done");
  assert(equalBytes(h.device.flash.subarray(0x3c000, 0x3c000 + image.length), image));
  const nested = r.deviceEvents.filter((e) =>
    e.type === "packet" && (e.nested || e.outcome === "lost-in-nested-check")
  );
  assertEquals(nested.length, 0);
  // No log: a packet costs its RSA check (2048-bit key) only.
  const check = checkMs(quiet, key.modulus.length);
  assertEquals(quiet.logMs, 0);
  assert(Math.abs(pacing.serviceMs! - check) < 1, `service ${pacing.serviceMs} ms, check ${check}`);
  const standard = deploy("esp8266");
  const logged = PROFILES.esp8266!.logMs + check;
  assert(Math.abs(standard.pacing.serviceMs! - logged) < 1, `service ${standard.pacing.serviceMs}`);
});

Deno.test("deno task sim accepts --profile esp8266-quiet", () => {
  assertEquals(
    parseSimArgs(["--key", "k.pem", "--profile", "esp8266-quiet"]).profile,
    "esp8266-quiet",
  );
});
