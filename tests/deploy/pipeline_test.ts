/**
 * The one deploy pipeline (issue 23): one board is a fleet of one. The same events from
 * `run.started` to `run.ended`; a lone board's exit code is its error's and its report
 * names no fleet command, while a fleet of one keeps the fleet's codes and retry command.
 */
import dgram from "node:dgram";
import { assert, assertEquals } from "../_assert.ts";
import { tempDir, VECTORS } from "../_helpers.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { deployFleet, runDeploy } from "../../lib/deploy/pipeline.ts";
import type { SharedRequest } from "../../lib/deploy/pipeline_steps.ts";
import { DeviceUnreachableError } from "../../lib/errors.ts";
import { EXIT } from "../../lib/exit_codes.ts";
import type { OtaEvent } from "../../lib/deploy/events.ts";

const KEY = `${VECTORS}test-key-512.pem`;

/** A UDP port on 127.0.0.1 that takes datagrams and never answers. */
async function silentPort(): Promise<{ port: number } & AsyncDisposable> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    port: socket.address().port,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

async function request(dir: string): Promise<SharedRequest> {
  const file = `${dir}/fw.bin`;
  await Deno.writeFile(file, makeSampleFirmware({ size: 8 * 1024, seed: 9 }));
  return {
    file,
    block: 1024,
    pace: true,
    timeoutMs: 500,
    force: false,
    bootCheck: false,
    appOffset: DEFAULT_APP_OFFSET,
    flashSize: 0x100000,
  };
}

const types = (events: OtaEvent[]) =>
  events.map((e) => "phase" in e ? `${e.type}:${e.phase}` : e.type);

Deno.test("a lone board's run: a fleet's events, its error and exit code, no fleet retry command", async () => {
  await using dir = await tempDir();
  await using silent = await silentPort();
  const events: OtaEvent[] = [];
  const board = { name: "127.0.0.1", ip: "127.0.0.1", port: silent.port };
  const run = await runDeploy({
    targets: [board],
    request: await request(dir.path),
    keyPath: KEY,
    events: { emit: (e) => events.push(e) },
  });
  const error = run.boards.get(board.name)?.error;
  assert(error instanceof DeviceUnreachableError, String(error));
  assertEquals(run.exitCode, EXIT.unreachable);
  assertEquals(run.report.retry, undefined);
  assertEquals(run.report.counts.failed, 1);
  assertEquals(types(events).filter((t) => t !== "progress"), [
    "run.started",
    "phase.started:preflight",
    "phase.ended:preflight",
    "phase.started:push",
    "phase.ended:push",
    "device.result",
    "run.ended",
  ]);
  const ended = events.at(-1)!;
  assert(ended.type === "run.ended");
  assertEquals([ended.exitCode, ended.kind], [EXIT.unreachable, DeviceUnreachableError.name]);
});

Deno.test("a fleet of one keeps the fleet's exit code and retry command", async () => {
  await using dir = await tempDir();
  await using silent = await silentPort();
  const events: OtaEvent[] = [];
  const report = await deployFleet({
    inventory: [{ name: "kitchen", ip: "127.0.0.1", port: silent.port }],
    request: await request(dir.path),
    keyPath: KEY,
    argv: ["--fleet"],
    events: { emit: (e) => events.push(e) },
  });
  assertEquals(report.kind, "AllDevicesFailed");
  assertEquals(report.retry, "deno task deploy --fleet --only kitchen");
  const ended = events.at(-1)!;
  assert(ended.type === "run.ended");
  assertEquals([ended.exitCode, ended.kind], [EXIT.fleetAllFailed, undefined]);
});
