/**
 * Fleet operations end to end on virtual boards: status, version-aware deploys, the
 * rollout policy, the event stream and releases. Each board is a virtual yaota8266 whose
 * app runs real MicroPython with the image's own frozen ota.py, so a board reports the
 * build it was flashed with.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "../_assert.ts";
import { ROOT, runTaskFile, tempDir, VECTORS, vectorText } from "../_helpers.ts";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { DEFAULT_BOOT_PY } from "../../lib/sim/device_shims.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { renderOtaModule } from "../../lib/format/ota_module.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { startVirtualDevice, type VirtualDevice } from "../../lib/sim/virtual_device.ts";
import { readFrozenTable } from "../../lib/format/frozen_table.ts";
import type { StatusReport } from "../../lib/deploy/status.ts";
import type { FleetReport } from "../../lib/deploy/fleet.ts";
import type { StampedEvent } from "../../lib/deploy/events.ts";
import { deployWithTrigger } from "../../lib/deploy/board_trigger.ts";
import { BuildMismatchError } from "../../lib/deploy/build_compare.ts";
import { buildEnv, makeFakeMicroPythonTree } from "../fixtures/fake_trees.ts";

const KEY = VECTORS + "test-key-512.pem";
const key = parsePrivateKey(vectorText("test-key-512.pem"));
const PASSWORD = "pw-fleet1";
const TEMPLATE = Deno.readTextFileSync(join(ROOT, "templates", "ota.py"));
const BOOT_PY = DEFAULT_BOOT_PY.replace(
  "#import webrepl\n#webrepl.start()",
  "import webrepl\nwebrepl.start()",
);

/** Three builds, oldest first, as build-ota keeps them. */
const BUILDS = {
  a: { id: "aaaa00000001", version: "1.0", builtAt: "2024-01-01T10:00:00.000Z", seed: 11 },
  b: { id: "bbbb00000002", version: "1.1", builtAt: "2024-02-01T10:00:00.000Z", seed: 12 },
  c: { id: "cccc00000003", version: "1.2", builtAt: "2024-03-01T10:00:00.000Z", seed: 13 },
};
type BuildName = keyof typeof BUILDS;

/** The image of a build: its own ota.py frozen into it, as build-ota makes it. */
function imageOf(name: BuildName): Uint8Array {
  const b = BUILDS[name];
  return makeSampleFirmware({
    size: 40 * 1024,
    seed: b.seed,
    frozen: [{
      name: "ota.py",
      source: renderOtaModule(TEMPLATE, { build: b.id, version: b.version }),
    }],
  });
}

/** dist/ as build-ota leaves it: each build kept under releases/, `current` as the output. */
async function makeDist(dir: string, current: BuildName): Promise<string> {
  const dist = join(dir, "dist");
  for (const name of Object.keys(BUILDS) as BuildName[]) {
    const b = BUILDS[name];
    const image = imageOf(name);
    const manifest = JSON.stringify(
      {
        firmware: "firmware-ota.bin",
        builtAt: b.builtAt,
        build: { id: b.id, builtAt: b.builtAt, version: b.version },
        image: { size: image.length, sha256: sha256(image), appOffset: "0x3c000" },
      },
      null,
      2,
    );
    const release = join(dist, "releases", b.id);
    await Deno.mkdir(release, { recursive: true });
    await Deno.writeFile(join(release, "firmware-ota.bin"), image);
    await Deno.writeTextFile(join(release, "manifest.json"), manifest);
    if (name === current) {
      await Deno.writeFile(join(dist, "firmware-ota.bin"), image);
      await Deno.writeTextFile(join(dist, "manifest.json"), manifest);
    }
  }
  return dist;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

interface BoardOptions {
  /** The build in flash; "legacy": an image from before build ids (no frozen table). */
  build: BuildName | "legacy";
  /** "app" runs it; "ota" sits in OTA mode. */
  mode?: "app" | "ota";
  flashFault?: "corrupt" | "drop";
  port?: number;
}

async function startBoard(options: BoardOptions): Promise<VirtualDevice> {
  const flash = new Uint8Array(0x100000).fill(0xff);
  const image = options.build === "legacy"
    ? makeSampleFirmware({ size: 40 * 1024, seed: 10 })
    : imageOf(options.build);
  flash.set(image, DEFAULT_APP_OFFSET);
  return await startVirtualDevice({
    port: options.port ?? 0,
    modulus: key.modulus,
    flash,
    profile: PROFILES.instant,
    start: options.mode === "ota" ? "ota" : "boot",
    ...(options.flashFault ? { flashFault: options.flashFault } : {}),
    webrepl: { password: PASSWORD, files: new Map([["boot.py", BOOT_PY]]) },
  });
}

/** A port nothing listens on: a board that is offline. */
async function offlinePort(): Promise<number> {
  const gone = await startVirtualDevice({
    port: 0,
    modulus: key.modulus,
    flash: new Uint8Array(0x100000).fill(0xff),
  });
  const port = gone.port;
  await gone.close();
  return port;
}

/** The build id the board's flash holds now (from its image's frozen ota.py). */
function flashedBuild(device: VirtualDevice): string | undefined {
  const ota = readFrozenTable(device.model.flash.subarray(DEFAULT_APP_OFFSET)).find((m) =>
    m.name === "ota.py"
  );
  return /^BUILD = "(\w+)"/m.exec(ota?.source ?? "")?.[1];
}

async function writeConfig(dir: string, devices: [string, number][]): Promise<string> {
  const path = join(dir, "ota.config.json");
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      key: KEY,
      devices: devices.map(([name, port]) => ({ name, ip: "127.0.0.1", port })),
    }),
  );
  return path;
}

const ENV = { WEBREPL_PASSWORD: PASSWORD };

/** Splits a table line into its cells (two or more spaces apart). */
function cells(line: string): string[] {
  return line.trim().split(/ {2,}/);
}

/**
 * The rows of a deploy table: a message wrapped onto indented lines is joined back to
 * its row. Returns the rows and the lines after the table.
 */
function tableRows(text: string, count: number): { rows: string[]; after: string[] } {
  const lines = text.trimEnd().split("\n");
  const rows: string[] = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith(" ")) rows[rows.length - 1] += " " + line.trim();
    else if (rows.length < count) rows.push(line);
    else break;
  }
  return { rows, after: lines.slice(i) };
}

Deno.test("status on a mixed fleet: running (up to date, older, newer, unknown build), in OTA mode, offline", async () => {
  await using dir = await tempDir();
  await makeDist(dir.path, "b");
  const boards: Record<string, VirtualDevice> = {};
  try {
    boards.current = await startBoard({ build: "b" });
    boards.old = await startBoard({ build: "a" });
    boards.newer = await startBoard({ build: "c" });
    boards.legacy = await startBoard({ build: "legacy" });
    boards.waiting = await startBoard({ build: "b", mode: "ota" });
    const offline = await offlinePort();
    const names = ["current", "old", "newer", "legacy", "waiting", "offline"];
    const port = (n: string) => boards[n]?.port ?? offline;
    await writeConfig(dir.path, names.map((n) => [n, port(n)]));

    const r = await runTaskFile("status", ["--fleet", "--timeout", "2"], {
      cwd: dir.path,
      env: ENV,
    });
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assertEquals(
      lines[0],
      `dist/manifest.json: build bbbb00000002 (1.1), built ${BUILDS.b.builtAt}`,
    );
    assertEquals(cells(lines[1]!), [
      "device",
      "address",
      "state",
      "MicroPython",
      "build",
      "vs dist",
      "release / note",
    ]);
    const addr = (n: string) => `127.0.0.1:${port(n)}`;
    const release = (b: BuildName) => `release ${BUILDS[b].id}, built ${BUILDS[b].builtAt}`;
    assertEquals(lines.slice(2, 8).map(cells), [
      [
        "current",
        addr("current"),
        "app",
        "1.19.1",
        "bbbb00000002 (1.1)",
        "up to date",
        release("b"),
      ],
      ["old", addr("old"), "app", "1.19.1", "aaaa00000001 (1.0)", "older", release("a")],
      ["newer", addr("newer"), "app", "1.19.1", "cccc00000003 (1.2)", "newer", release("c")],
      ["legacy", addr("legacy"), "app", "1.19.1", "unknown", "unknown"],
      ["waiting", addr("waiting"), "OTA mode", "-", "-", "unknown"],
      [
        "offline",
        addr("offline"),
        "offline",
        "-",
        "-",
        "unknown",
        "no answer over WebREPL or UDP: offline, busy with another OTA session, or built for another key",
      ],
    ]);
    assertEquals(
      lines[8],
      "6 boards: 4 running, 1 in OTA mode, 1 offline; 1 up to date, 1 older than dist",
    );
    assertEquals(lines.length, 9);
    assert(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD), "a password was printed");

    // --json: the same, for a CI job.
    const j = await runTaskFile("status", [
      "--fleet",
      "--json",
      "--only",
      "old",
      "--only",
      "waiting",
    ], {
      cwd: dir.path,
      env: ENV,
    });
    assertEquals(j.code, 0, j.stderr);
    const report = JSON.parse(j.stdout) as StatusReport;
    assertEquals(report.manifest, {
      id: BUILDS.b.id,
      builtAt: BUILDS.b.builtAt,
      version: "1.1",
    });
    assertEquals(report.devices, [
      {
        name: "old",
        ip: "127.0.0.1",
        port: port("old"),
        state: "app",
        webrepl: "logged in",
        otaMode: false,
        micropython: { release: "1.19.1", version: "v1.19.1 on 2022-06-18" },
        build: { id: BUILDS.a.id, version: "1.0" },
        comparison: "older",
        flashUserStart: "0xd4000",
        release: { id: BUILDS.a.id, builtAt: BUILDS.a.builtAt, version: "1.0" },
      },
      {
        name: "waiting",
        ip: "127.0.0.1",
        port: port("waiting"),
        state: "ota",
        webrepl: "refused",
        otaMode: true,
        comparison: "unknown",
      },
    ]);
    // --events: the same answers as JSON lines, the table on stderr.
    const e = await runTaskFile("status", ["--fleet", "--events", "--only", "current,offline"], {
      cwd: dir.path,
      env: ENV,
    });
    assertEquals(e.code, 0, e.stderr);
    const events = e.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as StampedEvent);
    assertEquals(events.map((x) => x.seq), events.map((_, i) => i + 1));
    assertEquals(events[0]!.type, "run.started");
    const statuses = events.filter((x): x is Extract<StampedEvent, { type: "device.status" }> =>
      x.type === "device.status"
    );
    assertEquals(
      statuses.map((x) => [x.device, x.status.state, x.status.comparison]).sort(),
      [["current", "app", "up to date"], ["offline", "offline", "unknown"]],
    );
    assertEquals(
      events.filter((x) => x.type === "phase.ended").map((x) => (x as { ok: boolean }).ok),
      [true, true],
    );
    const last = events.at(-1) as Extract<StampedEvent, { type: "run.ended" }>;
    assertEquals([last.type, last.ok, last.exitCode], ["run.ended", true, 0]);
    assertEquals((last.report as StatusReport).devices.map((d) => d.name), ["current", "offline"]);
    assertStringIncludes(e.stderr, "2 boards: 1 running, 0 in OTA mode, 1 offline");

    // Asking changed nothing: the board in OTA mode took no packet, and it still waits.
    const waiting = boards.waiting!;
    assertEquals(
      waiting.events.filter((e) => e.type === "packet" && e.outcome !== "duplicate").length,
      0,
    );
    assertEquals(waiting.model.mode, "ota");
  } finally {
    for (const b of Object.values(boards)) await b.close();
  }
});

/**
 * deploy --fleet --trigger with short timeouts: the image is dist's current build. The boot
 * check ends as soon as the app's WebREPL answers, so its window only bounds a failing board.
 */
function deployArgs(...extra: string[]): string[] {
  return [
    "--fleet",
    "--trigger",
    "--timeout",
    "2",
    "--boot-check-window",
    "3",
    ...extra,
  ];
}

Deno.test("a fleet of 6: --canary 1 stops after a canary that fails its boot check; resumed without it, up to date skipped, downgrade refused, the rest updated, as JSON lines", async () => {
  await using dir = await tempDir();
  await makeDist(dir.path, "b");
  const boards: Record<string, VirtualDevice> = {};
  try {
    // The canary's flash corrupts every write: the new image fails boot8266's MD5 check.
    boards.bad = await startBoard({ build: "a", flashFault: "corrupt" });
    boards.current = await startBoard({ build: "b" });
    boards.old = await startBoard({ build: "a" });
    boards.newer = await startBoard({ build: "c" });
    boards.legacy = await startBoard({ build: "legacy" });
    const offline = await offlinePort();
    const names = ["bad", "current", "old", "newer", "legacy", "offline"];
    await writeConfig(dir.path, names.map((n) => [n, boards[n]?.port ?? offline]));
    const r = await runTaskFile("deploy", deployArgs("--canary", "1"), { cwd: dir.path, env: ENV });
    assertEquals(r.code, 10, r.stderr); // some failed; the others not attempted
    // The header and one row per board, then the summary.
    const { rows, after } = tableRows(r.stdout, 1 + names.length);
    assertEquals(cells(rows[0]!), [
      "device",
      "result",
      "bytes",
      "seconds",
      "KiB/s",
      "retx",
      "version before → after",
      "build before → after",
      "error / note",
    ]);
    assertEquals(cells(rows[1]!), [
      "bad",
      "FAILED",
      "-",
      "-",
      "-",
      "-",
      "v1.19.1 on 2022-06-18 → ?",
      "aaaa00000001 → ?",
      "the device did not boot the new image after 2 attempts: it fell back to OTA mode. Check " +
      "the image with 'deno task inspect dist/firmware-ota.bin --app-offset 0x3c000': is it built " +
      "for this app offset and does its MD5 trailer match?",
    ]);
    const notAttempted = "not attempted: canary 'bad' did not end up running the new build";
    for (const [i, name] of names.slice(1).entries()) {
      assertEquals(
        cells(rows[2 + i]!),
        [name, "not attempted", "-", "-", "-", "-", "? → ?", "? → ?", notAttempted],
      );
    }
    assertEquals(after, [
      "0 updated, 0 skipped (up to date), 1 failed, 5 not attempted of 6 devices",
      "rollout stopped: canary 'bad' did not end up running the new build",
      "retry the failed and resume the rest with: deno task deploy --fleet --only bad --only current " +
      "--only old --only newer --only legacy --only offline --trigger --timeout 2 --boot-check-window 3 --canary 1",
    ]);
    assertStringIncludes(r.stderr, "rollout: canary 'bad' did not end up running the new build");
    // Nothing was sent to the others; the canary is back in OTA mode, its OTA server intact.
    assertEquals(flashedBuild(boards.old!), BUILDS.a.id);
    for (const name of names.slice(1, -1)) {
      assertEquals(boards[name]!.events.filter((e) => e.type === "packet").length, 0, name);
    }
    assertEquals(boards.bad!.model.mode, "ota");
    assertEquals(
      boards.bad!.events.filter((e) => e.type === "flash-write" && e.belowApp).length,
      0,
    );

    // The bad board is taken out; the rest resumed, with the event stream on.
    const rest = names.slice(1);
    const e = await runTaskFile(
      "deploy",
      deployArgs("--only", rest.join(","), "--canary", "1", "--concurrency", "2", "--events"),
      { cwd: dir.path, env: ENV },
    );
    assertEquals(e.code, 10, e.stderr);
    assert(!e.stdout.includes(PASSWORD) && !e.stderr.includes(PASSWORD), "a password was printed");

    // The report a person reads is on stderr, the table after the progress lines.
    const table = e.stderr.slice(e.stderr.indexOf("device   result"));
    const resumed = tableRows(table, 1 + rest.length);
    const row = (name: string) => cells(resumed.rows.find((l) => l.startsWith(name + " "))!);
    assertEquals(row("current"), [
      "current",
      "skipped",
      "-",
      "-",
      "-",
      "-",
      "v1.19.1 on 2022-06-18 → v1.19.1 on 2022-06-18",
      "bbbb00000002 (as is)",
      "up to date: it runs build bbbb00000002 (1.1)",
    ]);
    for (const name of ["old", "legacy"]) {
      const [device, result, bytes, seconds, kbps, retx, version, build] = row(name);
      assertEquals([device, result, bytes], [name, "updated", "40.0 KiB"]);
      assert(Number(seconds) >= 0 && Number(kbps) > 0 && Number(retx) >= 0, row(name).join("|"));
      assertEquals(version, "v1.19.1 on 2022-06-18 → v1.19.1 on 2022-06-18");
      assertEquals(build, `${name === "old" ? BUILDS.a.id : "unknown"} → ${BUILDS.b.id}`);
      assertEquals(flashedBuild(boards[name]!), BUILDS.b.id);
    }
    assertEquals(row("newer"), [
      "newer",
      "FAILED",
      "-",
      "-",
      "-",
      "-",
      "v1.19.1 on 2022-06-18 → ?",
      "cccc00000003 → ?",
      `127.0.0.1:${boards.newer!.port} runs build cccc00000003 (1.2), built ${BUILDS.c.builtAt}, ` +
      `newer than bbbb00000002 (1.1) (built ${BUILDS.b.builtAt}): refusing the downgrade. Pass ` +
      "--allow-downgrade to push the older build, or build again.",
    ]);
    assertEquals(row("offline").slice(0, 2), ["offline", "FAILED"]);
    assertStringIncludes(row("offline").at(-1)!, `no WebREPL at 127.0.0.1:${offline}`);
    assertEquals(resumed.after, [
      "2 updated, 1 skipped (up to date), 2 failed of 5 devices",
      "retry them with: deno task deploy --fleet --only newer --only offline --trigger --timeout 2 " +
      "--boot-check-window 3 --canary 1 --concurrency 2 --events",
    ]);
    // Skipped and refused boards were left running what they ran: no reset, no packet.
    assertEquals(flashedBuild(boards.current!), BUILDS.b.id);
    assertEquals(flashedBuild(boards.newer!), BUILDS.c.id);
    for (const name of ["current", "newer"]) {
      assertEquals(boards[name]!.events.filter((e) => e.type === "reboot").length, 0, name);
    }

    // stdout: nothing but events, one JSON object per line, the whole run.
    const events = e.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as StampedEvent);
    assertEquals(events.map((e) => e.seq), events.map((_, i) => i + 1));
    for (const e of events) {
      assertEquals(e.v, 1);
      assert(!Number.isNaN(Date.parse(e.time)), e.time);
    }
    assertEquals(events[0]!.type, "run.started");
    assertEquals(events.at(-1)!.type, "run.ended");
    const started = events[0] as Extract<StampedEvent, { type: "run.started" }>;
    assertEquals(started.devices, rest);
    assertEquals(started.image?.build, {
      id: BUILDS.b.id,
      builtAt: BUILDS.b.builtAt,
      version: "1.1",
    });
    assertEquals(started.policy, { concurrency: 2, canary: 1, maxFailures: null, retries: 0 });
    const of = <T extends StampedEvent["type"]>(type: T) =>
      events.filter((e): e is Extract<StampedEvent, { type: T }> => e.type === type);
    assertEquals(of("phase.started").filter((e) => e.phase === "preflight").length, 1);
    assertEquals(
      of("device.result").map((e) => [e.device, e.result, e.buildBefore, e.buildAfter]),
      [
        ["current", "skipped", BUILDS.b.id, BUILDS.b.id],
        // Two at a time after the canary: the order of these depends on which ends first.
        ...of("device.result").slice(1).map((
          e,
        ) => [e.device, e.result, e.buildBefore, e.buildAfter]),
      ],
    );
    const results = Object.fromEntries(of("device.result").map((e) => [e.device, e]));
    assertEquals(results.old!.result, "updated");
    assertEquals(results.legacy!.result, "updated");
    assertEquals([results.newer!.result, results.newer!.kind], ["failed", "DowngradeRefusedError"]);
    assertEquals([results.offline!.result, results.offline!.kind], ["failed", "WebReplError"]);
    assertEquals(of("rollout.decision").map((e) => [e.decision, e.notAttempted]), [
      ["canary-passed", ["old", "newer", "legacy", "offline"]],
    ]);
    // Each updated board: trigger, push, verify in order, and progress up to the whole image.
    for (const name of ["old", "legacy"]) {
      const phases = events.filter((e) =>
        (e.type === "phase.started" || e.type === "phase.ended") && e.device === name
      ).map((e) => `${e.type === "phase.started" ? "+" : "-"}${(e as { phase: string }).phase}`);
      assertEquals(phases, ["+trigger", "-trigger", "+push", "-push", "+verify", "-verify"]);
      const progress = of("progress").filter((e) => e.device === name);
      assert(progress.length >= 1, `${name}: no progress event`);
      assertEquals(progress.at(-1)!.bytes, progress.at(-1)!.total);
      for (const p of progress) {
        assert(p.rate >= 0 && p.block > 0 && p.total === imageOf("b").length, JSON.stringify(p));
      }
    }
    const ended = events.at(-1) as Extract<StampedEvent, { type: "run.ended" }>;
    assertEquals([ended.ok, ended.exitCode], [false, 10]);
    assertEquals(ended.counts, { updated: 2, skipped: 1, failed: 2, "not-attempted": 0 });
    assertEquals((ended.report as FleetReport).failed, ["newer", "offline"]);
  } finally {
    for (const b of Object.values(boards)) await b.close();
  }
});

/** Runs a task, calling `onLine` with each stderr line as it comes. */
async function runTaskWatching(
  name: string,
  args: string[],
  options: { cwd: string; env: Record<string, string> },
  onLine: (line: string) => void,
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "tasks", `${name}.ts`), ...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  let stderr = "";
  let pending = "";
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    stderr += chunk;
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) onLine(line);
  }
  const { code } = await child.status;
  return { code, stdout: await stdout, stderr };
}

Deno.test("deploy --fleet --retries brings in a board that was offline at first", async () => {
  await using dir = await tempDir();
  await makeDist(dir.path, "b");
  const port = await offlinePort();
  await writeConfig(dir.path, [["late", port]]);
  let late: Promise<VirtualDevice> | undefined;
  try {
    const r = await runTaskWatching(
      "deploy",
      [
        "--fleet",
        "--timeout",
        "1",
        "--boot-check-window",
        "0.5",
        "--retries",
        "3",
        "--retry-delay",
        "1",
        "--json",
      ],
      { cwd: dir.path, env: ENV },
      (line) => {
        // The board comes up (in OTA mode) while the rollout waits to try it again.
        if (line.includes("trying again in") && !late) {
          late = startBoard({ build: "a", mode: "ota", port });
        }
      },
    );
    assertEquals(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as FleetReport;
    assertEquals(report.devices.map((d) => [d.name, d.result, d.attempts]), [[
      "late",
      "updated",
      2,
    ]]);
    assertStringIncludes(
      r.stderr,
      `late  127.0.0.1:${port} refused the packet at once (ICMP port unreachable): the board is reachable but not in OTA mode`,
    );
    assertStringIncludes(r.stderr, "— trying again in 1.0 s (attempt 2 of 4)");
    assertMatch(
      r.stderr,
      /late {2}done: 40.0 KiB in [\d.]+ s, [\d.]+ KiB\/s, \d+ retransmissions, after 2 attempts\n/,
    );
    assertEquals(flashedBuild(await late!), BUILDS.b.id);
  } finally {
    await (await late)?.close();
  }
});

Deno.test("deploy --release previous puts the build before the current one back; a plain downgrade is refused", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeMicroPythonTree(dir.path, "make-ota");
  const env = { ...buildEnv(join(dir.path, "docker.log")), ...ENV };
  const build = async (version: string) => {
    const r = await runTaskFile("build_ota", ["--micropython", tree.root, "--version", version], {
      cwd: dir.path,
      env,
    });
    assertEquals(r.code, 0, r.stderr);
    return JSON.parse(await Deno.readTextFile(join(dir.path, "dist", "manifest.json"))).build;
  };
  const first = await build("1.0");
  const second = await build("1.1");
  assert(first.id !== second.id);
  // The board runs the second build, as a deploy of it leaves it.
  const flash = new Uint8Array(0x100000).fill(0xff);
  flash.set(
    await Deno.readFile(join(dir.path, "dist", "releases", second.id, "firmware-ota.bin")),
    DEFAULT_APP_OFFSET,
  );
  await using board = await startVirtualDevice({
    port: 0,
    modulus: key.modulus,
    flash,
    profile: PROFILES.instant,
    start: "boot",
    webrepl: { password: PASSWORD, files: new Map([["boot.py", BOOT_PY]]) },
  });
  const deploy = (...extra: string[]) =>
    runTaskFile("deploy", [
      "--ip",
      "127.0.0.1",
      "--port",
      String(board.port),
      "--key",
      KEY,
      "--trigger",
      "--timeout",
      "2",
      "--boot-check-window",
      "3",
      ...extra,
    ], { cwd: dir.path, env });

  // The first build named as a file (its manifest beside it says which build it is): a
  // downgrade, refused before anything is sent.
  const older = join("dist", "releases", first.id, "firmware-ota.bin");
  const refused = await deploy(older);
  assertEquals(refused.code, 1, refused.stderr);
  assertStringIncludes(
    refused.stderr,
    `error: 127.0.0.1:${board.port} runs build ${second.id} (1.1), built ${second.builtAt}, newer than ` +
      `${first.id} (1.0) (built ${first.builtAt}): refusing the downgrade. Pass --allow-downgrade`,
  );
  assertEquals(flashedBuild(board), second.id);
  // The same with --events: the refusal as events, stdout nothing else.
  const refusedEvents = await deploy(older, "--events");
  assertEquals(refusedEvents.code, 1, refusedEvents.stderr);
  const events = refusedEvents.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assertEquals(
    events.map((e) => [e.type, e.phase ?? e.result ?? e.exitCode, e.ok ?? e.kind]),
    [
      ["run.started", undefined, undefined],
      ["phase.started", "preflight", undefined],
      ["phase.ended", "preflight", true],
      ["phase.started", "trigger", undefined],
      ["phase.ended", "trigger", false],
      ["device.result", "failed", "DowngradeRefusedError"],
      ["run.ended", 1, false],
    ],
  );
  assertEquals(events[0].image.build, { id: first.id, builtAt: first.builtAt, version: "1.0" });

  // Sending the current build again: up to date, nothing sent.
  const same = await deploy();
  assertEquals(same.code, 0, same.stderr);
  assertEquals(
    same.stdout,
    `127.0.0.1: up to date: it runs build ${second.id} (1.1). Nothing was sent (--force sends anyway).\n`,
  );

  // The way back: the release before the current build.
  const back = await deploy("--release", "previous", "--json");
  assertEquals(back.code, 0, back.stderr);
  assertStringIncludes(
    back.stderr,
    `release ${first.id} (1.0), built ${first.builtAt}: ${
      join("dist", "releases", first.id, "firmware-ota.bin")
    }`,
  );
  const result = JSON.parse(back.stdout);
  assertEquals([result.buildBefore.id, result.buildAfter.id], [second.id, first.id]);
  assertEquals(flashedBuild(board), first.id);

  // status names it.
  const status = await runTaskFile("status", [
    "--ip",
    "127.0.0.1",
    "--port",
    String(board.port),
    "--key",
    KEY,
    "--json",
  ], {
    cwd: dir.path,
    env,
  });
  assertEquals(status.code, 0, status.stderr);
  const row = (JSON.parse(status.stdout) as StatusReport).devices[0]!;
  assertEquals([row.build?.id, row.comparison, row.release?.id, row.release?.version], [
    first.id,
    "older",
    first.id,
    "1.0",
  ]);
});

Deno.test("deployWithTrigger() fails with its own message when the board boots but reports another build", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "firmware-ota.bin");
  await Deno.writeFile(file, imageOf("b"));
  // This board's flash loses every write: the old image stays, passes its check and boots.
  await using board = await startBoard({ build: "a", flashFault: "drop" });
  const { id, builtAt, version } = BUILDS.b;
  await assertRejects(
    () =>
      deployWithTrigger({
        host: "127.0.0.1",
        port: board.port,
        file,
        keyPath: KEY,
        block: "auto",
        pace: true,
        timeoutMs: 2000,
        force: false,
        bootCheck: true,
        bootCheckMs: 1000,
        appOffset: DEFAULT_APP_OFFSET,
        flashSize: 0x100000,
        password: PASSWORD,
        otaWaitMs: 5000,
        comeBackMs: 5000,
        image: { id, builtAt, version },
      }),
    BuildMismatchError,
    `127.0.0.1:${board.port} booted after the update but still reports its old build ` +
      `aaaa00000001, not bbbb00000002 (1.1): it is not running the image that was sent.`,
  );
  assertEquals(board.model.mode, "app");
});
