import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS, vectorText } from "../_helpers.ts";
import type { DeviceEntry } from "../../lib/config/config.ts";
import type { DeployResult } from "../../lib/deploy/board_push.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import {
  ConfigError,
  DeviceUnreachableError,
  FileError,
  KeyError,
  UnsafeImageError,
  UsageError,
} from "../../lib/errors.ts";
import {
  buildFleetReport,
  type DeviceReport,
  type FleetDevice,
  fleetExitCode,
  type FleetReport,
  retryCommand,
  selectDevices,
} from "../../lib/deploy/fleet.ts";
import { runFleet } from "../../lib/deploy/pipeline_rollout.ts";
import { renderFleetSummary, renderFleetTable } from "../../lib/cli/fleet_table.ts";
import { preflight, type SharedRequest } from "../../lib/deploy/pipeline_steps.ts";
import { deployFleet } from "../../lib/deploy/pipeline.ts";
import { FleetProgress } from "../../lib/cli/fleet_progress.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { DEFAULT_BOOT_PY } from "../../lib/sim/device_shims.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import {
  startVirtualDevice,
  type VirtualDevice,
  type VirtualDeviceOptions,
} from "../../lib/sim/virtual_device.ts";
import { spec as deploySpec } from "../../tasks/deploy.ts";

const KEY_512 = VECTORS + "test-key-512.pem";
const KEY_2048 = VECTORS + "test-key-2048.pem";
const key512 = parsePrivateKey(vectorText("test-key-512.pem"));
const key2048 = parsePrivateKey(vectorText("test-key-2048.pem"));
const IMAGE = makeSampleFirmware({ size: 48 * 1024 });

const INVENTORY: DeviceEntry[] = [
  { name: "kitchen", ip: "10.0.0.2", tags: ["sensor"] },
  { name: "cellar", ip: "10.0.0.3", port: 9000, tags: ["sensor", "pump"] },
  { name: "garage", ip: "10.0.0.4" },
];

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function fleetOf(...names: string[]): FleetDevice[] {
  return names.map((name, i) => ({ name, ip: `10.0.0.${i + 2}`, port: 8266 }));
}

Deno.test("selectDevices() picks by name or tag, in inventory order, with the default port", () => {
  assertEquals(selectDevices(INVENTORY, []).map((d) => `${d.name}:${d.port}`), [
    "kitchen:8266",
    "cellar:9000",
    "garage:8266",
  ]);
  assertEquals(selectDevices(INVENTORY, ["garage", "pump"]).map((d) => d.name), [
    "cellar",
    "garage",
  ]);
  assertEquals(selectDevices(INVENTORY, ["sensor"]).map((d) => d.name), ["kitchen", "cellar"]);
  // The retry list of a report may be pasted as one comma-separated value too.
  assertEquals(selectDevices(INVENTORY, ["garage,kitchen"]).map((d) => d.name), [
    "kitchen",
    "garage",
  ]);
  assertEquals(selectDevices(INVENTORY, ["garage"], 8300)[0]!.port, 8300);
});

Deno.test("selectDevices() rejects an unknown name or tag and names the known ones", () => {
  assertThrows(
    () => selectDevices(INVENTORY, ["kitchen", "attic", "pumps"]),
    UsageError,
    "--only: no device or tag named 'attic', 'pumps'. Devices: kitchen, cellar, garage; tags: sensor, pump",
  );
  assertThrows(() => selectDevices(undefined, []), UsageError, '--fleet needs a "devices" list');
  assertThrows(() => selectDevices([], ["x"]), UsageError, '--fleet needs a "devices" list');
});

Deno.test("runFleet() runs at most N deploys at once and keeps the rows in inventory order", async () => {
  let active = 0;
  let most = 0;
  const started: string[] = [];
  const rows = await runFleet(fleetOf("a", "b", "c", "d", "e"), async (d) => {
    started.push(d.name);
    active++;
    most = Math.max(most, active);
    // The first ones take longest, so they finish out of order.
    await delay(d.name === "a" ? 40 : 10);
    active--;
    return { ok: true, bytes: d.name.charCodeAt(0) };
  }, { concurrency: 2 });
  assertEquals(most, 2);
  assertEquals(started, ["a", "b", "c", "d", "e"]);
  assertEquals(rows.map((r) => [r.name, r.bytes]), [["a", 97], ["b", 98], ["c", 99], ["d", 100], [
    "e",
    101,
  ]]);
});

Deno.test("runFleet() keeps each failure to its own row and goes on with the others", async () => {
  const unexpected: string[] = [];
  const finished: string[] = [];
  const rows = await runFleet(fleetOf("dead", "buggy", "fine"), (d) => {
    if (d.name === "dead") {
      return Promise.reject(new DeviceUnreachableError("no answer from 10.0.0.2:8266"));
    }
    if (d.name === "buggy") throw new TypeError("boom");
    return Promise.resolve({ ok: true, bytes: 10 });
  }, {
    concurrency: 4,
    onFinish: (d) => finished.push(d.name),
    onUnexpected: (d, e) => unexpected.push(`${d.name}: ${(e as Error).message}`),
  });
  assertEquals(rows, [
    {
      name: "dead",
      ip: "10.0.0.2",
      port: 8266,
      ok: false,
      error: "no answer from 10.0.0.2:8266",
      kind: "DeviceUnreachableError",
      attempts: 1,
      result: "failed",
    },
    {
      name: "buggy",
      ip: "10.0.0.3",
      port: 8266,
      ok: false,
      error: "unexpected TypeError: boom (a bug)",
      kind: "InternalError",
      attempts: 1,
      result: "failed",
    },
    {
      name: "fine",
      ip: "10.0.0.4",
      port: 8266,
      ok: true,
      bytes: 10,
      attempts: 1,
      result: "updated",
    },
  ]);
  assertEquals(unexpected, ["buggy: boom"]);
  assertEquals(finished.sort(), ["buggy", "dead", "fine"]);
});

Deno.test("runFleet() starts no device after the signal aborts", async () => {
  const controller = new AbortController();
  const rows = await runFleet(fleetOf("a", "b", "c"), (d, hooks) => {
    assert(hooks.signal === controller.signal, "the deploy gets the signal");
    if (d.name === "a") controller.abort();
    return Promise.resolve({ ok: true });
  }, { concurrency: 1, signal: controller.signal });
  assertEquals(rows.map((r) => [r.name, r.ok, r.error]), [
    ["a", true, undefined],
    ["b", false, "not started: interrupted"],
    ["c", false, "not started: interrupted"],
  ]);
  const report = buildFleetReport(rows);
  assertEquals([fleetExitCode(report), report.kind], [130, "InterruptedError"]);
});

const ROWS: DeviceReport[] = [
  {
    name: "kitchen",
    ip: "10.0.0.2",
    port: 8266,
    ok: true,
    bytes: 49152,
    seconds: 0.61,
    kibps: 78.69,
    retransmits: 3,
    block: 256,
    versionBefore: "v1.19.1",
    versionAfter: "v1.20.0",
    note: "link passes only small datagrams: 256-byte blocks",
    result: "updated",
  },
  {
    name: "cellar",
    ip: "10.0.0.3",
    port: 8266,
    ok: false,
    error:
      "no answer from 10.0.0.3:8266 in 2 s: nothing was written. The device may not be in OTA mode",
    kind: "DeviceUnreachableError",
    result: "failed",
  },
];

Deno.test("renderFleetTable() lines up the columns and wraps long messages under the last one", () => {
  assertEquals(
    renderFleetTable(ROWS, { messageWidth: 40 }),
    [
      "device   result      bytes  seconds  KiB/s  retx  error / note",
      "kitchen  updated  48.0 KiB      0.6   78.7     3  link passes only small datagrams:",
      "                                                  256-byte blocks",
      "cellar   FAILED          -        -      -     -  no answer from 10.0.0.3:8266 in 2 s:",
      "                                                  nothing was written. The device may not",
      "                                                  be in OTA mode",
    ].join("\n"),
  );
  assertEquals(
    renderFleetTable(ROWS.slice(0, 1), { trigger: true, messageWidth: 80 }),
    [
      "device   result      bytes  seconds  KiB/s  retx  version before → after  error / note",
      "kitchen  updated  48.0 KiB      0.6   78.7     3  v1.19.1 → v1.20.0       link passes only small datagrams: 256-byte blocks",
    ].join("\n"),
  );
});

Deno.test("buildFleetReport() lists the failed devices and the command that retries them", () => {
  const report = buildFleetReport(ROWS, [
    "--fleet",
    "--only",
    "sensor",
    "--only=x",
    "--trigger",
    "my fw.bin",
  ]);
  assertEquals(report.ok, false);
  assertEquals(report.failed, ["cellar"]);
  assertEquals(report.retry, "deno task deploy --fleet --only cellar --trigger 'my fw.bin'");
  assertEquals([fleetExitCode(report), report.kind], [10, "SomeDevicesFailed"]);
  assertEquals(
    renderFleetSummary(report),
    "1 updated, 0 skipped (up to date), 1 failed of 2 devices\nretry them with: deno task deploy --fleet --only cellar --trigger 'my fw.bin'",
  );
  assertEquals(retryCommand(["a", "b"]), "deno task deploy --fleet --only a --only b");
  assertEquals(retryCommand(["it's"]), `deno task deploy --fleet --only 'it'\\''s'`);
  assertEquals(
    buildFleetReport(ROWS, ["--fleet"], "yaota").retry,
    "yaota deploy --fleet --only cellar",
  );
  const good = buildFleetReport(ROWS.slice(0, 1));
  assertEquals([good.ok, good.failed, "retry" in good, "kind" in good, fleetExitCode(good)], [
    true,
    [],
    false,
    false,
    0,
  ]);
  assertEquals(renderFleetSummary(good), "all 1 device updated");
});

Deno.test("FleetProgress prints plain lines per device, at most one per quarter or per 5 s", () => {
  const lines: string[] = [];
  const devices = fleetOf("a", "kitchen");
  const progress = new FleetProgress(devices, { interactive: false, write: (l) => lines.push(l) });
  progress.start(devices[0]!);
  progress.start(devices[1]!);
  const state = (confirmed: number, elapsedMs: number) => ({
    confirmed,
    size: 4096,
    retransmits: 0,
    elapsedMs,
  });
  progress.update("a", state(0, 0));
  progress.update("a", state(512, 100)); // same quarter: no line
  progress.update("kitchen", state(1024, 1000));
  progress.update("a", state(800, 6000)); // 5 s later: a line
  progress.note("a", "block size 256 bytes");
  progress.finish("a", {
    ok: true,
    bytes: 4096,
    seconds: 1,
    kibps: 4,
    retransmits: 0,
    note: "small",
  });
  progress.finish("kitchen", { ok: false, error: "no answer" });
  progress.close();
  assertEquals(lines, [
    "a        sending to 10.0.0.2:8266",
    "kitchen  sending to 10.0.0.3:8266",
    "a          0% 0 B/4.0 KiB 0.0 KiB/s ETA -- retx 0",
    "kitchen   25% 1.0 KiB/4.0 KiB 1.0 KiB/s ETA 3.0 s retx 0",
    "a         19% 800 B/4.0 KiB 0.1 KiB/s ETA 24.7 s retx 0",
    "a        block size 256 bytes",
    "a        done: 4.0 KiB in 1.0 s, 4.0 KiB/s, 0 retransmissions, small",
    "kitchen  failed: no answer",
  ]);
});

const SHARED: SharedRequest = {
  file: "",
  block: "auto",
  pace: true,
  timeoutMs: 2000,
  force: false,
  bootCheck: true,
  bootCheckMs: 300,
  appOffset: DEFAULT_APP_OFFSET,
  flashSize: 0x100000,
};

Deno.test("deployFleet() checks the selection and the image once, before any device is tried", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(file, new Uint8Array(4096).fill(0x5a));
  const tried: string[] = [];
  const options = {
    inventory: INVENTORY,
    request: { ...SHARED, file },
    keyPath: KEY_512,
    progress: {
      start: (d: FleetDevice) => tried.push(d.name),
      update() {},
      note() {},
      finish() {},
      close() {},
    },
    log: () => {},
  };
  await assertRejects(
    () => deployFleet({ ...options, only: ["attic"] }),
    UsageError,
    "no device or tag named 'attic'",
  );
  await assertRejects(() => deployFleet(options), UnsafeImageError, `refusing to send '${file}'`);
  await assertRejects(
    () => deployFleet({ ...options, request: { ...SHARED, file: `${dir.path}/none.bin` } }),
    FileError,
    "no file at",
  );
  await Deno.writeFile(file, IMAGE);
  await assertRejects(
    () => deployFleet({ ...options, keyPath: `${dir.path}/none.pem` }),
    KeyError,
    "none.pem",
  );
  assertEquals(tried, []);
});

/** boot.py after `webrepl_setup` enabled the daemon. */
const BOOT_PY = DEFAULT_BOOT_PY.replace(
  "#import webrepl\n#webrepl.start()",
  "import webrepl\nwebrepl.start()",
);

Deno.test("deployFleet() with trigger logs in to each board with its own password and reports both versions", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(
    file,
    makeSampleFirmware({ size: 48 * 1024, version: "v1.20.0-new", seed: 2 }),
  );
  const running = (password: string) => {
    const flash = new Uint8Array(0x100000).fill(0xff);
    flash.set(IMAGE, DEFAULT_APP_OFFSET);
    return startBoard({
      flash,
      start: "boot",
      webrepl: { password, files: new Map([["boot.py", BOOT_PY]]) },
    });
  };
  const boards = [await running("pw-one1"), await running("pw-two2")];
  try {
    assertEquals(boards.map((b) => b.device.model.mode), ["app", "app"]);
    const report = await deployFleet({
      inventory: boards.map((b, i) => ({
        name: `board${i + 1}`,
        ip: "127.0.0.1",
        port: b.device.port,
        passwordEnv: `BOARD${i + 1}_PW`,
      })),
      request: { ...SHARED, file },
      keyPath: KEY_512,
      trigger: true,
      triggerSettings: { otaWaitMs: 5000, comeBackMs: 10000 },
      env: (name) => ({ BOARD1_PW: "pw-one1", BOARD2_PW: "pw-two2" })[name],
      progress: new FleetProgress([], { interactive: false, write: () => {} }),
      log: () => {},
    });
    assertEquals(report.failed, [], JSON.stringify(report));
    for (const d of report.devices) {
      assertEquals([d.versionBefore, d.versionAfter], [
        "v1.19.1 on 2022-06-18",
        "v1.20.0-new on 2022-06-18",
      ]);
    }
    assertStringIncludes(
      renderFleetTable(report.devices, { trigger: true }),
      "v1.19.1 on 2022-06-18 → v1.20.0-new on 2022-06-18",
    );
  } finally {
    for (const b of boards) await b.device.close();
  }
});

Deno.test("deployFleet() with trigger reads each device's password variable; a bad key stays in its row", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(file, IMAGE);
  const calls: string[] = [];
  const report = await deployFleet({
    inventory: [
      { name: "a", ip: "10.0.0.2", passwordEnv: "A_PW" },
      { name: "b", ip: "10.0.0.3", key: KEY_2048 },
      { name: "c", ip: "10.0.0.4", key: `${dir.path}/missing.pem` },
    ],
    request: { ...SHARED, file },
    keyPath: KEY_512,
    trigger: true,
    env: (name) => ({ A_PW: "secret-a", WEBREPL_PASSWORD: "pw-b1" })[name],
    triggeredDeploy: (request, prepared, { password }) => {
      calls.push(`${request.host}:${request.port} ${password} ${prepared.fingerprint}`);
      return Promise.resolve(
        {
          ok: true,
          bytes: prepared.source.size,
          seconds: 1,
          kibps: 48,
          retransmits: 0,
          block: 1024,
          versionBefore: "v1.19.1 on 2022-06-18",
          versionAfter: "v1.20.0 on 2023-04-26",
        } as DeployResult & { versionBefore: string; versionAfter: string },
      );
    },
    progress: new FleetProgress([], { interactive: false, write: () => {} }),
    log: () => {},
  });
  // Each distinct key was loaded once; the device that names one gets it.
  assertEquals(calls.sort(), [
    `10.0.0.2:8266 secret-a ${key512.fingerprint}`,
    `10.0.0.3:8266 pw-b1 ${key2048.fingerprint}`,
  ]);
  assertEquals(report.devices[0]!.versionAfter, "v1.20.0 on 2023-04-26");
  assertEquals(report.failed, ["c"]);
  assertEquals(report.devices[2]!.kind, "KeyError");
  assertStringIncludes(report.devices[2]!.error!, "missing.pem");

  // The password checks run before anything is sent, and a missing one is that row's error.
  const plan = await preflight([{ name: "d", ip: "10.0.0.5", port: 8266 }], {
    request: { ...SHARED, file },
    keyPath: KEY_512,
    trigger: true,
    env: () => undefined,
    triggeredDeploy: () => Promise.reject(new Error("not reached")),
  });
  const [row] = await runFleet([{ name: "d", ip: "10.0.0.5", port: 8266 }], plan.deployOne, {
    concurrency: 1,
  });
  assertEquals(
    row!.error,
    "no WebREPL password for 'd': set WEBREPL_PASSWORD (--fleet reads passwords from the environment only)",
  );
});

interface Board {
  device: VirtualDevice;
  /** `performance.now()` when the device started: its event times count from there. */
  startedAt: number;
}

async function startBoard(options: Partial<VirtualDeviceOptions> = {}): Promise<Board> {
  const startedAt = performance.now();
  const device = await startVirtualDevice({
    port: 0,
    modulus: key512.modulus,
    flash: new Uint8Array(0x100000).fill(0xff),
    profile: PROFILES.instant,
    ...options,
    link: { delayMs: 1, ...options.link },
  });
  return { device, startedAt };
}

/** The span between a device's first and last accepted packet, on the test's clock. */
function acceptedSpan(board: Board): [number, number] | undefined {
  const at = board.device.events
    .filter((e) => e.type === "packet" && e.outcome === "accepted")
    .map((e) => e.at + board.startedAt);
  return at.length ? [Math.min(...at), Math.max(...at)] : undefined;
}

/** The most spans that cover one moment. */
function mostAtOnce(spans: [number, number][]): number {
  const edges = spans.flatMap(([from, to]) => [[from, 1], [to, -1]] as const)
    .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let now = 0;
  let most = 0;
  for (const [, step] of edges) most = Math.max(most, now += step);
  return most;
}

function assertFlashHoldsImage(board: Board, name: string): void {
  const flash = board.device.model.flash;
  assertEquals(
    flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + IMAGE.length),
    IMAGE,
    `${name}: flash`,
  );
  const below = board.device.events.filter((e) => e.type === "flash-write" && e.belowApp);
  assertEquals(below.length, 0, `${name}: a flash write below the app offset`);
}

const NO_ANSWER_CAUSES = [
  "nothing was written. The device may not be in OTA mode",
  "the address may be wrong",
  `or the device was built for another key (this file is signed with key ${key512.fingerprint}`,
];

Deno.test("deployFleet() updates the healthy devices, reports the others, and keeps to the concurrency", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(file, IMAGE);
  const boards: Record<string, Board> = {};
  try {
    boards.alpha = await startBoard();
    boards.bravo = await startBoard({ link: { loss: 0.05, seed: 7 } });
    boards.charlie = await startBoard({ mtu: 548 });
    boards.delta = await startBoard({ modulus: key2048.modulus });
    const gone = await startBoard();
    await gone.device.close();
    boards.foxtrot = await startBoard({ modulus: key2048.modulus });
    const inventory: DeviceEntry[] = [
      { name: "alpha", ip: "127.0.0.1", port: boards.alpha.device.port },
      { name: "bravo", ip: "127.0.0.1", port: boards.bravo.device.port },
      { name: "charlie", ip: "127.0.0.1", port: boards.charlie.device.port },
      { name: "delta", ip: "127.0.0.1", port: boards.delta.device.port },
      { name: "echo", ip: "127.0.0.1", port: gone.device.port },
      { name: "foxtrot", ip: "127.0.0.1", port: boards.foxtrot.device.port, key: KEY_2048 },
    ];
    const runs: Record<string, [number, number]> = {};
    const lines: string[] = [];
    const progress = new FleetProgress(inventory, {
      interactive: false,
      write: (l) => lines.push(l),
    });
    const report = await deployFleet({
      inventory,
      concurrency: 2,
      request: { ...SHARED, file },
      keyPath: KEY_512,
      progress: {
        start: (d) => {
          runs[d.name] = [performance.now(), Infinity];
          progress.start(d);
        },
        update: (name, state) => progress.update(name, state),
        note: (name, message) => progress.note(name, message),
        finish: (name, outcome) => {
          runs[name]![1] = performance.now();
          progress.finish(name, outcome);
        },
        close: () => progress.close(),
      },
      log: (l) => lines.push(l),
    });
    const row = (name: string) => report.devices.find((d) => d.name === name)!;

    for (const name of ["alpha", "bravo", "charlie", "foxtrot"]) {
      assertEquals(row(name).ok, true, `${name}: ${row(name).error}`);
      assertEquals(row(name).bytes, IMAGE.length);
      assertFlashHoldsImage(boards[name]!, name);
    }
    assert(row("bravo").retransmits! > 0, "the lossy link needed retransmissions");
    assertEquals(row("charlie").block, 256);
    assertEquals(row("charlie").note, "link passes only small datagrams: 256-byte blocks");
    assertEquals([row("alpha").block, row("alpha").note], [1024, undefined]);
    assertEquals(row("foxtrot").block, 1024);

    // Built for another key: no answer. Not there (its port closed): refused at once.
    for (const name of ["delta", "echo"]) {
      assertEquals([row(name).ok, row(name).kind], [false, "DeviceUnreachableError"]);
    }
    assertStringIncludes(
      row("delta").error!,
      `no answer from 127.0.0.1:${row("delta").port} in 2 s`,
    );
    for (const cause of NO_ANSWER_CAUSES) assertStringIncludes(row("delta").error!, cause);
    assertStringIncludes(
      row("echo").error!,
      `127.0.0.1:${row("echo").port} refused the packet at once (ICMP port unreachable)`,
    );
    assertEquals(
      boards.delta.device.events.filter((e) => e.type === "packet" && e.outcome === "accepted")
        .length,
      0,
    );

    // Never more than 2 at once, by the devices' own clocks; and 2 at once did happen.
    const spans = Object.values(boards).map(acceptedSpan).filter((s) => s !== undefined);
    assertEquals(spans.length, 4);
    assert(mostAtOnce(spans) <= 2, `more than 2 transfers at once: ${JSON.stringify(spans)}`);
    assertEquals(mostAtOnce(Object.values(runs)), 2);

    // The JSON report: every device, in inventory order, and it survives JSON.
    const json = JSON.parse(JSON.stringify(report)) as FleetReport;
    assertEquals(json.devices.map((d) => d.name), inventory.map((d) => d.name));
    assertEquals([json.ok, json.failed], [false, ["delta", "echo"]]);
    assertEquals(json.retry, "deno task deploy --fleet --only delta --only echo");
    for (const d of json.devices) {
      assertEquals([d.ip, typeof d.port, typeof d.ok], ["127.0.0.1", "number", "boolean"]);
      if (d.ok) assert(d.seconds! > 0 && d.kibps! > 0 && d.retransmits !== undefined, d.name);
    }

    const table = renderFleetTable(report.devices, { messageWidth: 1000 });
    assertStringIncludes(table, "charlie  updated");
    assertStringIncludes(table, "link passes only small datagrams: 256-byte blocks");
    assertStringIncludes(lines.join("\n"), "to 6 devices, 2 at a time");
    assertStringIncludes(lines.join("\n"), "delta    failed: no answer from");
  } finally {
    for (const b of Object.values(boards)) await b.device.close();
  }
});

Deno.test({
  name: "deno task deploy --fleet --json prints one report with every device",
  // Runs once the lead has wired --fleet into tasks/deploy.ts.
  ignore: !("fleet" in deploySpec.options),
  async fn() {
    await using dir = await tempDir();
    const file = `${dir.path}/fw.bin`;
    await Deno.writeFile(file, IMAGE);
    const good = await startBoard();
    const small = await startBoard({ mtu: 548 });
    const gone = await startBoard();
    await gone.device.close();
    try {
      const config = `${dir.path}/ota.config.json`;
      await Deno.writeTextFile(
        config,
        JSON.stringify({
          devices: [
            { name: "good", ip: "127.0.0.1", port: good.device.port, tags: ["t"] },
            { name: "small", ip: "127.0.0.1", port: small.device.port, tags: ["t"] },
            { name: "gone", ip: "127.0.0.1", port: gone.device.port },
          ],
        }),
      );
      const r = await runTaskFile("deploy", [
        "--config",
        config,
        "--fleet",
        "--json",
        "--key",
        KEY_512,
        "--timeout",
        "2",
        "--boot-check-window",
        "0.3",
        "--concurrency",
        "3",
        file,
      ]);
      assertEquals(r.code, 10, r.stderr); // some devices failed (lib/exit_codes.ts)
      const report = JSON.parse(r.stdout) as FleetReport;
      assertEquals(report.kind, "SomeDevicesFailed");
      assertEquals(report.devices.map((d) => [d.name, d.ok]), [["good", true], ["small", true], [
        "gone",
        false,
      ]]);
      assertEquals(report.failed, ["gone"]);
      assert(report.retry?.startsWith("deno task deploy --fleet --only gone"), report.retry);
      assertEquals(report.devices[1]!.note, "link passes only small datagrams: 256-byte blocks");
      assertFlashHoldsImage(good, "good");
      assertFlashHoldsImage(small, "small");
    } finally {
      await good.device.close();
      await small.device.close();
    }
  },
});

// ---- One board, one deploy: duplicates refused ---------------------------------------------

Deno.test("selectDevices() refuses two devices at one address and port, naming both", () => {
  const twice: DeviceEntry[] = [
    { name: "kitchen", ip: "10.0.0.2" },
    { name: "cellar", ip: "10.0.0.3" },
    // The same board: the default port written out, the name in another case.
    { name: "pantry", ip: "10.0.0.2", port: 8266 },
  ];
  assertThrows(
    () => selectDevices(twice, ["cellar"]),
    ConfigError,
    "the devices 'kitchen' and 'pantry' have the same address, 10.0.0.2:8266",
  );
  const named: DeviceEntry[] = [
    { name: "a", ip: "Board.LAN" },
    { name: "b", ip: "board.lan." },
  ];
  assertThrows(() => selectDevices(named), ConfigError, "the devices 'a' and 'b'");
  // One address, two ports: two boards behind one NAT, say.
  const ports: DeviceEntry[] = [
    { name: "a", ip: "10.0.0.2", port: 8266 },
    { name: "b", ip: "10.0.0.2", port: 8267 },
  ];
  assertEquals(selectDevices(ports).map((d) => d.name), ["a", "b"]);
  // A default port from --port makes two entries collide.
  assertThrows(
    () =>
      selectDevices(
        [{ name: "a", ip: "10.0.0.2", port: 9000 }, { name: "b", ip: "10.0.0.2" }],
        [],
        9000,
      ),
    ConfigError,
    "10.0.0.2:9000",
  );
});

Deno.test("deno task deploy --fleet refuses a config listing one board twice, before sending anything", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(file, IMAGE);
  const board = await startBoard();
  await using _device = board.device;
  const config = `${dir.path}/ota.config.json`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      devices: [
        { name: "kitchen", ip: "127.0.0.1", port: board.device.port },
        { name: "garage", ip: "127.0.0.1", port: board.device.port },
      ],
    }),
  );
  const r = await runTaskFile("deploy", ["--config", config, "--fleet", "--key", KEY_512, file]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(
    r.stderr,
    `the devices 'kitchen' and 'garage' have the same address, 127.0.0.1:${board.device.port}`,
  );
  assertEquals(board.device.events.filter((e) => e.type === "packet").length, 0);
});

Deno.test("deployFleet(): two names for one board (localhost, 127.0.0.1) are not sent to at once", async () => {
  await using dir = await tempDir();
  await using locks = await tempDir();
  const file = `${dir.path}/fw.bin`;
  await Deno.writeFile(file, IMAGE);
  const board = await startBoard();
  await using _device = board.device;
  const port = board.device.port;
  Deno.env.set("OTA_LOCK_DIR", locks.path);
  try {
    const report = await deployFleet({
      inventory: [
        { name: "by-name", ip: "localhost", port },
        { name: "by-address", ip: "127.0.0.1", port },
      ],
      concurrency: 2,
      request: { ...SHARED, file },
      keyPath: KEY_512,
      progress: { start() {}, update() {}, note() {}, finish() {}, close() {} },
      log: () => {},
    });
    const rows = report.devices.map((d) => [d.name, d.ok, d.kind]);
    const busy = report.devices.filter((d) => d.kind === "BoardBusyError");
    assertEquals(busy.length, 1, JSON.stringify(rows));
    assertStringIncludes(busy[0]!.error!, "this deploy is already sending to");
    assertEquals(report.devices.filter((d) => d.ok).length, 1, JSON.stringify(rows));
    assertFlashHoldsImage(board, "the board");
  } finally {
    Deno.env.delete("OTA_LOCK_DIR");
  }
});
