/**
 * A rollout against the checks under way (lib/dashboard/server.ts, fleet_checks.ts): a board
 * takes one WebREPL client at a time, so a rollout waits for the check that holds its board,
 * and a check that never ends holds it no longer than the dashboard's bound.
 */
import { assert, assertEquals } from "../_assert.ts";
import { type FakePort, fakePort, get, post, readStream, serve } from "./_dashboard.ts";
import { DEMO_PASSWORD, startDemoFleet } from "../../lib/sim/demo_fleet.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { createFleetPort } from "../../lib/dashboard/fleet_port.ts";
import { WebReplClient } from "../../lib/webrepl/client.ts";
import type { BoardStatus, FleetPort, RolloutRequest } from "../../lib/dashboard/port.ts";
import type { RolloutView } from "../../lib/dashboard/rollout_view.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { equalBytes } from "../../lib/_bytes.ts";

const WAITS = "its rollout waits for the check under way (one WebREPL client at a time)";

function boardRequest(name: string, trigger: boolean): RolloutRequest {
  return { target: { kind: "board", name }, canary: 0, maxFailures: null, retries: 0, trigger };
}

Deno.test("a rollout of a board whose check is under way waits for it, then logs in and updates it", async () => {
  await using fleet = await startDemoFleet({
    profile: PROFILES.instant!,
    boards: 1,
    upToDate: 0,
    imageSize: 24 * 1024,
    bits: 512,
  });
  const { old, current } = fleet.builds;
  const kitchen = fleet.config.devices!.find((d) => d.name === "kitchen")!;
  const real = createFleetPort({
    config: { ...fleet.config, devices: [kitchen] },
    keyPath: fleet.keyPath,
    env: fleet.env,
    triggerSettings: { otaWaitMs: 5000, comeBackMs: 10000 },
  });
  // A slow board: the check holds kitchen's one WebREPL session until it is let go.
  const holding = Promise.withResolvers<void>();
  const letGo = Promise.withResolvers<void>();
  let slow = true;
  const port: FleetPort = {
    ...real,
    async status(names) {
      if (slow) {
        slow = false;
        await using _held = await WebReplClient.connect({
          host: kitchen.ip,
          port: kitchen.port,
          password: DEMO_PASSWORD,
        });
        holding.resolve();
        await letGo.promise;
      }
      return real.status(names);
    },
  };
  const warnings: string[] = [];
  await using s = await serve(port, { onWarning: (m) => warnings.push(m) });
  const stream = await get(s.base, "/api/stream");
  const check = post(s.base, "/api/refresh");
  await holding.promise;

  const request = boardRequest("kitchen", true);
  const plan = await (await post(s.base, "/api/plan", { request })).json();
  const started = await post(s.base, "/api/rollout", {
    request,
    confirm: { boards: plan.boards, build: plan.build },
  });
  assertEquals(started.status, 202);
  await started.body?.cancel();

  // The check lets the board go once the rollout waits for it (or, without that wait, once
  // the rollout has given its verdict).
  const notes: (string | undefined)[] = [];
  const messages = await readStream(stream, (m) => {
    if (m.event === "fleet") {
      const row = (m.data as { boards: BoardStatus[] }).boards.find((b) => b.name === "kitchen");
      notes.push(row?.note);
      if (row?.note === WAITS) letGo.resolve();
    }
    if (m.event !== "rollout") return false;
    const view = m.data as RolloutView;
    if (view.boards[0]?.result) letGo.resolve();
    return view.state === "done";
  });
  await (await check).body?.cancel();
  await s.dashboard.running();

  const view = messages.at(-1)!.data as RolloutView;
  assertEquals(
    view.boards.map((b) => [b.name, b.result, b.reason, b.buildBefore, b.buildAfter]),
    [["kitchen", "updated", undefined, old.id, current.id]],
  );
  assertEquals([view.ok, view.exitCode], [true, 0]);
  assert(notes.includes(WAITS), `the row never said the rollout waits: ${notes.join(" | ")}`);
  assertEquals(warnings, []);
  const flash = fleet.devices[0]!.model.flash;
  assert(
    equalBytes(
      flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + current.image.length),
      current.image,
    ),
    "kitchen's flash holds the build",
  );
  const after = await (await post(s.base, "/api/refresh")).json();
  assertEquals(
    (after.boards as BoardStatus[]).map((b) => [b.name, b.build?.id, b.comparison]),
    [["kitchen", current.id, "up to date"]],
  );
});

/**
 * A rollout of board "a" (fake port) started while a check of every board is under way and
 * held; `then` runs once it started. What the user saw: the rollout, "a"'s notes in the fleet
 * events, the warnings.
 */
async function rolloutDuringCheck(
  checkWaitMs: number,
  then: (base: string, port: FakePort) => Promise<void>,
): Promise<{ view: RolloutView; notes: (string | undefined)[]; warnings: string[] }> {
  const port = fakePort();
  const warnings: string[] = [];
  await using s = await serve(port, { checkWaitMs, onWarning: (m) => warnings.push(m) });
  const stream = await get(s.base, "/api/stream");
  const release = port.holdStatus();
  const asked = port.nextStatus();
  const check = post(s.base, "/api/refresh");
  await asked;
  try {
    const started = await post(s.base, "/api/rollout", {
      request: boardRequest("a", false),
      confirm: { boards: ["a"], build: "abc123def456 (1.1.0)" },
    });
    assertEquals(started.status, 202);
    await started.body?.cancel();
    await then(s.base, port);
    const notes: (string | undefined)[] = [];
    await readStream(stream, (m) => {
      if (m.event === "fleet") {
        notes.push((m.data as { boards: BoardStatus[] }).boards.find((b) => b.name === "a")?.note);
      }
      return m.event === "rollout" && (m.data as RolloutView).state === "done";
    });
    await s.dashboard.running();
    assertEquals(port.started.length, 1);
    const view = (await (await get(s.base, "/api/state")).json()).rollout as RolloutView;
    return { view, notes, warnings };
  } finally {
    release();
    await (await check).body?.cancel();
  }
}

Deno.test("a check that never ends holds a rollout no longer than the wait's bound, and the user is told", async () => {
  const { view, notes, warnings } = await rolloutDuringCheck(50, (_, port) => {
    port.finish();
    return Promise.resolve();
  });
  assertEquals(view.boards.map((b) => [b.name, b.result]), [["a", "updated"]]);
  const gaveUp = "a check under way did not end within 0.05 s: the rollout went on " +
    "(its WebREPL login may fail while that check holds the board)";
  assertEquals(warnings, [`a: ${gaveUp}`]);
  assertEquals(notes.slice(0, 3), [WAITS, gaveUp, "checking again after its updated result"]);
});

Deno.test("a rollout stopped while it waits for a check ends at once: no board is attempted", async () => {
  const { view, notes, warnings } = await rolloutDuringCheck(60_000, async (base) => {
    const stopped = await post(base, "/api/stop");
    assertEquals(await stopped.json(), { stopping: true });
  });
  assertEquals(notes.slice(0, 2), [WAITS, "checking again after its not-attempted result"]);
  assertEquals(view.boards.map((b) => [b.name, b.result]), [["a", "not-attempted"]]);
  assertEquals([view.ok, view.exitCode], [false, 130]);
  assertEquals(warnings, []);
});
