/**
 * A board running its app refuses UDP 8266 (ICMP port unreachable, docs/device.md): when no
 * reboot is expected, deploy says at once that it is reachable but not in OTA mode. On
 * loopback a closed UDP port gives the same refusal on a connected socket.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { udpPortRefused } from "../../lib/transfer/port_refused.ts";
import { sendFirmware } from "../../lib/transfer/send_firmware.ts";
import { liveSource } from "../../lib/transfer/packet_source.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { runTaskFile, tempDir, VECTORS, vectorText } from "../_helpers.ts";
import { createSocket } from "node:dgram";
import { DeviceModel } from "../../lib/sim/device.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { makePacket } from "../../lib/format/packet.ts";

/** A UDP port nobody listens on: bound by the OS, then closed (and the close awaited). */
async function closedPort(): Promise<number> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

Deno.test("udpPortRefused: a closed port on 127.0.0.1 refuses; an open one does not", async () => {
  assertEquals(await udpPortRefused("127.0.0.1", await closedPort()), true);
  const open = createSocket("udp4");
  await new Promise<void>((resolve) => open.bind(0, "127.0.0.1", resolve));
  let got = 0;
  open.on("message", () => got++);
  try {
    assertEquals(await udpPortRefused("127.0.0.1", open.address().port, { waitMs: 100 }), false);
    // One byte: the OTA server drops it as "Packet too short".
    assertEquals(got, 1);
  } finally {
    await new Promise<void>((resolve) => open.close(() => resolve()));
  }
  assertEquals(await udpPortRefused("::1", 8266), undefined);
});

const key = parsePrivateKey(vectorText("test-key-512.pem"));
const source = () =>
  liveSource(makeSampleFirmware({ size: 16 * 1024, seed: 2 }), nativeSigner(key), [1024]);

Deno.test("sendFirmware to a refused port fails at once with not-in-ota-mode, not after --timeout", async () => {
  const t0 = performance.now();
  const out = await sendFirmware({
    host: "127.0.0.1",
    port: await closedPort(),
    source: source(),
    pace: true,
    timeoutMs: 15000,
    bootCheck: false,
  });
  assertEquals(out.ok, false);
  assert(!out.ok && out.failure.kind === "not-in-ota-mode");
  assert(performance.now() - t0 < 10000, "well inside the 15 s timeout");
});

Deno.test("sendFirmware where a reboot is expected (after a trigger) keeps waiting on a refused port", async () => {
  const out = await sendFirmware({
    host: "127.0.0.1",
    port: await closedPort(),
    source: source(),
    pace: true,
    timeoutMs: 1500,
    freshSession: true,
    bootCheck: false,
  });
  assert(!out.ok && out.failure.kind === "no-answer");
  assert(out.seconds >= 1.5);
});

Deno.test("deploy to a port that refuses: exit 4 at once, 'not in OTA mode', and how to get there", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(file, makeSampleFirmware({ size: 16 * 1024, seed: 5 }));
  const port = await closedPort();
  const r = await runTaskFile("deploy", [
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--key",
    `${VECTORS}test-key-512.pem`,
    "--json",
    file,
  ]);
  assertEquals(r.code, 4, r.stderr);
  const json = JSON.parse(r.stdout);
  assertEquals(json.kind, "DeviceUnreachableError");
  assertStringIncludes(json.error, `127.0.0.1:${port} refused the packet at once`);
  assertStringIncludes(json.error, "not in OTA mode");
  assertStringIncludes(json.error, "--trigger");
  assert(json.seconds < 5, `${json.seconds} s`);
});

Deno.test("the refusal question's one-byte datagram, just before the first probe, costs the probe nothing on a logging board", () => {
  const device = new DeviceModel({
    modulus: key.modulus,
    flash: new Uint8Array(0x100000).fill(0xff),
    profile: PROFILES.esp8266!,
    now: 0,
  });
  device.receive(0, new Uint8Array([0]));
  device.receive(0.1, makePacket(1, 0, new Uint8Array(1024).fill(7), nativeSigner(key)));
  const events = device.advance(100);
  const outcomes = events.flatMap((e) => e.type === "packet" ? [e.outcome] : []);
  assertEquals(outcomes, ["short", "accepted"]);
  assertEquals(events.filter((e) => e.type === "reply").length, 1);
});
