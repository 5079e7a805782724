/**
 * The dashboard over the real toolchain (lib/dashboard/fleet_port.ts) and virtual boards
 * (instant profile, small images) whose firmware names its build (`ota.BUILD`): status rows
 * with build ids and releases, rollouts with their policy (canary, max failures, retries),
 * an up-to-date board skipped, a kept release sent back (the rollback) and a downgrade
 * refused, and the passwords that never leave the process.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { get, post, readStream, serve } from "./_dashboard.ts";
import {
  DEMO_PASSWORD,
  type DemoBuild,
  type DemoFleet,
  startDemoFleet,
} from "../../lib/sim/demo_fleet.ts";
import { createFleetPort } from "../../lib/dashboard/fleet_port.ts";
import type { FleetPort, RolloutEvent, RolloutRequest } from "../../lib/dashboard/port.ts";
import type { RolloutView } from "../../lib/dashboard/rollout_view.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { equalBytes } from "../../lib/_bytes.ts";
import { join } from "node:path";

function startFleet(
  boards: number,
  upToDate: number,
  onBoardError?: (problem: string) => void,
): Promise<DemoFleet> {
  return startDemoFleet({
    profile: PROFILES.instant!,
    boards,
    upToDate,
    imageSize: 24 * 1024,
    bits: 512,
    ...(onBoardError ? { onBoardError } : {}),
  });
}

function portOf(fleet: DemoFleet, order?: string[]): FleetPort {
  const devices = order
    ? order.map((n) => fleet.config.devices!.find((d) => d.name === n)!)
    : fleet.config.devices!;
  return createFleetPort({
    config: { ...fleet.config, devices },
    keyPath: fleet.keyPath,
    env: fleet.env,
    retryDelayMs: 50,
    triggerSettings: { otaWaitMs: 5000, comeBackMs: 10000 },
  });
}

const FLEET: RolloutRequest = {
  target: { kind: "fleet" },
  canary: 0,
  maxFailures: null,
  retries: 0,
  trigger: true,
};

async function collect(port: FleetPort, request: RolloutRequest): Promise<RolloutEvent[]> {
  const events: RolloutEvent[] = [];
  await port.rollout(request, (e) => events.push(e), new AbortController().signal);
  return events;
}

function results(events: RolloutEvent[]): [string, string, string?][] {
  return events.flatMap((e) =>
    e.type === "device.result"
      ? [[e.device, e.result, ...(e.reason ? [e.reason] : [])] as [string, string, string?]]
      : []
  );
}

/**
 * The rollout's results as `results` gives them; on a mismatch, the message also says what
 * each board did last (a board that never answered: did it reset, boot into OTA mode, see a
 * packet?).
 */
function assertRollout(
  fleet: DemoFleet,
  events: RolloutEvent[],
  expected: [string, string, string?][],
): void {
  const actual = results(events);
  if (JSON.stringify(actual) === JSON.stringify(expected)) return;
  const lines = fleet.devices.map((d, i) =>
    `${fleet.config.devices![i]!.name}: ` +
    d.events.filter((e) => e.type !== "reply").slice(-16).map((e) =>
      `${e.type}@${e.at.toFixed(0)}` + (e.type === "packet"
        ? ` ${e.offset}+${e.len} ${e.outcome}`
        : e.type === "reboot"
        ? ` ${e.reason}`
        : e.type === "boot"
        ? ` ${e.mode} ${e.boot}`
        : "")
    ).join(", ")
  );
  assertEquals(
    actual,
    expected,
    `${JSON.stringify(actual)}\nthe boards' last events:\n${lines.join("\n")}` +
      (fleet.errors.length ? `\nboard errors:\n${fleet.errors.join("\n")}` : ""),
  );
}

function flashHolds(fleet: DemoFleet, index: number, build: DemoBuild): boolean {
  const flash = fleet.devices[index]!.model.flash;
  return equalBytes(
    flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + build.image.length),
    build.image,
  );
}

Deno.test("status() gives each board's state, MicroPython, build id, kept release and how it compares with the build", async () => {
  await using fleet = await startFleet(2, 1);
  const { old, current } = fleet.builds;
  const port = portOf(fleet);
  const boards = await port.status();
  assertEquals(
    boards.map((b) => [b.name, b.state, b.micropython?.version, b.build, b.comparison]),
    [
      ["kitchen", "app", old.micropython, { id: old.id, version: "1.0.0" }, "older"],
      ["garage", "app", current.micropython, { id: current.id, version: "1.1.0" }, "up to date"],
      ["hall", "offline", undefined, undefined, "unknown"],
    ],
  );
  assertEquals(boards.map((b) => b.release), [
    { id: old.id, builtAt: old.builtAt, version: "1.0.0" },
    { id: current.id, builtAt: current.builtAt, version: "1.1.0" },
    undefined,
  ]);
  assertEquals(boards.map((b) => [b.webrepl, b.otaMode]), [
    ["logged in", false],
    ["logged in", false],
    ["refused", false],
  ]);
  assertEquals(
    boards[2]!.note,
    "no answer over WebREPL or UDP: offline, busy with another OTA session, or built for another key",
  );
  assertEquals((await port.status(["garage"])).map((b) => b.name), ["garage"]);
  const build = await port.currentBuild();
  assertEquals(
    [
      build?.id,
      build?.label,
      build?.version,
      build?.modules,
      build?.verdict,
      build?.matchesManifest,
    ],
    [current.id, `${current.id} (1.1.0)`, "1.1.0", ["ota.py"], { safe: true, problems: [] }, true],
  );
  assertEquals(await port.releases(), [
    { id: old.id, builtAt: old.builtAt, version: "1.0.0", current: false },
    { id: current.id, builtAt: current.builtAt, version: "1.1.0", current: true },
  ]);
});

Deno.test("a canary rollout from the API updates the older board, skips the up-to-date one, retries the offline one, and never sends a password", async () => {
  await using fleet = await startFleet(2, 1);
  const { old, current } = fleet.builds;
  await using s = await serve(portOf(fleet));
  const request = { ...FLEET, canary: 1, retries: 1 };
  const plan = await (await post(s.base, "/api/plan", { request })).json();
  assertEquals([plan.boards, plan.build], [["kitchen", "garage", "hall"], `${current.id} (1.1.0)`]);
  const texts: string[] = [JSON.stringify(plan)];
  const stream = await get(s.base, "/api/stream");
  let started = false;
  const messages = await readStream(stream, (m) => {
    texts.push(JSON.stringify(m.data));
    if (!started) {
      started = true;
      void post(s.base, "/api/rollout", {
        request,
        confirm: { boards: plan.boards, build: plan.build },
      }).then(async (r) => texts.push(await r.text()));
    }
    return m.event === "rollout" && (m.data as RolloutView).state === "done";
  });
  const view = messages.at(-1)!.data as RolloutView;
  assertEquals(
    view.boards.map((b) => [b.name, b.result, b.percent, b.attempts, b.buildBefore, b.buildAfter]),
    [
      ["kitchen", "updated", 100, 1, old.id, current.id],
      ["garage", "skipped", 0, 1, current.id, current.id],
      ["hall", "failed", 0, 2, undefined, undefined],
    ],
  );
  assertEquals(view.boards[1]!.reason, `up to date: it runs build ${current.id} (1.1.0)`);
  assertEquals(view.decisions.map((d) => [d.decision, d.detail]), [
    ["canary-passed", "the canary runs the new build: starting the other 2"],
  ]);
  assertEquals([view.ok, view.exitCode, view.counts], [false, 10, {
    updated: 1,
    skipped: 1,
    failed: 1,
    "not-attempted": 0,
  }]);
  const events = messages.filter((m) => m.event === "ota").map((m) => m.data as RolloutEvent);
  assertEquals(events[0]?.type === "run.started" && events[0].image?.build, {
    id: current.id,
    builtAt: current.builtAt,
    version: "1.1.0",
  });
  const retry = events.find((e) => e.type === "retry");
  assertEquals(retry?.type === "retry" && [retry.device, retry.attempt, retry.attempts], [
    "hall",
    2,
    2,
  ]);
  // The skipped board: nothing was sent to it.
  assert(!events.some((e) => e.type === "progress" && e.device === "garage"));
  const ended = events.at(-1)!;
  assertEquals([ended.type, "report" in ended], ["run.ended", false]);
  // The canary ended before any other board started.
  const canaryDone = events.findIndex((e) => e.type === "device.result" && e.device === "kitchen");
  const othersStart = events.findIndex((e) => e.type === "phase.started" && e.device === "garage");
  assert(canaryDone < othersStart, "garage started before the canary ended");
  assert(flashHolds(fleet, 0, current), "kitchen's flash holds the build");
  assert(flashHolds(fleet, 1, current), "garage's flash still holds the build");
  assert(fleet.devices.every((d) => !d.model.bootloaderOverwritten));
  await s.dashboard.running();
  texts.push(await (await get(s.base, "/api/state")).text());
  texts.push(await (await post(s.base, "/api/refresh")).text());
  for (const t of texts) assert(!t.includes(DEMO_PASSWORD), `a password in: ${t.slice(0, 200)}`);
  const refreshed = JSON.parse(texts.at(-1)!).boards as {
    name: string;
    comparison: string;
    build?: { id: string };
  }[];
  assertEquals(refreshed.map((b) => [b.name, b.build?.id, b.comparison]), [
    ["kitchen", current.id, "up to date"],
    ["garage", current.id, "up to date"],
    ["hall", undefined, "unknown"],
  ]);
});

Deno.test("rollout() stops after a canary that fails: the other boards are not attempted", async () => {
  await using fleet = await startFleet(2, 0);
  const port = portOf(fleet, ["hall", "kitchen", "garage"]);
  const events = await collect(port, { ...FLEET, canary: 1 });
  assertEquals(results(events).map(([d, r]) => [d, r]), [
    ["hall", "failed"],
    ["kitchen", "not-attempted"],
    ["garage", "not-attempted"],
  ]);
  const decision = events.find((e) => e.type === "rollout.decision");
  assertEquals(decision, {
    ...decision!,
    type: "rollout.decision",
    decision: "canary-failed",
    detail: "canary 'hall' did not end up running the new build",
    notAttempted: ["kitchen", "garage"],
  });
  assertEquals(events.at(-1), {
    ...events.at(-1)!,
    type: "run.ended",
    ok: false,
    exitCode: 10,
    counts: { updated: 0, skipped: 0, failed: 1, "not-attempted": 2 },
  });
  assert(flashHolds(fleet, 0, fleet.builds.old), "kitchen untouched");
  assert(flashHolds(fleet, 1, fleet.builds.old), "garage untouched");
});

Deno.test("rollout() starts no new board once max failures is reached", async () => {
  await using fleet = await startFleet(2, 0);
  const port = portOf(fleet, ["hall", "kitchen", "garage"]);
  const events = await collect(port, { ...FLEET, maxFailures: 1, concurrency: 1 });
  const [hall, ...rest] = results(events);
  assertEquals(hall!.slice(0, 2), ["hall", "failed"]);
  assertStringIncludes(hall![2]!, "127.0.0.1:");
  assertEquals(rest, [
    ["kitchen", "not-attempted", "not attempted: 1 board failed (--max-failures 1)"],
    ["garage", "not-attempted", "not attempted: 1 board failed (--max-failures 1)"],
  ]);
});

Deno.test("rollout() stopped from the page says so and starts no further board", async () => {
  await using fleet = await startFleet(1, 0);
  const port = portOf(fleet);
  const controller = new AbortController();
  controller.abort("stopped from the page");
  const events: RolloutEvent[] = [];
  await port.rollout(FLEET, (e) => events.push(e), controller.signal);
  assertEquals(results(events), [
    ["kitchen", "not-attempted", "not started: interrupted"],
    ["garage", "not-attempted", "not started: interrupted"],
  ]);
  const decision = events.find((e) => e.type === "rollout.decision");
  assertEquals(decision?.type === "rollout.decision" && decision.detail, "stopped from the page");
  const ended = events.at(-1)!;
  assertEquals(ended.type === "run.ended" && ended.exitCode, 130);
});

Deno.test("a kept release sent again is a rollback; the current build is not pushed over a newer one", async () => {
  await using fleet = await startFleet(1, 1);
  const { old, current } = fleet.builds;
  const port = portOf(fleet);
  const kitchen: RolloutRequest = { ...FLEET, target: { kind: "board", name: "kitchen" } };
  const plan = await port.plan({ ...kitchen, release: old.id });
  assertEquals([plan.boards, plan.build, plan.buildId], [["kitchen"], `${old.id} (1.0.0)`, old.id]);

  // The board runs the current build: sent again, it is skipped.
  assertRollout(fleet, await collect(port, kitchen), [
    ["kitchen", "skipped", `up to date: it runs build ${current.id} (1.1.0)`],
  ]);
  // Back to the older release, on purpose: the downgrade goes through.
  const back = await collect(port, { ...kitchen, release: old.id });
  assertRollout(fleet, back, [["kitchen", "updated"]]);
  const row = back.find((e) => e.type === "device.result");
  assertEquals(row?.type === "device.result" && [row.buildBefore, row.buildAfter], [
    current.id,
    old.id,
  ]);
  assert(flashHolds(fleet, 0, old), "kitchen runs the old release");
  const [status] = await port.status(["kitchen"]);
  assertEquals(
    [status?.build?.id, status?.comparison, status?.release?.version, status?.micropython?.version],
    [old.id, "older", "1.0.0", old.micropython],
  );

  // Forward again, then make the older build the current one: pushing it is a downgrade.
  assertRollout(fleet, await collect(port, { ...kitchen, release: current.id }), [
    ["kitchen", "updated"],
  ]);
  const out = fleet.config.out!;
  for (const file of ["firmware-ota.bin", "manifest.json"]) {
    await Deno.copyFile(join(out, "releases", old.id, file), join(out, file));
  }
  const refused = await collect(port, kitchen);
  const [kitchenRow] = results(refused);
  assertEquals(kitchenRow!.slice(0, 2), ["kitchen", "failed"]);
  assertStringIncludes(kitchenRow![2]!, "refusing the downgrade");
  assertEquals(fleet.errors, []);
  const result = refused.find((e) => e.type === "device.result");
  assertEquals(result?.type === "device.result" && result.kind, "DowngradeRefusedError");
  assert(flashHolds(fleet, 0, current), "kitchen keeps the newer build");
});

Deno.test("rollout() without a build to send ends the run with the reason", async () => {
  await using fleet = await startFleet(1, 0);
  const port = portOf(fleet);
  await Deno.remove(join(fleet.config.out!, "firmware-ota.bin"));
  assertEquals(await port.currentBuild(), null);
  const events = await collect(port, FLEET);
  assertEquals(events.map((e) => e.type), ["run.ended"]);
  const ended = events[0]!;
  assertEquals(ended.type === "run.ended" && [ended.ok, ended.exitCode, ended.kind], [
    false,
    1,
    "FileError",
  ]);
  assertStringIncludes(
    ended.type === "run.ended" ? ended.reason! : "",
    "firmware-ota.bin'. Build one with 'deno task build-ota'",
  );
  const missing = await collect(port, { ...FLEET, release: "ffffffffffff" });
  assertStringIncludes(
    missing[0]!.type === "run.ended" ? missing[0]!.reason! : "",
    "no release 'ffffffffffff' in ",
  );
});

Deno.test("a virtual board that cannot open its OTA port says so, not silently", async () => {
  const said: string[] = [];
  await using fleet = await startFleet(1, 0, (problem) => said.push(problem));
  const kitchen = fleet.devices[0]!;
  // Its app runs: the UDP port is free, and something else takes it.
  const taken = Deno.listenDatagram({
    hostname: "127.0.0.1",
    port: kitchen.port,
    transport: "udp",
  });
  kitchen.reset();
  await kitchen.waitFor((e) => e.type === "reboot", 5000);
  for (let i = 0; i < 100 && fleet.errors.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assertEquals(fleet.errors.length, 1, JSON.stringify(fleet.errors));
  assertStringIncludes(
    fleet.errors[0]!,
    `kitchen: UDP port ${kitchen.port} on 127.0.0.1 (the OTA server) is already in use`,
  );
  assertEquals(said.length, 1);
  taken.close();
});
