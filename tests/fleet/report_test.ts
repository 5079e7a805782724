/**
 * `report` (issue 25 part 3): the events of real rollouts on virtual boards, one
 * `deploy --fleet --only SITE --events` per site as the workflow's site jobs run it,
 * folded into one report: Markdown, JSON and the exit code the workflow fails on.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir } from "../_helpers.ts";
import { join } from "node:path";
import { foldReport, type RolloutReport, siteReport } from "../../lib/fleet/report.ts";
import { parseReportArgs, siteOf } from "../../tasks/report.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { startVirtualDevice, type VirtualDevice } from "../../lib/sim/virtual_device.ts";
import { closedPort, KEY, key } from "../deploy/_one_build.ts";

function otaBoard(): Promise<VirtualDevice> {
  return startVirtualDevice({
    port: 0,
    modulus: key.modulus,
    flash: new Uint8Array(0x100000).fill(0xff),
    profile: PROFILES.instant,
  });
}

/** One site's rollout as its job runs it; its events file. */
async function rollout(dir: string, site: string, file: string): Promise<string> {
  const r = await runTaskFile("deploy", [
    "--fleet",
    "--only",
    site,
    "--canary",
    "1",
    "--events",
    "--key",
    KEY,
    "--timeout",
    "2",
    "--boot-check-window",
    "0.3",
    file,
  ], { cwd: dir });
  const path = join(dir, "events", `events-${site}`, "events.jsonl");
  await Deno.mkdir(join(dir, "events", `events-${site}`), { recursive: true });
  await Deno.writeTextFile(path, r.stdout);
  return path;
}

Deno.test("report folds the events of real site rollouts: one site all updated, one whose canary board was offline, one that never ran", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "fw.bin");
  await Deno.writeFile(file, makeSampleFirmware({ size: 24 * 1024, seed: 5 }));
  const boards = [await otaBoard(), await otaBoard(), await otaBoard()];
  try {
    await Deno.writeTextFile(
      join(dir.path, "ota.config.json"),
      JSON.stringify({
        devices: [
          { name: "lab-1", ip: "127.0.0.1", port: boards[0]!.port, tags: ["lab"] },
          { name: "lab-2", ip: "127.0.0.1", port: boards[1]!.port, tags: ["lab"] },
          { name: "annex-1", ip: "127.0.0.1", port: closedPort(), tags: ["annex"] },
          { name: "annex-2", ip: "127.0.0.1", port: boards[2]!.port, tags: ["annex"] },
        ],
      }),
    );
    const lab = await rollout(dir.path, "lab", file);
    const annex = await rollout(dir.path, "annex", file);

    const labReport = siteReport("lab", await Deno.readTextFile(lab));
    assertEquals([labReport.outcome, labReport.exitCode], ["ok", 0]);
    assertEquals(labReport.devices.map((d) => [d.device, d.result]), [
      ["lab-1", "updated"],
      ["lab-2", "updated"],
    ]);

    const summary = join(dir.path, "summary.md");
    await Deno.writeTextFile(summary, "# earlier step\n");
    const r = await runTaskFile("report", [
      "--summary",
      summary,
      "--json",
      "--expect",
      "school",
      lab,
      annex,
    ], { cwd: dir.path });
    assertEquals(r.code, 10, r.stderr);
    const report = JSON.parse(r.stdout) as RolloutReport;
    assertEquals(report.kind, "SomeDevicesFailed");
    assertEquals(
      report.sites.map((s) => [s.site, s.outcome, s.exitCode]),
      [["lab", "ok", 0], ["annex", "failed", 10], ["school", "no-result", null]],
    );
    assertEquals(report.counts, { updated: 2, skipped: 0, failed: 1, "not-attempted": 1 });
    // annex's canary board was offline: the site stopped there.
    const annexSite = report.sites[1]!;
    assertEquals(annexSite.devices.map((d) => [d.device, d.result, d.kind]), [
      ["annex-1", "failed", "DeviceUnreachableError"],
      ["annex-2", "not-attempted", undefined],
    ]);
    assertStringIncludes(annexSite.decision!, "canary-failed");
    assertEquals(boards[2]!.events.filter((e) => e.type === "packet").length, 0);
    assertStringIncludes(report.sites[2]!.reason!, "no events");

    const markdown = await Deno.readTextFile(summary);
    assert(markdown.startsWith("# earlier step\n## Rollout: ❌ exit 10 (SomeDevicesFailed)"));
    assertStringIncludes(markdown, "| lab | ✅ ok (exit 0) |");
    assertStringIncludes(markdown, "| annex | ❌ failed (exit 10) |");
    assertStringIncludes(markdown, "| school | ⚠️ no-result |");
    assertStringIncludes(markdown, "| annex-1 | failed |");
    assertStringIncludes(markdown, "| annex-2 | not-attempted |");
    assertStringIncludes(markdown, "canary-failed: canary 'annex-1' did not end up running");
    assertStringIncludes(
      markdown,
      "3 sites; boards: 2 updated, 0 skipped, 1 failed, 1 not attempted.",
    );

    // Every site succeeded: exit 0, and Markdown on stdout without --json.
    const ok = await runTaskFile("report", [lab], { cwd: dir.path });
    assertEquals(ok.code, 0, ok.stderr);
    assertStringIncludes(ok.stdout, "## Rollout: ✅ every site succeeded");
  } finally {
    for (const b of boards) await b.close();
  }
});

Deno.test("report: a stream cut short is not a success; no board on the build anywhere is exit 11", () => {
  const started = JSON.stringify({
    v: 1,
    seq: 1,
    time: "t",
    type: "run.started",
    command: "deploy",
    devices: ["a"],
  });
  const failed = JSON.stringify({
    v: 1,
    seq: 2,
    time: "t",
    type: "device.result",
    device: "a",
    result: "failed",
    reason: "no answer\n| forged |",
  });
  const cut = siteReport("cut", `${started}\n${failed}\n{"v":1,"seq":3,"ti`);
  assertEquals([cut.outcome, cut.badLines], ["no-result", 1]);
  assertStringIncludes(cut.reason!, "ends before the run did");
  const all = foldReport([cut]);
  assertEquals([all.ok, all.exitCode, all.kind], [false, 11, "AllDevicesFailed"]);
  assertEquals(foldReport([]).exitCode, 11);
});

Deno.test("report arguments: SITE=FILE, the site from events-SITE/events.jsonl, two files for one site refused", () => {
  assertEquals(siteOf("events/events-lab/events.jsonl"), "lab");
  assertEquals(siteOf("out/school.jsonl"), "school");
  assertEquals(parseReportArgs(["annex=x/y.jsonl", "--expect", "b"]), {
    files: [{ site: "annex", path: "x/y.jsonl" }],
    expect: ["b"],
    json: false,
  });
  let message = "";
  try {
    parseReportArgs(["a/lab.jsonl", "b/lab.jsonl"]);
  } catch (e) {
    message = (e as Error).message;
  }
  assertStringIncludes(message, "two files for the site 'lab'");
});
