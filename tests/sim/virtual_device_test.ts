/**
 * The virtual device's sockets across reboots: silent (open, dropping) while it reboots,
 * closed while its app runs, answering in OTA mode.
 */
import { assert, assertEquals } from "../_assert.ts";
import { vectorText } from "../_helpers.ts";
import type { DeviceEvent } from "../../lib/sim/device.ts";
import { type SocketMode, startVirtualDevice } from "../../lib/sim/virtual_device.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { nativeSigner } from "../../lib/format/signer.ts";
import { makePacket } from "../../lib/format/packet.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import dgram from "node:dgram";

const key = parsePrivateKey(vectorText("test-key-512.pem"));
const signer = nativeSigner(key);

Deno.test("startVirtualDevice(): machine.reset() from the app keeps the UDP port open and silent until it boots", async () => {
  const flash = new Uint8Array(0x100000).fill(0xff);
  flash.set(makeSampleFirmware({ size: 48 * 1024 }), DEFAULT_APP_OFFSET);
  const modes: SocketMode[] = [];
  const waiting: { mode: SocketMode; resolve: () => void }[] = [];
  /** Resolves once the sockets reached `mode` after the `from`-th change. */
  const reached = (mode: SocketMode, from = 0) =>
    new Promise<void>((resolve) => {
      if (modes.slice(from).includes(mode)) resolve();
      else waiting.push({ mode, resolve });
    });
  await using device = await startVirtualDevice({
    modulus: key.modulus,
    flash,
    start: "boot",
    onModeChange: (mode) => {
      modes.push(mode);
      for (const w of waiting.filter((w) => w.mode === mode)) w.resolve();
    },
  });
  assertEquals(device.model.mode, "app");
  device.reset();
  const reboot = await device.waitFor((e) => e.type === "reboot" && e.reason === "reset");
  const since = (e: DeviceEvent) => e.at >= reboot.at;
  await reached("rebooting");
  const rebootingAt = modes.lastIndexOf("rebooting");
  const client = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => client.bind(0, "127.0.0.1", () => resolve()));
  const replies: Uint8Array[] = [];
  client.on("message", (m: Uint8Array) => replies.push(m));
  try {
    for (let seq = 1; seq <= 3; seq++) {
      client.send(
        makePacket(seq, 0, new Uint8Array(256).fill(seq), signer),
        device.port,
        "127.0.0.1",
      );
    }
    const dropped = await Promise.all(
      [1, 2, 3].map((seq) => device.waitFor((e) => e.type === "packet" && e.seq === seq, 5000)),
    );
    assertEquals(dropped.map((e) => e.type === "packet" && e.outcome), [
      "rebooting",
      "rebooting",
      "rebooting",
    ]);
    const boot = await device.waitFor((e) => e.type === "boot" && since(e), 5000);
    assertEquals(boot.type === "boot" && [boot.mode, boot.boot], ["app", "ok"]);
    await reached("app", rebootingAt);
    assertEquals(replies, []);
  } finally {
    await new Promise<void>((resolve) => client.close(() => resolve()));
  }
  assertEquals(modes.slice(modes.indexOf("rebooting")), ["rebooting", "app"]);
});

Deno.test({
  name:
    "startVirtualDevice(): a datagram that came while the device's thread was busy reaches the model when it came, not when it was read",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // A board takes a datagram when it comes. Stamped when its process read it, one read
    // late (the process held up for 5-12 ms, a few times a bench run) arrived beside the
    // next one, and both were handled as if they had waited together: one inside the
    // other's signature check (docs/device.md, "Re-entrancy").
    await using device = await startVirtualDevice({
      modulus: key.modulus,
      flash: new Uint8Array(0x100000).fill(0xff),
    });
    const client = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => client.bind(0, "127.0.0.1", () => resolve()));
    try {
      const send = (seq: number, offset: number) =>
        new Promise<void>((resolve) =>
          client.send(
            makePacket(seq, offset, new Uint8Array(256).fill(seq), signer),
            device.port,
            "127.0.0.1",
            () => resolve(),
          )
        );
      await send(1, 0);
      // This thread (the device's too) is busy for 30 ms; the second datagram goes at its end.
      const until = performance.now() + 30;
      while (performance.now() < until) { /* busy */ }
      await send(2, 256);
      const [first, second] = await Promise.all(
        [1, 2].map((seq) => device.waitFor((e) => e.type === "packet" && e.seq === seq, 5000)),
      );
      const packet = (e: DeviceEvent | undefined) => {
        assert(e?.type === "packet", "a packet event");
        return e;
      };
      assertEquals([packet(first).outcome, packet(second).outcome], ["accepted", "accepted"]);
      const apart = packet(second).arrived! - packet(first).arrived!;
      assert(apart >= 25, `the two datagrams arrived ${apart.toFixed(1)} ms apart`);
    } finally {
      client.close();
    }
  },
});
