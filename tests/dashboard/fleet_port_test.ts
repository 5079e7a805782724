/**
 * The dashboard over the real toolchain (lib/dashboard/fleet_port.ts) and virtual boards
 * (instant profile, small images): status, rollouts with their policy, releases, and
 * the passwords that never leave the process.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { post, readStream, serve } from "./_dashboard.ts";
import { DEMO_PASSWORD, type DemoFleet, startDemoFleet } from "../../lib/dashboard/demo_fleet.ts";
import { createFleetPort } from "../../lib/dashboard/fleet_port.ts";
import type { FleetPort, RolloutEvent, RolloutRequest } from "../../lib/dashboard/port.ts";
import type { RolloutView } from "../../lib/dashboard/rollout_view.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { equalBytes } from "../../lib/_bytes.ts";
import { join } from "node:path";

function startFleet(boards = 2): Promise<DemoFleet> {
  return startDemoFleet({ profile: PROFILES.instant!, boards, imageSize: 24 * 1024, bits: 512 });
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

async function flashHolds(fleet: DemoFleet, index: number, file: string): Promise<boolean> {
  const image = await Deno.readFile(file);
  const flash = fleet.devices[index]!.model.flash;
  return equalBytes(flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + image.length), image);
}

Deno.test("status() tells each board's state and MicroPython, and how it compares with the build", async () => {
  await using fleet = await startFleet();
  const port = portOf(fleet);
  const boards = await port.status();
  assertEquals(
    boards.map((b) => [b.name, b.state, b.micropython, b.build, b.comparison]),
    [
      ["kitchen", "online", fleet.versions.old, null, "older"],
      ["garage", "online", fleet.versions.old, null, "older"],
      ["hall", "offline", undefined, undefined, "unknown"],
    ],
  );
  assertEquals(boards[0]!.note, "compared by MicroPython version (no build id)");
  assertStringIncludes(boards[2]!.note!, "no answer over WebREPL or UDP");
  assertEquals((await port.status(["garage"])).map((b) => b.name), ["garage"]);
  const build = await port.currentBuild();
  assertEquals([build?.version, build?.verdict.safe, build?.matchesManifest], [
    "1.1.0",
    true,
    true,
  ]);
  assertEquals(build?.label, `${build?.id} (1.1.0)`);
  assertEquals((await port.releases()).map((r) => [r.version, r.current]), [
    ["1.0.0", false],
    ["1.1.0", true],
  ]);
});

Deno.test("a canary rollout from the API updates the boards, retries the offline one, and never sends a password", async () => {
  await using fleet = await startFleet();
  await using s = await serve(portOf(fleet));
  const request = {
    target: { kind: "fleet" },
    canary: 1,
    maxFailures: null,
    retries: 1,
    trigger: true,
  };
  const plan = await (await post(s.base, "/api/plan", { request })).json();
  assertEquals(plan.boards, ["kitchen", "garage", "hall"]);
  const texts: string[] = [JSON.stringify(plan)];
  const stream = await fetch(`${s.base}/api/stream`);
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
  assertEquals(view.boards.map((b) => [b.name, b.result, b.percent, b.attempts]), [
    ["kitchen", "updated", 100, 1],
    ["garage", "updated", 100, 1],
    ["hall", "failed", 0, 2],
  ]);
  assertEquals(view.boards[0]!.buildAfter, fleet.versions.current);
  assertEquals(view.decisions.map((d) => d.decision), ["canary-passed"]);
  assertEquals([view.ok, view.exitCode, view.counts?.updated], [false, 10, 2]);
  const events = messages.filter((m) => m.event === "ota").map((m) => m.data as RolloutEvent);
  const retry = events.find((e) => e.type === "retry");
  assertEquals(retry?.type === "retry" && [retry.device, retry.attempt, retry.attempts], [
    "hall",
    2,
    2,
  ]);
  // The canary ended before any other board started.
  const canaryDone = events.findIndex((e) => e.type === "device.result" && e.device === "kitchen");
  const othersStart = events.findIndex((e) => e.type === "phase.started" && e.device === "garage");
  assert(canaryDone < othersStart, "garage started before the canary ended");
  const current = join(fleet.config.out!, "firmware-ota.bin");
  assert(await flashHolds(fleet, 0, current), "kitchen's flash holds the build");
  assert(await flashHolds(fleet, 1, current), "garage's flash holds the build");
  assert(fleet.devices.every((d) => !d.model.bootloaderOverwritten));
  await s.dashboard.running();
  texts.push(await (await fetch(`${s.base}/api/state`)).text());
  texts.push(await (await post(s.base, "/api/refresh")).text());
  for (const t of texts) assert(!t.includes(DEMO_PASSWORD), `a password in: ${t.slice(0, 200)}`);
  const refreshed = JSON.parse(texts.at(-1)!).boards as { name: string; comparison: string }[];
  assertEquals(refreshed.map((b) => [b.name, b.comparison]), [
    ["kitchen", "up to date"],
    ["garage", "up to date"],
    ["hall", "unknown"],
  ]);
});

Deno.test("rollout() stops after a canary that fails: the other boards are not attempted", async () => {
  await using fleet = await startFleet();
  const port = portOf(fleet, ["hall", "kitchen", "garage"]);
  const events = await collect(port, {
    target: { kind: "fleet" },
    canary: 1,
    maxFailures: null,
    retries: 0,
    trigger: true,
  });
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
    detail: "canary 'hall' did not take the new build",
    notAttempted: ["kitchen", "garage"],
  });
  assertEquals(events.at(-1), {
    ...events.at(-1)!,
    type: "run.ended",
    ok: false,
    exitCode: 11,
    counts: { updated: 0, skipped: 0, failed: 1, "not-attempted": 2 },
  });
  const old = join(fleet.config.out!, "releases");
  const oldId = (await port.releases())[0]!.id;
  assert(await flashHolds(fleet, 0, join(old, oldId, "firmware-ota.bin")), "kitchen untouched");
});

Deno.test("rollout() starts no new board once max failures is reached", async () => {
  await using fleet = await startFleet();
  const port = portOf(fleet, ["hall", "kitchen", "garage"]);
  const events = await collect(port, {
    target: { kind: "fleet" },
    canary: 0,
    maxFailures: 1,
    retries: 0,
    trigger: true,
    concurrency: 1,
  });
  const [hall, ...rest] = results(events);
  assertEquals(hall!.slice(0, 2), ["hall", "failed"]);
  assertStringIncludes(hall![2]!, "no WebREPL at 127.0.0.1:");
  assertEquals(rest, [
    ["kitchen", "not-attempted", "not attempted: 1 board failed (max failures 1)"],
    ["garage", "not-attempted", "not attempted: 1 board failed (max failures 1)"],
  ]);
});

Deno.test("a kept release is sent again to one board: the rollback", async () => {
  await using fleet = await startFleet(1);
  const port = portOf(fleet);
  const [old, current] = await port.releases();
  const plan = await port.plan({
    target: { kind: "board", name: "kitchen" },
    release: old!.id,
    canary: 0,
    maxFailures: null,
    retries: 0,
    trigger: true,
  });
  assertEquals([plan.boards, plan.build], [["kitchen"], `${old!.id} (1.0.0)`]);
  // First the current build, then back to the old one.
  for (const release of [current!, old!]) {
    const events = await collect(port, {
      target: { kind: "board", name: "kitchen" },
      release: release.id,
      canary: 0,
      maxFailures: null,
      retries: 0,
      trigger: true,
    });
    assertEquals(results(events), [["kitchen", "updated"]]);
    const file = join(fleet.config.out!, "releases", release.id, "firmware-ota.bin");
    assert(await flashHolds(fleet, 0, file), `kitchen runs ${release.id}`);
  }
  assertEquals((await port.status(["kitchen"]))[0]!.micropython, fleet.versions.old);
});
