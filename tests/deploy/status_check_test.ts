/**
 * `status --check`, `--watch`, progress and boards that accept TCP but say nothing
 * (issues 21, 22 point 7, 25 part 2): the pure check and change logic, then the task as a
 * user runs it against virtual boards and hostile peers on 127.0.0.1.
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir } from "../_helpers.ts";
import { join } from "node:path";
import type { BoardStatus, StatusReport } from "../../lib/deploy/status.ts";
import { checkStatus, statusChanges } from "../../lib/deploy/status_check.ts";
import { watchStatus } from "../../lib/deploy/status_watch.ts";
import type { StampedEvent } from "../../lib/deploy/events.ts";
import {
  BUILD,
  closedPort,
  KEY,
  PASSWORD,
  silentPeer,
  startBoard,
  writeDist,
} from "./_one_build.ts";

const MANIFEST = { id: BUILD.id, builtAt: BUILD.builtAt, version: BUILD.version };

function row(name: string, extra: Partial<BoardStatus>): BoardStatus {
  return {
    name,
    ip: "10.0.0.1",
    port: 8266,
    state: "app",
    webrepl: "logged in",
    otaMode: false,
    build: { id: BUILD.id },
    comparison: "up to date",
    ...extra,
  };
}

Deno.test("checkStatus: offline, silent, OTA mode, unread and not-on-the-build boards fail; the rest pass", () => {
  const report: StatusReport = {
    manifest: MANIFEST,
    devices: [
      row("good", {}),
      row("gone", { state: "offline", webrepl: "no answer", comparison: "unknown" }),
      row("hung", { state: "silent", webrepl: "no handshake", comparison: "unknown" }),
      row("waiting", { state: "ota", webrepl: "refused", otaMode: true, comparison: "unknown" }),
      row("locked", { webrepl: "wrong password", comparison: "unknown" }),
      row("old", { build: { id: "aaaa00000001" }, comparison: "older" }),
    ],
  };
  assertEquals(checkStatus(report), [
    { device: "gone", problem: "offline" },
    { device: "hung", problem: "no WebREPL answer" },
    { device: "waiting", problem: "OTA mode" },
    { device: "locked", problem: "unreadable (WebREPL: wrong password)" },
    { device: "old", problem: `not on the build ${BUILD.id}: runs aaaa00000001 (older)` },
  ]);
  assertEquals(checkStatus({ manifest: MANIFEST, devices: [row("good", {})] }), []);
  assertEquals(checkStatus({ manifest: null, devices: [row("x", { comparison: "unknown" })] }), [
    { device: "x", problem: "no build to compare with (dist/manifest.json names none)" },
  ]);
});

Deno.test("statusChanges: offline, back, a new build; an unchanged board and a new one are not news", () => {
  const before: StatusReport = {
    manifest: MANIFEST,
    devices: [
      row("a", {}),
      row("b", { state: "offline", webrepl: "no answer", build: undefined }),
      row("c", { build: { id: "aaaa00000001" }, comparison: "older" }),
      row("d", {}),
    ],
  };
  const after: StatusReport = {
    manifest: MANIFEST,
    devices: [
      row("a", { state: "offline", webrepl: "no answer", build: undefined, comparison: "unknown" }),
      row("b", {}),
      row("c", {}),
      row("d", {}),
      row("e", {}),
    ],
  };
  const changes = statusChanges(before, after);
  assertEquals(changes.map((c) => [c.device, c.change]), [
    ["a", "offline"],
    ["b", "back"],
    ["c", "build"],
  ]);
  assertEquals(changes[0]!.text, `a: app, build ${BUILD.id} → offline`);
  assertEquals(changes[2]!.text, `c: app, build aaaa00000001 → app, build ${BUILD.id}`);
});

Deno.test("watchStatus: one round per interval, the changes of each, stops after --rounds or on abort", async () => {
  const answers = [
    { manifest: MANIFEST, devices: [row("a", {})] },
    { manifest: MANIFEST, devices: [row("a", {})] },
    {
      manifest: MANIFEST,
      devices: [row("a", { state: "offline", webrepl: "no answer", build: undefined })],
    },
  ];
  let clock = 0;
  const waits: number[] = [];
  const seen: [number, string[]][] = [];
  const last = await watchStatus(() => {
    clock += 400; // asking takes 0.4 s
    return Promise.resolve(answers.shift()!);
  }, {
    intervalMs: 5000,
    rounds: 3,
    now: () => clock,
    sleep: (ms) => {
      waits.push(ms);
      clock += ms;
      return Promise.resolve();
    },
    onRound: (_, changes, round) => seen.push([round, changes.map((c) => c.text)]),
  });
  assertEquals(waits, [4600, 4600]);
  assertEquals(seen, [[1, []], [2, []], [3, [`a: app, build ${BUILD.id} → offline`]]]);
  assertEquals(last.devices[0]!.state, "offline");

  const stop = new AbortController();
  let rounds = 0;
  await watchStatus(() => Promise.resolve(answers[0] ?? { manifest: null, devices: [] }), {
    intervalMs: 5000,
    signal: stop.signal,
    sleep: () => Promise.resolve(),
    onRound: () => {
      if (++rounds === 2) stop.abort();
    },
  });
  assertEquals(rounds, 2);
});

Deno.test("status: a port that accepts TCP and says nothing is 'no WebREPL answer', never 'app'; --check exits 12; progress on stderr", async () => {
  await using peer = silentPeer();
  const base = ["--ip", "127.0.0.1", "--port", String(peer.port), "--timeout", "1", "--key", KEY];
  for (const env of [{}, { WEBREPL_PASSWORD: PASSWORD }] as Record<string, string>[]) {
    const r = await runTaskFile("status", ["--json", ...base], { env });
    assertEquals(r.code, 0, r.stderr);
    const board = (JSON.parse(r.stdout) as StatusReport).devices[0]!;
    assertEquals([board.state, board.webrepl], ["silent", "no handshake"]);
    assertStringIncludes(board.note ?? "", "accepts TCP but gave no WebREPL handshake");
    assertStringIncludes(r.stderr, "status: asked 1/1");
  }
  const j = await runTaskFile("status", ["--check", "--json", ...base], {});
  assertEquals(j.code, 12, j.stderr);
  const checked = JSON.parse(j.stdout);
  assertEquals([checked.ok, checked.kind, checked.check], [false, "StatusCheckFailed", [
    { device: "127.0.0.1", problem: "no WebREPL answer" },
  ]]);
  const t = await runTaskFile("status", ["--check", ...base], {});
  assertEquals(t.code, 12, t.stderr);
  assertStringIncludes(t.stdout, "no WebREPL answer");
  assertStringIncludes(t.stdout, "1 board: 0 running, 0 in OTA mode, 1 without a WebREPL answer");
  assertStringIncludes(t.stdout, "check: 127.0.0.1: no WebREPL answer");
  assertStringIncludes(t.stdout, "check failed: 1 of 1 board (exit 12)");
});

Deno.test("status: 40 silent boards are asked 64 at a time: one timeout, not 40/16 of them", async () => {
  const peers = Array.from({ length: 40 }, () => silentPeer());
  try {
    await using dir = await tempDir();
    const config = join(dir.path, "ota.config.json");
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        key: KEY,
        devices: peers.map((p, i) => ({ name: `b${i}`, ip: "127.0.0.1", port: p.port })),
      }),
    );
    const r = await runTaskFile("status", ["--fleet", "--timeout", "2", "--json"], {
      cwd: dir.path,
    });
    assertEquals(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as StatusReport;
    assertEquals(new Set(report.devices.map((d) => d.state)), new Set(["silent"]));
    // Plain progress (stderr is a pipe): a line per tenth, ending with all 40 asked.
    assertStringIncludes(r.stderr, "status: asked 40/40, 0 answering");
    const help = await runTaskFile("status", ["--help"]);
    assertStringIncludes(help.stdout, "asked 64 at a time");
  } finally {
    for (const p of peers) await p[Symbol.asyncDispose]();
  }
});

Deno.test("status --check on virtual boards: 0 when all run dist's build; --watch reports a board going offline as an event, and --check then exits 12", async () => {
  await using dir = await tempDir();
  await writeDist(dir.path);
  const a = await startBoard({ image: "current" });
  const b = await startBoard({ image: "current" });
  const c = await startBoard({ image: "current", mode: "ota" });
  let cClosed = false;
  try {
    const config = (boards: [string, number][]) =>
      Deno.writeTextFile(
        join(dir.path, "ota.config.json"),
        JSON.stringify({
          key: KEY,
          devices: boards.map(([name, port]) => ({ name, ip: "127.0.0.1", port })),
        }),
      );
    await config([["a", a.port], ["b", b.port]]);
    const ok = await runTaskFile("status", ["--fleet", "--check", "--timeout", "2"], {
      cwd: dir.path,
      env: { WEBREPL_PASSWORD: PASSWORD },
    });
    assertEquals(ok.code, 0, ok.stdout + ok.stderr);
    assertStringIncludes(ok.stdout, "check passed: all 2 boards run dist's build");

    // Board c waits in OTA mode; once it has answered the first round, it goes away.
    await config([["a", a.port], ["c", c.port]]);
    const watching = runTaskFile("status", [
      "--fleet",
      "--check",
      "--watch",
      "5",
      "--rounds",
      "2",
      "--events",
      "--timeout",
      "2",
    ], { cwd: dir.path, env: { WEBREPL_PASSWORD: PASSWORD } });
    await c.waitFor((e) => e.type === "reply", 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await c.close();
    cClosed = true;
    const w = await watching;
    const events = w.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as StampedEvent);
    const changes = events.filter((e) => e.type === "status.change");
    assertEquals(
      changes.map((e) =>
        e.type === "status.change" && [e.device, e.change, e.from.state, e.to.state]
      ),
      [["c", "offline", "ota", "offline"]],
    );
    // The first round's boards are reported one by one; later rounds only as changes.
    assertEquals(events.filter((e) => e.type === "device.status").length, 2);
    const end = events.at(-1)!;
    assertEquals([end.type, end.type === "run.ended" && end.exitCode], ["run.ended", 12]);
    assertEquals(w.code, 12, w.stderr);
    assertStringIncludes(w.stderr, "c: OTA mode → offline");
    assertStringIncludes(w.stderr, "check: c: offline");
    // Nothing the board would act on: only the question, which it answers and forgets.
    assertEquals(
      c.events.filter((e) => e.type === "packet" && e.outcome !== "duplicate").length,
      0,
    );
  } finally {
    await a.close();
    await b.close();
    if (!cClosed) await c.close();
  }
});

Deno.test("status: usage errors for --watch, --rounds and --concurrency", async () => {
  for (
    const [args, message] of [
      [["--watch", "1"], "at least 5 seconds"],
      [["--watch", "10", "--json"], "use --events"],
      [["--rounds", "2"], "--rounds goes with --watch"],
      [["--concurrency", "0"], "--concurrency"],
    ] as const
  ) {
    const r = await runTaskFile("status", [
      "--ip",
      "127.0.0.1",
      "--port",
      String(closedPort()),
      ...args,
    ]);
    assertEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, message);
  }
});
