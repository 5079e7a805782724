/**
 * `scan` (issue 25 part 1): ranges and their limits, the config edit of `--add`, and a
 * scan of 127.0.0.0/28 with virtual boards bound to several loopback addresses, which
 * finds exactly those boards in their states and sends nothing a board would act on.
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { hermeticEnv, ROOT, runTaskFile, tempDir } from "../_helpers.ts";
import { join } from "node:path";
import { createSocket } from "node:dgram";
import { parseAddressRange, privateKind, scanAddresses } from "../../lib/fleet/address_range.ts";
import { addDevicesToConfigText, newEntries } from "../../lib/fleet/config_add.ts";
import { UsageError } from "../../lib/errors.ts";
import type { ScanReport } from "../../lib/fleet/scan.ts";
import type { VirtualDevice } from "../../lib/sim/virtual_device.ts";
import { BUILD, KEY, PASSWORD, silentPeer, startBoard, writeDist } from "../deploy/_one_build.ts";

Deno.test("scan ranges: CIDR without network and broadcast, dash ranges, one address", () => {
  const all = (text: string) => scanAddresses([parseAddressRange(text)]);
  assertEquals(all("127.0.0.0/28"), Array.from({ length: 14 }, (_, i) => `127.0.0.${i + 1}`));
  assertEquals(all("192.168.1.10-12"), ["192.168.1.10", "192.168.1.11", "192.168.1.12"]);
  assertEquals(all("10.0.0.254-10.0.1.1"), ["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"]);
  assertEquals(all("192.168.4.1"), ["192.168.4.1"]);
  assertEquals(all("10.1.2.3/32"), ["10.1.2.3"]);
  assertEquals(all("192.168.1.0/24").length, 254);
  assertEquals(privateKind(parseAddressRange("8.8.8.8").first), undefined);
  for (const bad of ["192.168.1.0/33", "192.168.1", "192.168.1.300", "10.0.0.9-3", "x"]) {
    assertThrows(() => parseAddressRange(bad), UsageError);
  }
});

Deno.test("scan refuses public ranges unless asked, and ranges over the cap", () => {
  const e = assertThrows(() => scanAddresses([parseAddressRange("8.8.8.0/30")]), UsageError);
  assertStringIncludes(e.message, "public address 8.8.8.1");
  assertStringIncludes(e.message, "--allow-public");
  assertEquals(
    scanAddresses([parseAddressRange("8.8.8.0/30")], { allowPublic: true }),
    ["8.8.8.1", "8.8.8.2"],
  );
  // Both ends private, the middle public.
  assertThrows(() => scanAddresses([parseAddressRange("10.255.255.255-11.0.0.1")]), UsageError);
  const big = assertThrows(() => scanAddresses([parseAddressRange("10.0.0.0/16")]), UsageError);
  assertStringIncludes(big.message, "65534 addresses to scan, more than the cap of 1024");
  assertEquals(
    scanAddresses([parseAddressRange("10.0.0.0/16")], { maxAddresses: 65536 }).length,
    65534,
  );
});

Deno.test("--add edits the config as text: new boards appended, every other byte kept, none twice", () => {
  const text = `{
  "$schema": "../yaota/ota.config.schema.json",
  "key": "keys/priv.key",
  "devices": [
    { "name": "kitchen", "ip": "192.168.1.20", "passwordEnv": "KITCHEN_PW" },
    {
      "name": "garage",
      "ip": "192.168.1.21"
    }
  ],
  "port": 8266
}
`;
  const existing = [
    { name: "kitchen", ip: "192.168.1.20" },
    { name: "garage", ip: "192.168.1.21" },
    { name: "board-192-168-1-30", ip: "10.9.9.9" },
  ];
  const entries = newEntries(
    [{ ip: "192.168.1.20", port: 8266 }, { ip: "192.168.1.30", port: 8266 }, {
      ip: "192.168.1.31",
      port: 9000,
    }],
    existing,
  );
  assertEquals(entries, [
    { name: "board-192-168-1-30-2", ip: "192.168.1.30" },
    { name: "board-192-168-1-31", ip: "192.168.1.31", port: 9000 },
  ]);
  const edited = addDevicesToConfigText(text, entries);
  assertEquals(
    edited,
    text.replace(
      `      "ip": "192.168.1.21"
    }
  ]`,
      `      "ip": "192.168.1.21"
    },
    { "name": "board-192-168-1-30-2", "ip": "192.168.1.30" },
    { "name": "board-192-168-1-31", "ip": "192.168.1.31", "port": 9000 }
  ]`,
    ),
  );
  assertEquals(JSON.parse(edited).devices.length, 4);
  // No "devices" yet, an empty list, no file.
  const one = [{ name: "b", ip: "10.0.0.2" }];
  assertEquals(
    addDevicesToConfigText('{\n  "key": "k.pem"\n}\n', one),
    '{\n  "key": "k.pem",\n  "devices": [\n    { "name": "b", "ip": "10.0.0.2" }\n  ]\n}\n',
  );
  assertEquals(
    addDevicesToConfigText('{ "devices": [] }', one),
    '{ "devices": [\n  { "name": "b", "ip": "10.0.0.2" }\n] }',
  );
  assertEquals(JSON.parse(addDevicesToConfigText("", one)), { devices: one });
  assertEquals(addDevicesToConfigText(text, []), text);
});

/** Resolves if `host:port` can be bound for UDP (and lets it go again), else rejects. */
async function udpPortFree(host: string, port: number): Promise<void> {
  const socket = createSocket("udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, host, () => resolve());
    });
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/**
 * Virtual boards on 127.0.0.2 (running the build), 127.0.0.3 (in OTA mode) and 127.0.0.5
 * (an image without a build id), all on one port, and a TCP server that says nothing on
 * 127.0.0.6 at that port.
 */
async function loopbackFleet(): Promise<
  { port: number; boards: VirtualDevice[]; silent: AsyncDisposable }
> {
  for (let attempt = 0;; attempt++) {
    const boards: VirtualDevice[] = [];
    try {
      boards.push(await startBoard({ image: "current", host: "127.0.0.2" }));
      const port = boards[0]!.port;
      // The scan covers 127.0.0.1 too: the port must be free there (another test's board?).
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      await udpPortFree("127.0.0.1", port);
      boards.push(await startBoard({ image: "current", mode: "ota", host: "127.0.0.3", port }));
      boards.push(await startBoard({ image: "legacy", host: "127.0.0.5", port }));
      const silent = silentPeer("127.0.0.6", port);
      return { port, boards, silent };
    } catch (e) {
      for (const b of boards) await b.close();
      if (attempt >= 5) throw e; // the port was taken on another address: try another
    }
  }
}

Deno.test("scan 127.0.0.0/28 finds exactly the virtual boards, each in its state, and changes nothing", async () => {
  await using dir = await tempDir();
  await writeDist(dir.path);
  const { port, boards, silent } = await loopbackFleet();
  try {
    const flashBefore = boards.map((b) => b.model.flash.slice());
    const filesBefore = boards.map((b) => JSON.stringify([...b.files]));
    const config = join(dir.path, "ota.config.json");
    const original = `{\n  "key": ${
      JSON.stringify(KEY)
    },\n  "devices": [\n    { "name": "known", "ip": "127.0.0.2", "port": ${port} }\n  ]\n}\n`;
    await Deno.writeTextFile(config, original);
    const args = ["127.0.0.0/28", "--device-port", String(port), "--timeout", "2"];

    // With a password: what status reads.
    const r = await runTaskFile("scan", [...args, "--json"], {
      cwd: dir.path,
      env: { WEBREPL_PASSWORD: PASSWORD },
    });
    assertEquals(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ScanReport;
    assertEquals(report.scanned, 14);
    assertEquals(report.otaQuestion, true);
    assertEquals(
      report.boards.map((b) => [b.ip, b.state, b.webrepl, b.build?.id ?? b.build, b.comparison]),
      [
        ["127.0.0.2", "app", "logged in", BUILD.id, "up to date"],
        ["127.0.0.3", "ota", "refused", undefined, "unknown"],
        ["127.0.0.5", "app", "logged in", null, "unknown"],
      ],
    );
    assertEquals(report.boards[0]!.micropython?.release, "1.19.1");
    assertEquals(report.others, ["127.0.0.6"]);
    assertStringIncludes(r.stderr, "scan: asked 14/14, 3 found");

    // Without one: the handshake only; the table, and how to add them.
    const t = await runTaskFile("scan", args, { cwd: dir.path });
    assertEquals(t.code, 0, t.stderr);
    assertStringIncludes(t.stdout, "14 addresses, port " + port);
    assertStringIncludes(t.stdout, "3 boards (2 running the app, 1 in OTA mode)");
    assertStringIncludes(t.stdout, "1 other TCP server(s) on the port: 127.0.0.6");
    assertStringIncludes(t.stderr, "scan 127.0.0.0/28 --add");

    // --add: the two boards not listed yet, twice: the second run changes nothing.
    for (const run of [1, 2]) {
      const a = await runTaskFile("scan", [...args, "--add"], { cwd: dir.path });
      assertEquals(a.code, 0, a.stderr);
      assertStringIncludes(
        a.stderr,
        run === 1 ? "board-127-0-0-3, board-127-0-0-5" : "every board found is listed already",
      );
    }
    const edited = await Deno.readTextFile(config);
    assertEquals(await Deno.readTextFile(config + ".orig"), original);
    assert(edited.startsWith(original.slice(0, original.indexOf(` }\n  ]`) + 2)));
    assertEquals(
      JSON.parse(edited).devices.map((d: { name: string; ip: string }) => [d.name, d.ip]),
      [["known", "127.0.0.2"], ["board-127-0-0-3", "127.0.0.3"], ["board-127-0-0-5", "127.0.0.5"]],
    );
    // The config is usable as it is: status reads the boards scan added.
    const s = await runTaskFile("status", ["--fleet", "--json", "--timeout", "2"], {
      cwd: dir.path,
      env: { WEBREPL_PASSWORD: PASSWORD },
    });
    assertEquals(s.code, 0, s.stderr);
    assertEquals(
      JSON.parse(s.stdout).devices.map((d: { name: string; state: string }) => [d.name, d.state]),
      [["known", "app"], ["board-127-0-0-3", "ota"], ["board-127-0-0-5", "app"]],
    );

    // Nothing a board acts on was sent: the board in OTA mode saw only the question
    // (a duplicate it re-acknowledges), no board wrote its flash, rebooted or changed a file.
    for (const [i, b] of boards.entries()) {
      const packets = b.events.filter((e) => e.type === "packet");
      assertEquals(packets.filter((e) => e.type === "packet" && e.outcome !== "duplicate"), []);
      assertEquals(b.events.filter((e) => e.type === "flash-write" || e.type === "reboot"), []);
      assertEquals(b.model.flash, flashBefore[i]);
      assertEquals(JSON.stringify([...b.files]), filesBefore[i]);
      assertEquals(b.model.mode, i === 1 ? "ota" : "app");
      if (i === 1) assert(packets.length >= 1, "the OTA-mode question was asked");
    }
  } finally {
    await silent[Symbol.asyncDispose]();
    for (const b of boards) await b.close();
  }
});

Deno.test("scan: usage errors name the fix", async () => {
  for (
    const [args, message] of [
      [[], "name the addresses to scan"],
      [["8.8.8.0/24"], "--allow-public"],
      [["10.0.0.0/8"], "more than the cap of 1024"],
      [["10.0.0.0/24", "--concurrency", "0"], "--concurrency"],
    ] as const
  ) {
    const r = await runTaskFile("scan", [...args]);
    assertEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, message);
  }
});

Deno.test("sim --host binds a virtual board to another loopback address, where scan finds it in OTA mode", async () => {
  const sim = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}tasks/sim.ts`,
      "--key",
      KEY,
      "--host",
      "127.0.0.9",
      "--listen-port",
      "0",
      "--json",
    ],
    env: hermeticEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = sim.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await lines.read();
      assert(!done, "sim ended before it listened");
      text += value;
    }
    const listening = JSON.parse(text.split("\n")[0]!) as {
      event: string;
      port: number;
      host: string;
    };
    assertEquals([listening.event, listening.host], ["listening", "127.0.0.9"]);
    const r = await runTaskFile("scan", [
      "127.0.0.8-10",
      "--device-port",
      String(listening.port),
      "--key",
      KEY,
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ScanReport;
    assertEquals(report.boards.map((b) => [b.ip, b.state]), [["127.0.0.9", "ota"]]);
  } finally {
    sim.kill("SIGTERM");
    await lines.cancel();
    await sim.status;
  }
});
