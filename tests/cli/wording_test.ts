/**
 * Wording (issue 22, point 11): sentences that read right, notes that name what the user
 * did, "did you mean" for a typo, a countdown while waiting, sim saying what it runs.
 */
import { join } from "node:path";
import { renderFleetTable } from "../../lib/cli/fleet_table.ts";
import { decidePush } from "../../lib/deploy/build_compare.ts";
import { buildPolicyFor } from "../../lib/deploy/pipeline_steps.ts";
import { closestName, didYouMean } from "../../lib/_suggest.ts";
import { Countdown, countdownLine } from "../../lib/cli/countdown.ts";
import { modeLine } from "../../tasks/sim.ts";
import { writeSampleProject } from "../../lib/sim/sample_project.ts";
import { startVirtualDevice } from "../../lib/sim/virtual_device.ts";
import { loadPublicKey } from "../../lib/config/key_file.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { hermeticEnv, ROOT, runTaskFile, tempDir } from "../_helpers.ts";

Deno.test("a fleet row's message: no '?.' before the attempts", () => {
  const table = renderFleetTable([{
    name: "kitchen",
    ip: "10.0.0.2",
    port: 8266,
    ok: false,
    result: "failed",
    error: "no WebREPL at 10.0.0.2:8266: is WebREPL enabled?",
    attempts: 2,
  }], { messageWidth: 200 });
  assertStringIncludes(table, "is WebREPL enabled? (after 2 attempts)");
  assert(!table.includes("?."), table);
});

Deno.test("a named release is a rollback: the note does not name --allow-downgrade", () => {
  const older = { id: "aaaa00000001", builtAt: "2024-01-01T00:00:00.000Z" };
  const newer = { id: "bbbb00000002", builtAt: "2024-02-01T00:00:00.000Z" };
  const known = (id: string) => [older, newer].find((b) => b.id === id);
  const policy = buildPolicyFor({
    file: "f",
    build: older,
    release: { ...older, dir: "d", firmware: "d/f" },
    known,
  });
  assertEquals(policy.allowDowngrade, "rollback");
  const decision = decidePush({ ota: true, id: newer.id }, older, known, {
    allowDowngrade: policy.allowDowngrade,
    where: "b",
  });
  assertEquals(decision, {
    action: "push",
    note: "rolling back: the release replaces the newer build bbbb00000002",
  });
  const flagged = decidePush({ ota: true, id: newer.id }, older, known, {
    allowDowngrade: buildPolicyFor({ file: "f", build: older, known }, { allowDowngrade: true })
      .allowDowngrade,
    where: "b",
  });
  assertStringIncludes(flagged.action === "push" ? flagged.note ?? "" : "", "--allow-downgrade");
});

Deno.test("deploy --trigger to a board up to date says so, and never 'sending'", async () => {
  await using dir = await tempDir();
  const sample = await writeSampleProject(join(dir.path, "sample"), { bits: 512 });
  const key = await loadPublicKey(join(sample.dir, "keys", "pub.key"));
  const flash = new Uint8Array(0x100000).fill(0xff);
  flash.set(sample.builds.current.image, DEFAULT_APP_OFFSET);
  await using device = await startVirtualDevice({
    port: 0,
    modulus: key.modulus,
    flash,
    start: "boot",
    webrepl: { password: "pw-1234" },
  });
  const r = await runTaskFile("deploy", [
    "--config",
    sample.config,
    "--ip",
    "127.0.0.1",
    "--device-port",
    String(device.port),
    "--trigger",
  ], { env: { ...hermeticEnv(), WEBREPL_PASSWORD: "pw-1234" } });
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "up to date");
  assert(!/sending /.test(r.stderr), r.stderr);
});

Deno.test("no message suggests the LEGO SPIKE helper to every board", async () => {
  for (
    const file of [
      "lib/webrepl/connection.ts",
      "lib/webrepl/trigger.ts",
      "lib/deploy/board_push.ts",
    ]
  ) {
    const text = await Deno.readTextFile(join(ROOT, file));
    assert(!text.includes("spike enable-webrepl"), file);
  }
});

Deno.test("did you mean: a mistyped task, option and config key", async () => {
  assertEquals(closestName("deplyo", ["deploy", "status"]), "deploy");
  assertEquals(closestName("stat", ["deploy", "status"]), "status");
  assertEquals(closestName("zzz", ["deploy", "status"]), undefined);
  assertEquals(didYouMean("devcies", ["devices", "ip"]), " (did you mean 'devices'?)");
  const task = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "yaota.ts"), "deplyo"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(task.code, 2);
  assertStringIncludes(
    new TextDecoder().decode(task.stderr),
    "unknown task 'deplyo' (did you mean 'deploy'?)",
  );
  const option = await runTaskFile("status", ["--fleet", "--devcie-port", "1"]);
  assertStringIncludes(
    option.stderr,
    "unknown option '--devcie-port' (did you mean '--device-port'?)",
  );
  await using dir = await tempDir();
  const config = join(dir.path, "c.json");
  await Deno.writeTextFile(config, '{"devcies": []}');
  const key = await runTaskFile("status", ["--config", config, "--fleet"]);
  assertStringIncludes(key.stderr, "unknown key 'devcies' (did you mean 'devices'?)");
});

Deno.test("a countdown shows the time left each second, then stops", () => {
  let now = 0;
  let tick: (() => void) | undefined;
  const lines: string[] = [];
  const countdown = new Countdown((l) => lines.push(l), {
    now: () => now,
    every: (_ms, t) => {
      tick = t;
      return () => (tick = undefined);
    },
  });
  countdown.start("watching for the app", 3000);
  for (let i = 0; i < 5 && tick; i++) {
    now += 1000;
    tick();
  }
  assertEquals(lines, [
    "watching for the app: 3 s left",
    "watching for the app: 2 s left",
    "watching for the app: 1 s left",
    "watching for the app: 0 s left",
  ]);
  assertEquals(countdown.running, false);
  assertEquals(countdownLine("boot check", 5500), "boot check: 6 s left");
});

Deno.test("sim's banner says whether the device is in OTA mode or runs its app", () => {
  assertStringIncludes(modeLine("ota", false), "in OTA mode");
  assertStringIncludes(modeLine("app", true), "running its app (WebREPL on TCP");
  assertStringIncludes(modeLine("app", false), "no WebREPL");
});
