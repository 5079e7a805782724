/**
 * The two renderings of `deno task deploy`: one board (its opening line, its progress
 * bar, the summary and what the push proved, or its error as the task's failure) and a
 * fleet (a table, the counts, the retry command). Both read the pipeline's report
 * (`lib/deploy/pipeline.ts`); `--json` prints one board's engine result or the fleet's
 * report as they are.
 */
import {
  formatBytes,
  green,
  log,
  print,
  printJson,
  red,
  stderrIsTerminal,
  terminalSafe,
} from "./output.ts";
import { terminalSafeDeep } from "./terminal_text.ts";
import { formatTransfer, ProgressDisplay } from "./progress.ts";
import { renderFleetSummary, renderFleetTable } from "./fleet_table.ts";
import { tracing } from "../trace.ts";
import { InterruptedError } from "../errors.ts";
import { describeBuild } from "../build/build_id.ts";
import type { ImageChoice } from "../build/releases.ts";
import { describeBoardBuild } from "../format/ota_module.ts";
import { bootLoopEnding, type DeployResult } from "../deploy/board_push.ts";
import type { TriggeredDeployResult } from "../deploy/board_trigger.ts";
import type { FleetDevice, FleetProgressSink, FleetReport } from "../deploy/fleet.ts";
import type { PipelineOptions, PipelineRun, RunPlan } from "../deploy/pipeline.ts";
import { BOOT_CHECK_STATUS } from "../transfer/phase_ending.ts";
import { DEFAULT_BOOT_CHECK_MS } from "../transfer/engine_core.ts";
import type { SendProgress } from "../transfer/send_firmware.ts";
import { EXIT } from "../exit_codes.ts";

/** Where the human result goes: stdout, or stderr when stdout carries the events. */
export function resultWriter(events: boolean): (line: string) => void {
  return events ? (line) => log(line) : (line) => print(line);
}

/**
 * What a push without --trigger proves, and what it does not: the OTA protocol has no
 * message that says "booted the new image" (docs/device.md), so silence after the end
 * packet is all there is; a peer that acknowledges everything looks the same.
 */
const bootCheckPassed = (host: string) =>
  "the device confirmed every packet and stopped answering OTA packets after the end: it " +
  "rebooted and did not fall back to OTA mode. Without --trigger the new build is not " +
  `confirmed: 'deno task status --ip ${host}' (or deploy --trigger) reads the build it runs`;
const bootCheckSkipped = (host: string) =>
  "the device confirmed every packet before the end packet; boot check skipped: whether it " +
  `rebooted into the new build is not known ('deno task status --ip ${host}' reads it)`;

function summary(result: DeployResult): string {
  return green("done: ") + formatTransfer(result) +
    `, block ${result.block}, ${result.retransmits} retransmissions` +
    (result.recoveries ? `, ${result.recoveries} session recoveries` : "");
}

/**
 * One board's progress: a bar on a terminal (plain lines with --verbose or off one), and
 * the boot check's wait counted down (`bootCheckMs`).
 */
export class BoardProgress implements FleetProgressSink {
  #display: ProgressDisplay | undefined;
  readonly #bootCheckMs: number;

  constructor(bootCheckMs = DEFAULT_BOOT_CHECK_MS) {
    this.#bootCheckMs = bootCheckMs;
  }

  begin(boards: FleetDevice[], size: number): void {
    const board = boards[0]!;
    // With --verbose, plain progress lines between the trace lines (a bar would be torn up).
    this.#display = new ProgressDisplay(
      `${board.ip}:${board.port}`,
      size,
      stderrIsTerminal() && !tracing(),
    );
  }
  start(): void {}
  update(_name: string, state: SendProgress): void {
    this.#display?.update({ ...state });
  }
  note(_name: string, message: string): void {
    if (message === BOOT_CHECK_STATUS) this.#display?.countdown(message, this.#bootCheckMs);
    else this.#display?.note(message);
  }
  finish(): void {
    this.#display?.finish();
  }
  close(): void {
    this.#display?.finish();
  }
}

/**
 * Says "sending FILE ... to ADDR:PORT" once the preflight passed; with --trigger only as
 * the push starts, once the board's build said it needs this one (else: "up to date").
 */
export function boardAnnouncer(
  image: ImageChoice,
  trigger: boolean,
): Pick<PipelineOptions, "onPlan" | "onPhase"> {
  let plan: RunPlan | undefined;
  const announce = () => plan && log(boardOpening(image, plan));
  return {
    onPlan: (p) => {
      plan = p;
      if (!trigger) announce();
    },
    onPhase: (_board, phase, state) => {
      if (trigger && phase === "push" && state === "started") announce();
    },
  };
}

/** "sending FILE (SIZE, key F, build B) to ADDR:PORT". */
function boardOpening(image: ImageChoice, plan: RunPlan): string {
  const board = plan.targets[0]!;
  const key = plan.kind === "canned" ? "canned" : `key ${[...plan.fingerprints.values()][0]}`;
  return terminalSafe(
    `sending ${image.file} (${formatBytes(plan.size)}, ${key}${
      image.build ? `, build ${describeBuild(image.build)}` : ""
    }) to ${board.ip}:${board.port}`,
    Infinity,
  );
}

/**
 * One board's ending: `--json` prints the engine's result; else the summary and what the
 * push proved (the versions and builds, with --trigger). A failed board's error is the
 * task's: thrown, for its message and exit code. Returns the exit code (0).
 */
export function renderBoard(
  run: PipelineRun,
  board: FleetDevice,
  options: { json: boolean; trigger: boolean; out: (line: string) => void },
): number {
  const { result, error } = run.boards.get(board.name) ?? {};
  const row = run.report.devices[0];
  if (error !== undefined || result === undefined || !row?.ok) throw boardError(error, row?.error);
  const { out } = options;
  if (options.json) {
    printJson(result);
    return EXIT.ok;
  }
  const host = board.ip;
  if (options.trigger) {
    const r = result as TriggeredDeployResult;
    if (r.skipped !== undefined) {
      out(
        terminalSafe(`${host}: ${r.skipped}. Nothing was sent (--force sends anyway).`, Infinity),
      );
      return EXIT.ok;
    }
    out(summary(r));
    out(
      r.bootLoop ? red(terminalSafe(bootLoopEnding(r.bootLoop, host), Infinity)) : terminalSafe(
        `${host}: MicroPython ${r.versionBefore} -> ${r.versionAfter} (via ${r.trigger})` +
          (r.buildAfter?.id
            ? `, build ${describeBoardBuild(r.buildBefore)} -> ${describeBoardBuild(r.buildAfter)}`
            : ""),
        Infinity,
      ),
    );
    return EXIT.ok;
  }
  out(summary(result));
  out(
    result.bootLoop
      ? red(bootLoopEnding(result.bootLoop, host))
      : result.bootCheck === "passed"
      ? bootCheckPassed(host)
      : bootCheckSkipped(host),
  );
  return EXIT.ok;
}

/** The error a failed board ends the task with; the engine's Ctrl-C says what is safe. */
function boardError(error: unknown, reason: string | undefined): unknown {
  if (error === undefined) return new InterruptedError(reason ?? "interrupted");
  if (error instanceof InterruptedError && error.message === "interrupted") {
    return new InterruptedError(
      "interrupted: nothing more was sent (no end packet). The device restarts its session by itself " +
        "after 10 s; running deploy again is safe.",
    );
  }
  return error;
}

/** A fleet's ending: `--json` prints the report; else the table and the lines under it. */
export function renderFleet(
  report: FleetReport,
  options: { json: boolean; trigger: boolean; out: (line: string) => void },
): void {
  if (options.json) return printJson(report);
  options.out(renderFleetTable(terminalSafeDeep(report.devices), { trigger: options.trigger }));
  options.out(renderFleetSummary(terminalSafeDeep(report)));
}
