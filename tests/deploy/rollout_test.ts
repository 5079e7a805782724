import { assert, assertEquals, assertThrows } from "../_assert.ts";
import {
  DeviceUnreachableError,
  InterruptedError,
  UsageError,
  WebReplError,
} from "../../lib/errors.ts";
import type { DeviceOutcome, FleetDevice } from "../../lib/deploy/fleet.ts";
import {
  isRetryable,
  retryDelay,
  type RolloutDecision,
  type RolloutPolicy,
  runRollout,
} from "../../lib/deploy/pipeline_rollout.ts";
import { jsonLinesSink, progressEvents } from "../../lib/deploy/events.ts";
import {
  BuildMismatchError,
  checkBootedBuild,
  compareBuild,
  decidePush,
  DowngradeRefusedError,
} from "../../lib/deploy/build_compare.ts";
import type { BuildStamp } from "../../lib/build/build_id.ts";
import { knownBuilds } from "../../lib/build/releases.ts";
import { buildPolicyFor } from "../../lib/deploy/pipeline_steps.ts";
import { parseDeployArgs } from "../../tasks/deploy.ts";
import { parseStatusArgs } from "../../tasks/status.ts";

function fleetOf(...names: string[]): FleetDevice[] {
  return names.map((name, i) => ({ name, ip: `10.0.0.${i + 2}`, port: 8266 }));
}

/** A deploy whose outcome per board is scripted, recording the order of attempts. */
function scripted(script: Record<string, (attempt: number) => DeviceOutcome | Error>) {
  const calls: string[] = [];
  const tries = new Map<string, number>();
  const deployOne = (d: FleetDevice) => {
    const attempt = (tries.get(d.name) ?? 0) + 1;
    tries.set(d.name, attempt);
    calls.push(`${d.name}#${attempt}`);
    const r = (script[d.name] ?? (() => ({ ok: true })))(attempt);
    return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
  };
  return { calls, deployOne };
}

const offline = () => new DeviceUnreachableError("no answer");
const noSleep = () => Promise.resolve();

async function rollout(
  names: string[],
  script: Parameters<typeof scripted>[0],
  policy: RolloutPolicy,
  extra: { signal?: AbortSignal } = {},
) {
  const { calls, deployOne } = scripted(script);
  const decisions: RolloutDecision[] = [];
  const waits: number[] = [];
  const { rows, stopped } = await runRollout(fleetOf(...names), deployOne, {
    policy,
    sleep: (ms) => {
      waits.push(ms);
      return noSleep();
    },
    onDecision: (d) => decisions.push(d),
    ...extra,
  });
  return {
    calls,
    decisions,
    waits,
    stopped,
    results: rows.map((r) => [r.name, r.result, r.error ?? r.skipped ?? ""]),
  };
}

Deno.test("runRollout() with a canary: the rest only if the canary ends up running the build", async () => {
  const failed = await rollout(["a", "b", "c"], {
    a: () => ({ ok: false, error: "did not boot", kind: "BootCheckError" }),
  }, { concurrency: 4, canary: 1 });
  assertEquals(failed.calls, ["a#1"]);
  assertEquals(failed.results, [
    ["a", "failed", "did not boot"],
    ["b", "not-attempted", "not attempted: canary 'a' did not end up running the new build"],
    ["c", "not-attempted", "not attempted: canary 'a' did not end up running the new build"],
  ]);
  assertEquals(failed.decisions, [{
    decision: "canary-failed",
    detail: "canary 'a' did not end up running the new build",
    notAttempted: ["b", "c"],
  }]);
  assertEquals(failed.stopped?.decision, "canary-failed");

  // A canary that runs the build already (skipped) passes.
  const passed = await rollout(
    ["a", "b", "c"],
    { a: () => ({ ok: true, skipped: "up to date" }) },
    {
      concurrency: 4,
      canary: 1,
    },
  );
  assertEquals(passed.calls.sort(), ["a#1", "b#1", "c#1"]);
  assertEquals(passed.results.map((r) => r[1]), ["skipped", "updated", "updated"]);
  assertEquals(passed.decisions.map((d) => d.decision), ["canary-passed"]);
  assertEquals(passed.stopped, undefined);
});

Deno.test("runRollout() starts no board once --max-failures boards failed", async () => {
  const r = await rollout(["a", "b", "c", "d"], {
    a: () => ({ ok: false, error: "x" }),
    b: () => ({ ok: false, error: "y" }),
  }, { concurrency: 1, maxFailures: 2 });
  assertEquals(r.calls, ["a#1", "b#1"]);
  assertEquals(r.results.map((x) => x.slice(0, 2)), [
    ["a", "failed"],
    ["b", "failed"],
    ["c", "not-attempted"],
    ["d", "not-attempted"],
  ]);
  assertEquals(r.decisions, [{
    decision: "max-failures",
    detail: "2 boards failed (--max-failures 2)",
    notAttempted: ["c", "d"],
  }]);
});

Deno.test("runRollout() tries an offline board again with a doubling wait, and not other failures", async () => {
  const r = await rollout(["late", "wrong", "dead"], {
    late: (n) => n < 3 ? offline() : { ok: true },
    wrong: () => new WebReplError("wrong WebREPL password"),
    dead: () => offline(),
  }, { concurrency: 1, retries: 3, retryDelayMs: 500 });
  assertEquals(r.calls, [
    "late#1",
    "late#2",
    "late#3",
    "wrong#1",
    "dead#1",
    "dead#2",
    "dead#3",
    "dead#4",
  ]);
  assertEquals(r.waits, [500, 1000, 500, 1000, 2000]);
  assertEquals(r.results.map((x) => x.slice(0, 2)), [
    ["late", "updated"],
    ["wrong", "failed"],
    ["dead", "failed"],
  ]);
  assertEquals(retryDelay({ concurrency: 1, retryDelayMs: 2000 }, 10), 30000);
  assert(isRetryable(new DeviceUnreachableError("x")));
  assert(
    isRetryable(new WebReplError("no WebREPL", { cause: new Deno.errors.ConnectionRefused("r") })),
  );
  assert(!isRetryable(new WebReplError("wrong WebREPL password")));
  assert(!isRetryable(new DowngradeRefusedError("newer")));
});

Deno.test("runRollout() starts nothing after Ctrl-C", async () => {
  const controller = new AbortController();
  const r = await rollout(
    ["a", "b"],
    {
      a: () => {
        controller.abort();
        return { ok: true };
      },
    },
    { concurrency: 1 },
    { signal: controller.signal },
  );
  assertEquals(r.results, [["a", "updated", ""], [
    "b",
    "not-attempted",
    "not started: interrupted",
  ]]);
  assertEquals(r.decisions.map((d) => d.decision), ["interrupted"]);
});

Deno.test("runRollout() gives a stop's reason in words as the decision's detail", async () => {
  const controller = new AbortController();
  controller.abort("stopped from the page");
  const r = await rollout(["a"], {}, { concurrency: 1 }, { signal: controller.signal });
  assertEquals(r.decisions, [{
    decision: "interrupted",
    detail: "stopped from the page",
    notAttempted: ["a"],
  }]);
});

const A: BuildStamp = { id: "aaaa00000001", builtAt: "2024-01-01T00:00:00.000Z", version: "1.0" };
const B: BuildStamp = { id: "bbbb00000002", builtAt: "2024-02-01T00:00:00.000Z" };
const known = (id: string) => [A, B].find((b) => b.id === id);

Deno.test("compareBuild() and decidePush(): same id up to date, older and newer by build time, else unknown", () => {
  const board = (id?: string) => ({ ota: true, ...(id ? { id } : {}) });
  assertEquals(compareBuild(board(B.id), B, known), "up to date");
  assertEquals(compareBuild(board(A.id), B, known), "older");
  assertEquals(compareBuild(board(B.id), A, known), "newer");
  assertEquals(compareBuild(board("ffff00000000"), B, known), "unknown");
  assertEquals(compareBuild(board(), B, known), "unknown");
  assertEquals(compareBuild({ ota: false }, B, known), "unknown");
  assertEquals(compareBuild(board(B.id), undefined, known), "unknown");

  const where = "10.0.0.2:8266";
  assertEquals(decidePush(board(B.id), B, known, { where }), {
    action: "skip",
    reason: "up to date: it runs build bbbb00000002",
  });
  assertEquals(decidePush(board(B.id), B, known, { where, force: true }).action, "push");
  assertEquals(decidePush(board(A.id), B, known, { where }), { action: "push" });
  assertThrows(
    () => decidePush(board(B.id), A, known, { where }),
    DowngradeRefusedError,
    "10.0.0.2:8266 runs build bbbb00000002, built 2024-02-01T00:00:00.000Z, newer than aaaa00000001 " +
      "(1.0) (built 2024-01-01T00:00:00.000Z): refusing the downgrade. Pass --allow-downgrade",
  );
  assertEquals(decidePush(board(B.id), A, known, { where, allowDowngrade: true }), {
    action: "push",
    note: "--allow-downgrade: replacing the newer build bbbb00000002",
  });
  assertEquals(decidePush(board("ffff00000000"), B, known, { where }), {
    action: "push",
    note:
      "it runs build ffff00000000, which is not kept in dist/releases: older or newer cannot be told",
  });
  checkBootedBuild(board(B.id), board(A.id), B, where);
  assertThrows(
    () => checkBootedBuild(board(), board(A.id), B, where),
    BuildMismatchError,
    "10.0.0.2:8266 booted after the update but reports no build id, not bbbb00000002",
  );
});

Deno.test("knownBuilds() knows the kept releases and the current build; buildPolicyFor() makes a named release a rollback", () => {
  const release = { ...A, dir: "dist/releases/aaaa00000001", firmware: "fw.bin" };
  const k = knownBuilds([release], B);
  assertEquals([k(A.id), k(B.id), k("cccc00000003")], [A, B, undefined]);
  const current = { file: "dist/firmware-ota.bin", buildDir: "dist", build: B, known: k };
  assertEquals(buildPolicyFor(current), {
    image: B,
    knownBuilds: k,
    reinstall: false,
    allowDowngrade: false,
  });
  assertEquals(buildPolicyFor(current, { force: true, allowDowngrade: true }), {
    image: B,
    knownBuilds: k,
    reinstall: true,
    allowDowngrade: true,
  });
  const rollback = { file: release.firmware, build: A, release, known: k };
  // A named release is a rollback: allowed, and said as such (not as --allow-downgrade).
  assertEquals(buildPolicyFor(rollback).allowDowngrade, "rollback");
  // The rollback's board is still skipped when it runs that release already.
  assertEquals(
    decidePush({ ota: true, id: A.id }, buildPolicyFor(rollback).image, k, { where: "x" }),
    { action: "skip", reason: "up to date: it runs build aaaa00000001 (1.0)" },
  );
});

Deno.test("progressEvents() emits the first, one per 0.5 s and the last; jsonLinesSink() numbers them", () => {
  const lines: string[] = [];
  const sink = jsonLinesSink((l) => lines.push(l), () => new Date("2024-05-01T00:00:00Z"));
  const emit = progressEvents(sink, "kitchen");
  const p = (confirmed: number, elapsedMs: number) => ({
    confirmed,
    size: 4096,
    retransmits: 1,
    block: 1024,
    elapsedMs,
    phase: "transfer",
    attempts: 1,
  });
  emit(p(0, 0));
  emit(p(1024, 200)); // too soon
  emit(p(2048, 600));
  emit(p(4096, 800)); // the last, however soon
  emit(p(4096, 900)); // nothing after the last
  assertEquals(lines.map((l) => JSON.parse(l)), [
    {
      v: 1,
      seq: 1,
      time: "2024-05-01T00:00:00.000Z",
      type: "progress",
      device: "kitchen",
      bytes: 0,
      total: 4096,
      rate: 0,
      eta: null,
      retransmits: 1,
      block: 1024,
    },
    {
      v: 1,
      seq: 2,
      time: "2024-05-01T00:00:00.000Z",
      type: "progress",
      device: "kitchen",
      bytes: 2048,
      total: 4096,
      rate: 3413,
      eta: 0.6,
      retransmits: 1,
      block: 1024,
    },
    {
      v: 1,
      seq: 3,
      time: "2024-05-01T00:00:00.000Z",
      type: "progress",
      device: "kitchen",
      bytes: 4096,
      total: 4096,
      rate: 5120,
      eta: 0,
      retransmits: 1,
      block: 1024,
    },
  ]);
});

Deno.test("parseDeployArgs() and parseStatusArgs() check the rollout, release and event flags", () => {
  const a = parseDeployArgs([
    "--fleet",
    "--canary",
    "1",
    "--max-failures",
    "2",
    "--retries",
    "3",
    "--retry-delay",
    "0.5",
    "--events",
  ]);
  assertEquals([a.canary, a.maxFailures, a.retries, a.retryDelayMs, a.events], [
    1,
    2,
    3,
    500,
    true,
  ]);
  assertEquals(parseDeployArgs(["--ip", "x", "--release", "previous"]).release, "previous");
  assertThrows(
    () => parseDeployArgs(["--ip", "x", "--canary", "1"]),
    UsageError,
    "go with --fleet",
  );
  assertThrows(
    () => parseDeployArgs(["--fleet", "--canary", "0"]),
    UsageError,
    "--canary expects a whole number from 1 to 1000, got '0'",
  );
  assertThrows(
    () => parseDeployArgs(["--ip", "x", "--release", "previous", "fw.bin"]),
    UsageError,
    "--release names the image to send: leave out FILE 'fw.bin'",
  );
  assertThrows(
    () => parseDeployArgs(["--ip", "x", "--allow-downgrade"]),
    UsageError,
    "--allow-downgrade goes with --trigger",
  );
  assertThrows(
    () => parseDeployArgs(["--ip", "x", "--events", "--json"]),
    UsageError,
    "leave out --json",
  );
  assertEquals(parseStatusArgs(["--fleet", "--only", "a", "--timeout", "1"]).timeoutMs, 1000);
  assertThrows(() => parseStatusArgs(["--only", "a"]), UsageError, "--only goes with --fleet");
  assertThrows(
    () => parseStatusArgs(["--fleet", "--password", "secret"]),
    UsageError,
    "--fleet reads each board's WebREPL password from the environment",
  );
  // Interrupted runs keep their class.
  assertEquals(new InterruptedError("x").name, "InterruptedError");
});
