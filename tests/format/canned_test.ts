import { assertEquals, assertThrows } from "../_assert.ts";
import { decodeCanned, encodeCanned, firmwarePackets } from "../../lib/format/canned.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { forgeSigner, nativeSigner } from "../../lib/format/signer.ts";
import { CannedFileError } from "../../lib/errors.ts";
import { vector, vectorText } from "../_helpers.ts";

const firmware = vector("fw-10000.bin");

for (const [bits, block] of [[512, 256], [2048, 256], [512, 1024]] as const) {
  const name = `fw-10000.key${bits}.block${block}.ota`;
  Deno.test(`encodeCanned() reproduces ${name} byte for byte`, () => {
    const key = parsePrivateKey(vectorText(`test-key-${bits}.pem`));
    const canned = encodeCanned(firmwarePackets(firmware, block, nativeSigner(key)));
    assertEquals(canned, vector(name));
  });
  Deno.test(`decodeCanned() reassembles the firmware of ${name}`, () => {
    const file = decodeCanned(vector(name));
    assertEquals(file.payload, firmware);
    assertEquals(file.block, block);
    assertEquals(file.endPackets.length, 3);
    assertEquals(file.packets.length, Math.ceil(10000 / block));
  });
}

Deno.test("nativeSigner() and forgeSigner() give the same signature bytes", () => {
  for (const bits of [512, 2048]) {
    const key = parsePrivateKey(vectorText(`test-key-${bits}.pem`));
    const block = new Uint8Array(36).map((_, i) => i * 7);
    assertEquals(nativeSigner(key).sign(block), forgeSigner(key).sign(block));
  }
});

Deno.test("decodeCanned() refuses a file whose SHA1 trailer does not match", () => {
  const bytes = vector("fw-10000.key512.block256.ota").slice();
  bytes[500] = bytes[500]! ^ 0xff;
  assertThrows(() => decodeCanned(bytes, "x.ota"), CannedFileError, "x.ota: SHA1 trailer");
});

Deno.test("decodeCanned() refuses a truncated file", () => {
  const bytes = vector("fw-10000.key512.block256.ota").subarray(0, 5000);
  assertThrows(() => decodeCanned(bytes, "x.ota"), CannedFileError, "truncated");
});
