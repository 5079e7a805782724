/** The rollout as the page shows it, folded from the events (lib/dashboard/rollout_view.ts). */
import { assertEquals, assertThrows } from "../_assert.ts";
import type { RolloutEvent, RolloutEventBody, RolloutRequest } from "../../lib/dashboard/port.ts";
import {
  applyEvent,
  EVENT_TAIL,
  interruptedView,
  type RolloutView,
  startView,
  summarize,
} from "../../lib/dashboard/rollout_view.ts";
import {
  describeTarget,
  onlyOf,
  parseConfirmed,
  parseRolloutRequest,
} from "../../lib/dashboard/rollout_request.ts";
import { UsageError } from "../../lib/errors.ts";

const REQUEST: RolloutRequest = {
  target: { kind: "fleet" },
  canary: 1,
  maxFailures: null,
  retries: 1,
  trigger: true,
};

function fold(bodies: RolloutEventBody[]): RolloutView {
  let view = startView("r1", REQUEST, "abc123 (1.1.0)", ["a", "b"], "2026-01-01T00:00:00.000Z");
  bodies.forEach((body, i) => {
    const event = { v: 1, seq: i + 1, time: `2026-01-01T00:00:0${i % 10}.000Z`, ...body };
    view = applyEvent(view, event as RolloutEvent);
  });
  return view;
}

Deno.test("applyEvent() turns progress into bytes, per cent, rate and ETA per board", () => {
  const view = fold([
    { type: "phase.started", phase: "trigger", device: "a" },
    { type: "phase.started", phase: "push", device: "a" },
    {
      type: "progress",
      device: "a",
      bytes: 40960,
      total: 163840,
      rate: 20480,
      eta: 6,
      retransmits: 2,
      block: 1024,
    },
  ]);
  assertEquals(view.boards[0], {
    name: "a",
    phase: "push",
    bytes: 40960,
    total: 163840,
    percent: 25,
    rate: 20480,
    eta: 6,
    retransmits: 2,
    retries: 0,
  });
  assertEquals(view.boards[1]!.phase, "waiting");
  assertEquals(view.state, "running");
  assertEquals(summarize(view), "2 to go");
});

Deno.test("applyEvent() counts retries, keeps results and decisions, and ends the run", () => {
  const view = fold([
    {
      type: "run.started",
      command: "deploy",
      devices: ["a", "b", "c"],
      policy: { concurrency: 4, canary: 1, maxFailures: null, retries: 1 },
    },
    {
      type: "retry",
      device: "a",
      attempt: 2,
      attempts: 2,
      delayMs: 2000,
      reason: "no answer",
      kind: "DeviceUnreachableError",
    },
    {
      type: "device.result",
      device: "a",
      result: "failed",
      reason: "no answer",
      kind: "DeviceUnreachableError",
      attempts: 2,
    },
    {
      type: "rollout.decision",
      decision: "canary-failed",
      detail: "canary 'a' did not take the new build",
      notAttempted: ["b", "c"],
    },
    { type: "device.result", device: "b", result: "not-attempted", reason: "not attempted" },
    { type: "device.result", device: "c", result: "not-attempted", reason: "not attempted" },
    { type: "run.ended", ok: false, exitCode: 11 },
  ]);
  assertEquals(view.boards.map((b) => b.name), ["a", "b", "c"]);
  assertEquals(view.boards[0]!.retries, 1);
  assertEquals(view.boards[0]!.result, "failed");
  assertEquals(view.boards[0]!.reason, "no answer");
  assertEquals(view.boards[0]!.attempts, 2);
  // Only an updated board is "done": the others end in a phase that says how.
  assertEquals(view.boards.map((b) => b.phase), ["failed", "not attempted", "not attempted"]);
  assertEquals(view.decisions, [{
    decision: "canary-failed",
    detail: "canary 'a' did not take the new build",
    notAttempted: ["b", "c"],
  }]);
  assertEquals(view.policy?.canary, 1);
  assertEquals([view.state, view.ok, view.exitCode], ["done", false, 11]);
  assertEquals(view.endedAt, "2026-01-01T00:00:06.000Z");
  assertEquals(summarize(view), "1 failed, 2 not attempted");
});

Deno.test("applyEvent() keeps the last events only, and ignores types it does not know", () => {
  const many: RolloutEventBody[] = Array.from({ length: EVENT_TAIL + 5 }, () => ({
    type: "phase.started",
    phase: "push",
    device: "a",
  }));
  const view = fold([...many, { type: "future.thing" } as unknown as RolloutEventBody]);
  assertEquals(view.events.length, EVENT_TAIL);
  assertEquals(view.events.at(-1)!.seq, EVENT_TAIL + 6);
  assertEquals(view.boards.map((b) => b.phase), ["push", "waiting"]);
});

Deno.test("interruptedView() ends a run read back after a stop; boards without a result were cut off", () => {
  const running = fold([{ type: "device.result", device: "a", result: "updated" }]);
  const view = interruptedView(running, "2026-01-01T01:00:00.000Z");
  assertEquals([view.state, view.ok, view.endedAt], ["done", false, "2026-01-01T01:00:00.000Z"]);
  assertEquals(view.boards.map((b) => [b.name, b.phase, b.result, b.reason]), [
    ["a", "done", "updated", undefined],
    ["b", "not attempted", "not-attempted", "cut off: the dashboard stopped"],
  ]);
  const done = fold([{ type: "run.ended", ok: true, exitCode: 0 }]);
  assertEquals(interruptedView(done, "2026-01-01T01:00:00.000Z"), done);
});

Deno.test("parseRolloutRequest() checks every field the page sends, naming it", () => {
  assertEquals(
    parseRolloutRequest({ target: { kind: "tag", tag: "sensor" }, canary: 2, retries: 3 }),
    {
      target: { kind: "tag", tag: "sensor" },
      canary: 2,
      maxFailures: null,
      retries: 3,
      trigger: true,
    },
  );
  assertEquals(
    parseRolloutRequest({
      target: { kind: "board", name: "kitchen" },
      release: "abc123def456",
      maxFailures: 2,
      trigger: false,
      concurrency: 2,
    }),
    {
      target: { kind: "board", name: "kitchen" },
      release: "abc123def456",
      canary: 0,
      maxFailures: 2,
      retries: 0,
      trigger: false,
      concurrency: 2,
    },
  );
  const bad: [unknown, string][] = [
    [null, "the rollout request must be a JSON object"],
    [{ target: { kind: "all" } }, 'target.kind must be "board", "tag" or "fleet", got "all"'],
    [{ target: { kind: "board" } }, "target.name must be a non-empty string, got undefined"],
    [
      { target: { kind: "fleet" }, canary: -1 },
      "canary must be a whole number from 0 to 1000, got -1",
    ],
    [
      { target: { kind: "fleet" }, retries: 11 },
      "retries must be a whole number from 0 to 10, got 11",
    ],
    [
      { target: { kind: "fleet" }, maxFailures: 0 },
      "maxFailures must be a whole number from 1 to 1000, got 0",
    ],
    [{ target: { kind: "fleet" }, trigger: "yes" }, 'trigger must be true or false, got "yes"'],
  ];
  for (const [value, message] of bad) {
    assertThrows(() => parseRolloutRequest(value), UsageError, message);
  }
  assertThrows(
    () => parseConfirmed({ boards: "a", build: "x" }),
    UsageError,
    "confirm.boards must be the list of board names the page showed",
  );
  assertEquals(parseConfirmed({ boards: ["a"], build: "x" }), { boards: ["a"], build: "x" });
});

Deno.test("onlyOf() and describeTarget() say the same target as deploy --fleet --only and in words", () => {
  assertEquals(onlyOf({ kind: "board", name: "kitchen" }), ["kitchen"]);
  assertEquals(onlyOf({ kind: "tag", tag: "sensor" }), ["sensor"]);
  assertEquals(onlyOf({ kind: "fleet" }), []);
  assertEquals(describeTarget({ kind: "tag", tag: "sensor" }), "the boards tagged 'sensor'");
});

Deno.test("applyEvent() ends a failed board in phase 'failed' naming the phase it failed in, a skipped one in 'skipped'", () => {
  const view = fold([
    { type: "run.started", command: "deploy", devices: ["a", "b"] },
    { type: "phase.started", phase: "push", device: "a" },
    { type: "device.result", device: "a", result: "failed", reason: "no answer" },
    { type: "phase.started", phase: "trigger", device: "b" },
    { type: "device.result", device: "b", result: "skipped", reason: "up to date" },
  ]);
  assertEquals(view.boards.map((b) => [b.name, b.phase, b.failedIn]), [
    ["a", "failed", "push"],
    ["b", "skipped", undefined],
  ]);
});
