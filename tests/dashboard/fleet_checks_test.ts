/**
 * The fleet the dashboard shows after a rollout: each board asked again when its result
 * arrives and every board when the rollout ends, so it never shows what a board ran before
 * (lib/dashboard/fleet_checks.ts), over a fake `FleetPort` with real requests.
 */
import { assertEquals } from "../_assert.ts";
import { fakePort, get, post, readStream, serve } from "./_dashboard.ts";
import type { BoardStatus } from "../../lib/dashboard/port.ts";
import type { RolloutView } from "../../lib/dashboard/rollout_view.ts";

const FLEET = { target: { kind: "fleet" }, canary: 0, maxFailures: null, retries: 0 };
const CONFIRM = { boards: ["a", "b"], build: "abc123def456 (1.1.0)" };

Deno.test("after a rollout the fleet shows the builds the boards run now, even when a check was under way as it ended", async () => {
  const port = fakePort();
  // The rollout waits 50 ms for the check under way, then goes on without it.
  await using s = await serve(port, { checkWaitMs: 50 });
  const stream = await get(s.base, "/api/stream");
  // A check under way, which saw both boards on the old build before the rollout.
  const release = port.holdStatus();
  const stale = post(s.base, "/api/refresh");
  const started = await post(s.base, "/api/rollout", { request: FLEET, confirm: CONFIRM });
  assertEquals(started.status, 202);
  await started.body?.cancel();
  port.finish();
  await s.dashboard.running();
  release();
  await (await stale).body?.cancel();

  let resulted = new Set<string>();
  const shown: [string, string | undefined, string][] = [];
  await readStream(stream, (m) => {
    if (m.event === "rollout") {
      const view = m.data as RolloutView;
      resulted = new Set(view.boards.filter((b) => b.result).map((b) => b.name));
    }
    if (m.event !== "fleet") return false;
    const boards = (m.data as { boards: BoardStatus[] }).boards;
    for (const b of boards) {
      if (resulted.has(b.name)) shown.push([b.name, b.state, b.comparison]);
    }
    return boards.every((b) => b.comparison === "up to date");
  });
  // Once its result is in, a board is shown "checking" (no state), then as it runs now:
  // never the old build.
  assertEquals(shown.filter(([, , comparison]) => comparison === "older"), []);
  const state = await (await get(s.base, "/api/state")).json();
  assertEquals(
    (state.boards as BoardStatus[]).map((b) => [b.name, b.comparison, b.build?.id]),
    [["a", "up to date", "abc123def456"], ["b", "up to date", "abc123def456"]],
  );
});

Deno.test("each board is asked again as soon as its result arrives, then every board when the rollout ends", async () => {
  const port = fakePort();
  await using s = await serve(port);
  const started = await post(s.base, "/api/rollout", { request: FLEET, confirm: CONFIRM });
  await started.body?.cancel();
  port.finish();
  await s.dashboard.running();
  await s.dashboard.close();
  // The first result's board alone, at once; the whole fleet last, after the end.
  assertEquals(port.asked[0], ["a"]);
  assertEquals(port.asked.at(-1), ["a", "b"]);
});
