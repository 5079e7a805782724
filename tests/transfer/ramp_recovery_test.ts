/**
 * A service estimate that came out short must not stay short: every packet planned on it
 * reaches the device inside the previous one's signature check (docs/device.md,
 * "Re-entrancy"), and then no gap that would correct it is ever measured. On the fake
 * clock, with the standard board (17 ms a packet) behind a 548-byte path.
 */
import { assert, assertEquals } from "../_assert.ts";
import { Harness } from "../_harness.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import { AUTO_BLOCKS, liveSource } from "../../lib/transfer/packet_source.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { equalBytes } from "../../lib/_bytes.ts";
import { vectorText } from "../_helpers.ts";

const APP = 0x3c000;
const key = parsePrivateKey(vectorText("test-key-2048.pem"));
const image = makeSampleFirmware({ size: 48 * 1024, seed: 5 });

Deno.test("Two replies held up 6 ms as the pipeline starts: the short service estimate they make is measured again, not kept", () => {
  for (const held of [["1024:256", "1536:256"], ["768:256", "1280:256"]]) {
    // Each held reply arrives 6 ms late and the next one on time: two gaps of 11 ms for the
    // board's 17 ms. Kept, that estimate put 165 packets inside another's check (the whole
    // transfer) and was never corrected: pipelining on it lost every packet, and stop-and-
    // wait times no service.
    const h = new Harness(
      {
        modulus: key.modulus,
        flash: new Uint8Array(0x100000).fill(0xff),
        profile: PROFILES["esp8266"],
        mtu: 548,
      },
      { delayMs: 5, holdReplies: Object.fromEntries(held.map((k) => [k, 6])) },
      liveSource(image, nativeSigner(key), AUTO_BLOCKS, false),
    );
    h.start(h.options());
    const r = h.run();
    assertEquals(r.outcome?.type, "done", held.join(", "));
    const nested = r.deviceEvents.filter((e) =>
      e.type === "packet" && (e.nested || e.outcome === "lost-in-nested-check")
    ).length;
    assert(nested <= 10, `${held.join(", ")}: ${nested} packets met another in a check`);
    assertEquals(h.engine!.pacing.normalServiceMs, 17);
    assert(equalBytes(h.device.flash.subarray(APP, APP + image.length), image), "flash");
  }
});
