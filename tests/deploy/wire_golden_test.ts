/**
 * Golden runs: the datagrams `deno task deploy --ip` and `deno task deploy --fleet` put on
 * the wire, recorded by a relay in front of virtual devices. Timing (retransmissions,
 * their order) is not compared: the distinct datagrams, in the order they first appear,
 * are, without their seq numbers. The digest was recorded on the code before the one-pipeline refactor (issue 23);
 * a change of the bytes on the wire must be deliberate, and changes it.
 */
import { SEQ_LENGTH } from "../../lib/format/packet.ts";
import dgram from "node:dgram";
import { assertEquals } from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import { startVirtualDevice, type VirtualDevice } from "../../lib/sim/virtual_device.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
const hexOf = (bytes: Uint8Array) =>
  [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

const KEY = `${VECTORS}test-key-512.pem`;
/** SHA-256 of the distinct datagrams (each as length and bytes), recorded before issue 23. */
const GOLDEN = "e4b6cf13eaf6a346aa2e72e209eb8c7f677d3a6ddad66e256c26aa4f8e546010";

async function device(): Promise<VirtualDevice> {
  return await startVirtualDevice({
    modulus: parsePrivateKey(await Deno.readTextFile(KEY)).modulus,
    flash: new Uint8Array(0x100000).fill(0xff),
    profile: PROFILES.instant,
    link: { delayMs: 1 },
  });
}

/** A UDP relay to `target` that records every datagram sent towards it. */
async function relay(
  target: VirtualDevice,
): Promise<{ port: number; sent: Uint8Array[] } & AsyncDisposable> {
  const socket = dgram.createSocket("udp4");
  const sent: Uint8Array[] = [];
  let client: { address: string; port: number } | undefined;
  socket.on("message", (data: Uint8Array, from: { address: string; port: number }) => {
    if (from.port === target.port) {
      if (client) socket.send(data, client.port, client.address);
    } else {
      client = from;
      sent.push(new Uint8Array(data));
      socket.send(data, target.port, "127.0.0.1");
    }
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    port: socket.address().port,
    sent,
    async [Symbol.asyncDispose]() {
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/**
 * The digest of the distinct datagrams in the order they first appear, each without its
 * seq (which is not signed: a retransmission carries a new one, docs/device.md).
 */
async function digest(sent: Uint8Array[]): Promise<{ distinct: number; sha256: string }> {
  const seen = new Set<string>();
  const parts: Uint8Array[] = [];
  for (const datagram of sent) {
    const d = datagram.length > SEQ_LENGTH ? datagram.subarray(SEQ_LENGTH) : datagram;
    const hex = hexOf(d);
    if (seen.has(hex)) continue;
    seen.add(hex);
    parts.push(new Uint8Array([d.length >> 8, d.length & 0xff]), d);
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return { distinct: seen.size, sha256: hexOf(hash) };
}

Deno.test("golden: one board and a fleet of two put the same datagrams on the wire as before", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(file, makeSampleFirmware({ size: 24 * 1024, seed: 23 }));
  const common = [
    "--key",
    KEY,
    "--block",
    "1024",
    "--boot-check-window",
    "1.5",
    "--timeout",
    "5",
    file,
  ];

  await using one = await device();
  await using oneRelay = await relay(one);
  const single = await runTaskFile("deploy", [
    "--ip",
    "127.0.0.1",
    "--device-port",
    String(oneRelay.port),
    ...common,
  ]);
  assertEquals(single.code, 0, single.stderr);

  await using a = await device();
  await using b = await device();
  await using aRelay = await relay(a);
  await using bRelay = await relay(b);
  const config = `${dir.path}/ota.config.json`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      devices: [
        { name: "a", ip: "127.0.0.1", port: aRelay.port },
        { name: "b", ip: "127.0.0.1", port: bRelay.port },
      ],
    }),
  );
  const fleet = await runTaskFile("deploy", ["--fleet", "--config", config, ...common]);
  assertEquals(fleet.code, 0, fleet.stderr + fleet.stdout);

  const wire = await digest(oneRelay.sent);
  assertEquals(await digest(aRelay.sent), wire);
  assertEquals(await digest(bRelay.sent), wire);
  assertEquals(wire, { distinct: 43, sha256: GOLDEN });
});
