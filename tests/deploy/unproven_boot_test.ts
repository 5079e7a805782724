/**
 * A push without --trigger cannot prove the new build runs: a peer that acknowledges
 * every packet (checking no signature, writing nothing) and then goes silent looks like a
 * board that rebooted into it. deploy says what was and was not proven.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import { createSocket } from "node:dgram";
import { isEndPacket, makeReply, parseRequestHeader } from "../../lib/format/packet.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";

/** Answers every datagram as the device would, until an end packet; then silence. */
async function yesPeer(): Promise<{ port: number } & AsyncDisposable> {
  const socket = createSocket("udp4");
  let ended = false;
  socket.on("message", (msg, from) => {
    const datagram = new Uint8Array(msg);
    const header = parseRequestHeader(datagram);
    if (!header || ended) return;
    if (isEndPacket(header)) {
      ended = true;
      return;
    }
    socket.send(makeReply(datagram), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    port: socket.address().port,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

Deno.test("deploy to a peer that acknowledges everything says what was proven, never that it runs the new image", async () => {
  await using dir = await tempDir();
  await using locks = await tempDir();
  await using peer = await yesPeer();
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(file, makeSampleFirmware({ size: 24 * 1024, seed: 3 }));
  const args = [
    "--ip",
    "127.0.0.1",
    "--port",
    String(peer.port),
    "--key",
    `${VECTORS}test-key-512.pem`,
  ];
  const env = { OTA_LOCK_DIR: locks.path };
  const r = await runTaskFile("deploy", [...args, "--boot-check-window", "1", file], { env });
  assertEquals(r.code, 0, r.stderr);
  assert(!r.stdout.includes("it runs the new image"), r.stdout);
  assertStringIncludes(
    r.stdout,
    "the device confirmed every packet and stopped answering OTA packets after the end: it " +
      "rebooted and did not fall back to OTA mode. Without --trigger the new build is not confirmed",
  );
});
