/**
 * `deno task deploy` as a user runs it (a subprocess) against virtual devices on
 * 127.0.0.1: bytes in the flash, the exit code, the message, the JSON.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "../_assert.ts";
import { ROOT, runTaskFile, tempDir, vector, VECTORS } from "../_helpers.ts";
import { startVirtualDevice, type VirtualDevice } from "../../lib/sim/virtual_device.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import type { LinkOptions } from "../../lib/sim/link.ts";
import { equalBytes } from "../../lib/_bytes.ts";
import { decodeCanned } from "../../lib/format/canned.ts";
import { cannedSource } from "../../lib/transfer/packet_source.ts";
import { sendFirmware } from "../../lib/transfer/send_firmware.ts";
import { AddressError } from "../../lib/errors.ts";

const APP = 0x3c000;
const KEY512 = `${VECTORS}test-key-512.pem`;
const KEY2048 = `${VECTORS}test-key-2048.pem`;
const modulus = (path: string) => parsePrivateKey(Deno.readTextFileSync(path)).modulus;

async function device(
  opts: {
    key?: string;
    link?: LinkOptions;
    mtu?: number;
    rxq?: number;
    profile?: "instant" | "esp8266";
  } = {},
): Promise<VirtualDevice> {
  return await startVirtualDevice({
    modulus: modulus(opts.key ?? KEY512),
    flash: new Uint8Array(0x100000).fill(0xff),
    profile: PROFILES[opts.profile ?? "instant"],
    mtu: opts.mtu,
    rxq: opts.rxq,
    link: { delayMs: 1, ...opts.link },
  });
}

function holds(d: VirtualDevice, image: Uint8Array): boolean {
  return equalBytes(d.model.flash.subarray(APP, APP + image.length), image);
}

const packetsSeen = (d: VirtualDevice) => d.events.filter((e) => e.type === "packet").length;
const belowApp = (d: VirtualDevice) => d.events.some((e) => e.type === "flash-write" && e.belowApp);

async function imageFile(dir: string, image: Uint8Array, name = "fw.bin"): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, image);
  return path;
}

const deployArgs = (d: VirtualDevice, file: string, ...extra: string[]) => [
  "--ip",
  "127.0.0.1",
  "--port",
  String(d.port),
  "--boot-check-window",
  "1.5",
  file,
  ...extra,
];

Deno.test("deploy sends an image; the flash equals it, the device boots it, --json prints one object", async () => {
  await using dir = await tempDir();
  await using d = await device();
  const image = makeSampleFirmware({ size: 64 * 1024, seed: 4 });
  const r = await runTaskFile("deploy", [
    ...deployArgs(d, await imageFile(dir.path, image)),
    "--key",
    KEY512,
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assertEquals(lines.length, 1);
  const json = JSON.parse(lines[0]!);
  assertEquals(json.ok, true);
  assertEquals(json.bytes, image.length);
  assertEquals(json.block, 1024);
  assertEquals(json.paced, true);
  assertEquals(json.bootCheck, "passed");
  assertEquals(json.attempts, 1);
  for (const k of ["packets", "retransmits", "seconds", "kibps", "kbps"]) {
    assertEquals(typeof json[k], "number", k);
  }
  // `kind` names an error class only; what was sent has its own field.
  assertEquals([json.kind, json.sent], [undefined, "image"]);
  assert(holds(d, image));
  const boot = d.events.findLast((e) => e.type === "boot");
  assertEquals(boot?.type === "boot" && boot.boot, "ok");
  assert(!belowApp(d));
});

Deno.test("deploy completes over 10 % loss, 5 % dup, 5 % reorder, 548-byte datagrams and a 2-place queue", async () => {
  await using dir = await tempDir();
  await using d = await device({
    key: KEY2048,
    mtu: 548,
    rxq: 2,
    link: { loss: 0.1, dup: 0.05, reorder: 0.05, delayMs: 2, seed: 5 },
  });
  const image = makeSampleFirmware({ size: 48 * 1024, seed: 6 });
  const r = await runTaskFile("deploy", [
    ...deployArgs(d, await imageFile(dir.path, image)),
    "--key",
    KEY2048,
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).block, 256);
  assert(holds(d, image));
  assert(!belowApp(d));
});

Deno.test("deploy to a device built for another key: a clear error naming our key, nothing written", async () => {
  await using dir = await tempDir();
  await using d = await device({ key: KEY2048 });
  const image = makeSampleFirmware({ size: 48 * 1024 });
  const r = await runTaskFile("deploy", [
    ...deployArgs(d, await imageFile(dir.path, image)),
    "--key",
    KEY512,
    "--timeout",
    "2",
  ]);
  assertEquals(r.code, 4, r.stderr); // unreachable (lib/exit_codes.ts): our key gets no answer
  assertStringIncludes(r.stderr, "no answer from 127.0.0.1");
  assertStringIncludes(r.stderr, "may not be in OTA mode");
  assertStringIncludes(r.stderr, "built for another key");
  assertStringIncludes(r.stderr, parsePrivateKey(Deno.readTextFileSync(KEY512)).fingerprint);
  assert(!d.events.some((e) => e.type === "flash-write"));
});

Deno.test("deploy with no device fails within its --timeout with exit 4 and --json reports the kind", async () => {
  await using dir = await tempDir();
  const image = makeSampleFirmware({ size: 48 * 1024 });
  const t0 = performance.now();
  const r = await runTaskFile("deploy", [
    "--ip",
    "127.0.0.1",
    "--port",
    "9",
    "--key",
    KEY512,
    "--timeout",
    "2",
    "--json",
    await imageFile(dir.path, image),
  ]);
  assertEquals(r.code, 4);
  assert(performance.now() - t0 < 12000);
  const json = JSON.parse(r.stdout);
  assertEquals(json.ok, false);
  assertEquals(json.kind, "DeviceUnreachableError");
  assertEquals(json.bytes, 0);
  assert(json.packets > 0 && json.retransmits === 0 && json.block === 1024 && json.paced === true);
  // Nothing listens on port 9: loopback refuses it at once (ICMP port unreachable).
  assertStringIncludes(json.error, "127.0.0.1:9 refused the packet at once");
  assertStringIncludes(json.error, "not in OTA mode");
});

Deno.test("deploy sends a canned .ota file as it is", async () => {
  await using d = await device();
  const r = await runTaskFile("deploy", [
    ...deployArgs(d, `${VECTORS}fw-10000.key512.block256.ota`),
    "--force",
    "--no-boot-check",
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).sent, "canned");
  assert(holds(d, vector("fw-10000.bin")));
  assertStringIncludes(r.stderr, "--force");
});

Deno.test("deploy refuses a corrupted canned file before sending anything", async () => {
  await using dir = await tempDir();
  await using d = await device();
  const bytes = vector("fw-10000.key512.block256.ota").slice();
  bytes[777] = bytes[777]! ^ 1;
  const r = await runTaskFile("deploy", [
    ...deployArgs(d, await imageFile(dir.path, bytes, "bad.ota")),
    "--force",
  ]);
  assertEquals(r.code, 3); // the image is refused (lib/exit_codes.ts)
  assertStringIncludes(r.stderr, "SHA1 trailer");
  assertEquals(packetsSeen(d), 0);
});

Deno.test("deploy refuses each unsafe image with the reason, sending nothing", async () => {
  await using dir = await tempDir();
  await using d = await device();
  const good = makeSampleFirmware({ size: 48 * 1024 });
  const badMd5 = good.slice();
  badMd5[good.length - 3] = badMd5[good.length - 3]! ^ 0xff;
  const cases: [string, Uint8Array, string][] = [
    [
      "standard",
      makeSampleFirmware({ size: 200 * 1024, linkBase: 0x40209000 }),
      "standard (non-OTA) build",
    ],
    ["md5", badMd5, "MD5 trailer"],
    ["truncated", good.subarray(0, 30000), "truncated"],
    ["oversize", makeSampleFirmware({ size: 790 * 1024 }), "flash above the app offset"],
  ];
  for (const [name, image, reason] of cases) {
    const r = await runTaskFile("deploy", [
      ...deployArgs(d, await imageFile(dir.path, image, `${name}.bin`)),
      "--key",
      KEY512,
    ]);
    assertEquals(r.code, 3, name); // unsafe image (lib/exit_codes.ts)
    assertStringIncludes(r.stderr, "refusing to send", name);
    assertStringIncludes(r.stderr, reason, name);
  }
  assertEquals(packetsSeen(d), 0);
});

Deno.test("deploy detects an image that fails the boot check and says what to check", async () => {
  await using dir = await tempDir();
  await using d = await device();
  const image = makeSampleFirmware({ size: 48 * 1024 });
  image[image.length - 1] = image[image.length - 1]! ^ 0xff;
  const r = await runTaskFile("deploy", [
    ...deployArgs(d, await imageFile(dir.path, image)),
    "--key",
    KEY512,
    "--force",
  ]);
  assertEquals(r.code, 6); // boot check failed (lib/exit_codes.ts)
  assertStringIncludes(r.stderr, "did not boot the new image after 2 attempts");
  assertStringIncludes(r.stderr, "deno task inspect");
  assertStringIncludes(r.stderr, "--app-offset 0x3c000");
  assert(!belowApp(d));
});

Deno.test("deploy recovers from an 11 s outage mid-transfer (2048-bit key, 1024-byte blocks)", async () => {
  await using dir = await tempDir();
  const image = makeSampleFirmware({ size: 64 * 1024, seed: 8 });
  await using d = await device({
    key: KEY2048,
    // The restart must leave stale bytes (docs/device.md, "Session restarts keep stale
    // bytes"): one 1024-byte packet past a sector, and up to two more on the device.
    link: { delayMs: 1, outage: { afterBytes: 29 * 1024, ms: 11000 } },
  });
  const r = await runTaskFile("deploy", [
    ...deployArgs(d, await imageFile(dir.path, image)),
    "--key",
    KEY2048,
    "--block",
    "1024",
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stderr, "device restarted its session — cleaning up, resending");
  const restarts = d.events.flatMap((e) => e.type === "session-restart" ? [e.staleBytes] : []);
  assert(restarts.some((stale) => stale > 0), `session restarts, stale bytes: ${restarts}`);
  assert(holds(d, image), "the flash holds the image");
  const boot = d.events.findLast((e) => e.type === "boot");
  assertEquals(boot?.type === "boot" && boot.boot, "ok");
  assert(!belowApp(d), "nothing written below the app");
  assert(JSON.parse(r.stdout).recoveries >= 1, r.stdout);
});

Deno.test("deploy: Ctrl-C exits 130 and sends no end packet; deploying again completes", async () => {
  await using dir = await tempDir();
  const image = makeSampleFirmware({ size: 160 * 1024, seed: 9 });
  const file = await imageFile(dir.path, image);
  await using d = await device({ profile: "esp8266", link: { delayMs: 2 } });
  const child = new Deno.Command(Deno.execPath(), {
    // The window must outlast the ESP8266 profile's 1.5 s reboot.
    args: [
      "run",
      "-A",
      `${ROOT}tasks/deploy.ts`,
      ...deployArgs(d, file),
      "--key",
      KEY512,
      "--boot-check-window",
      "4",
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  await d.waitFor(
    (e) => e.type === "packet" && e.outcome === "accepted" && e.offset >= 40 * 1024,
    30000,
  );
  child.kill("SIGINT");
  const out = await child.output();
  assertEquals(out.code, 130);
  const stderr = new TextDecoder().decode(out.stderr);
  assertMatch(stderr, /interrupted: nothing more was sent \(no end packet\)/);
  assertStringIncludes(stderr, "running deploy again is safe");
  await new Promise((r) => setTimeout(r, 300));
  assertEquals(d.events.filter((e) => e.type === "packet" && e.outcome === "end").length, 0);
  assert(d.model.session.expected > 0, "the device is left inside the interrupted session");
  // Deploy again at once: the device still expects the old session's offset.
  const again = await runTaskFile("deploy", [
    ...deployArgs(d, file),
    "--key",
    KEY512,
    "--json",
    "--boot-check-window",
    "4",
  ]);
  assertEquals(again.code, 0, again.stderr);
  assert(holds(d, image));
  const boot = d.events.findLast((e) => e.type === "boot");
  assertEquals(boot?.type === "boot" && boot.boot, "ok");
  assert(!belowApp(d));
});

Deno.test("deploy without --boot-check-window watches for the default 6 s and finishes", async () => {
  await using dir = await tempDir();
  await using d = await device();
  const image = makeSampleFirmware({ size: 48 * 1024 });
  const file = await imageFile(dir.path, image);
  const r = await runTaskFile("deploy", [
    "--ip",
    "127.0.0.1",
    "--port",
    String(d.port),
    "--key",
    KEY512,
    file,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "did not fall back to OTA mode");
  assert(holds(d, image));
});

Deno.test("parseDeployArgs() refuses bad flags with exit code 2", async () => {
  const r = await runTaskFile("deploy", ["--ip", "1.2.3.4", "--block", "300"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "--block expects auto, 256, 512 or 1024, got '300'");
  const r2 = await runTaskFile("deploy", ["fw.bin"]);
  assertEquals(r2.code, 2);
  assertStringIncludes(r2.stderr, "--ip ADDR");
});

// ---- Addresses and sockets: reported at once, with the address ---------------------------

Deno.test("deploy refuses an address that is not one board's at once, naming it (exit 2)", async () => {
  const cases: [string, string][] = [
    ["999.1.1.1", "--ip '999.1.1.1' is not an IPv4 address"],
    ["255.255.255.255", "--ip '255.255.255.255' is the broadcast address, not one board"],
    ["0.0.0.0", "--ip '0.0.0.0' is the unspecified address"],
    ["224.0.0.1", "--ip '224.0.0.1' is a multicast address"],
  ];
  for (const [ip, message] of cases) {
    const r = await runTaskFile("deploy", [
      "--ip",
      ip,
      "--key",
      KEY512,
      `${VECTORS}fw-10000.key512.block256.ota`,
    ]);
    assertEquals(r.code, 2, `${ip}: ${r.stderr}`);
    assertStringIncludes(r.stderr, message, ip);
    assert(!r.stderr.includes("no answer"), r.stderr);
  }
});

Deno.test("deploy to a name that does not resolve fails at once naming it, not with 'no answer'", async () => {
  await using dir = await tempDir();
  const file = await imageFile(dir.path, makeSampleFirmware({ size: 16 * 1024, seed: 5 }));
  const r = await runTaskFile("deploy", [
    "--ip",
    "no-such-board.invalid",
    "--timeout",
    "60",
    "--json",
    // The preflight comes first (one board is a fleet of one): the file must pass it.
    "--key",
    KEY512,
    file,
  ]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, "cannot resolve 'no-such-board.invalid'");
  assert(!r.stderr.includes("no answer"), r.stderr);
  assertEquals(JSON.parse(r.stdout).kind, "AddressError");
});

Deno.test("deploy checks the config's ip as it checks --ip", async () => {
  await using dir = await tempDir();
  const config = `${dir.path}/ota.config.json`;
  await Deno.writeTextFile(config, JSON.stringify({ ip: "255.255.255.255" }));
  const r = await runTaskFile("deploy", [
    "--config",
    config,
    `${VECTORS}fw-10000.key512.block256.ota`,
  ]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, `${config}: ip: '255.255.255.255' is the broadcast address`);
});

Deno.test("sendFirmware() reports a send the system refuses at once, with the address", async () => {
  // A broadcast address that slipped past the checks: Linux refuses the send (EACCES).
  const canned = decodeCanned(vector("fw-10000.key512.block256.ota"));
  await assertRejects(
    () =>
      sendFirmware({
        host: "255.255.255.255",
        port: 8266,
        source: cannedSource(canned),
        pace: true,
        timeoutMs: 60000,
        bootCheck: false,
      }),
    AddressError,
    "cannot send to 255.255.255.255:8266: the system refused",
  );
});

// ---- One deploy per board --------------------------------------------------------------------

Deno.test("deploy: a second deploy to the same board is refused at once, naming the running one", async () => {
  await using dir = await tempDir();
  await using locks = await tempDir();
  const env = { NO_COLOR: "1", OTA_LOCK_DIR: locks.path };
  const image = makeSampleFirmware({ size: 160 * 1024, seed: 12 });
  const file = await imageFile(dir.path, image);
  await using d = await device({ profile: "esp8266", link: { delayMs: 2 } });
  const first = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tasks/deploy.ts`, ...deployArgs(d, file), "--key", KEY512],
    stdout: "piped",
    stderr: "piped",
    env,
  }).spawn();
  await d.waitFor((e) => e.type === "packet" && e.outcome === "accepted", 30000);
  const second = await runTaskFile("deploy", [...deployArgs(d, file), "--key", KEY512], { env });
  assertEquals(second.code, 1, second.stderr);
  assertStringIncludes(
    second.stderr,
    `another deploy to 127.0.0.1:${d.port} is running on this machine (pid ${first.pid}, started `,
  );
  const out = await first.output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assert(holds(d, image));
  assertEquals(d.events.filter((e) => e.type === "packet" && e.outcome === "end").length, 1);
  assertEquals([...Deno.readDirSync(locks.path)], [], "the lock is gone with its deploy");
});
