/**
 * `deno task deploy --ip ADDR [FILE]`: push signed firmware to a yaota8266 device over
 * Wi-Fi. Preflight, sign, push, verify that it boots.
 */
import { parseCommandArgs, runTask, type TaskContext } from "../lib/cli/cli.ts";
import { spec } from "../lib/cli/deploy_spec.ts";
import { loadConfig, type OtaConfig } from "../lib/config/config.ts";
import { resolveKeyPath, resolvePort } from "../lib/config/values.ts";
import { DEFAULT_BUILD_DIR } from "../lib/build/build_outputs.ts";
import { log, print, terminalSafe } from "../lib/cli/output.ts";
import { chooseImage } from "../lib/build/releases.ts";
import { describeBuild } from "../lib/build/build_id.ts";
import { endingRun, type EventSink, jsonLinesSink, NO_EVENTS } from "../lib/deploy/events.ts";
import { fleetExitCode } from "../lib/deploy/fleet.ts";
import { deployFleet, runDeploy } from "../lib/deploy/pipeline.ts";
import { FleetProgress } from "../lib/cli/fleet_progress.ts";
import {
  buildPolicy,
  type DeployArgs,
  flagOrPrompt,
  loneBoard,
  rolloutPolicy,
  sharedRequest,
  toDeployArgs,
} from "../lib/cli/deploy_args.ts";
import {
  boardAnnouncer,
  BoardProgress,
  renderBoard,
  renderFleet,
  resultWriter,
} from "../lib/cli/deploy_report.ts";

export { type DeployArgs, spec, toDeployArgs };

/** Parses the command line. Pure. @throws {UsageError} */
export function parseDeployArgs(argv: string[]): DeployArgs {
  return toDeployArgs(parseCommandArgs(spec, argv));
}

/** The event sink of --events (JSON lines on stdout), or none. */
function eventSink(args: DeployArgs): EventSink {
  return args.events ? jsonLinesSink((line) => print(line)) : NO_EVENTS;
}

export async function main(ctx: TaskContext): Promise<number> {
  const args = toDeployArgs(ctx.args);
  const config = await loadConfig(args.config);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    return await endingRun(
      eventSink(args),
      (events) => deployWith(args, config, events, ctx, controller.signal),
    );
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}

/** The image, then the pipeline on the fleet or the lone board, then its rendering. */
async function deployWith(
  args: DeployArgs,
  config: OtaConfig,
  events: EventSink,
  ctx: TaskContext,
  signal: AbortSignal,
): Promise<number> {
  const out = resultWriter(args.events);
  const image = await chooseImage(
    { ...(args.file === undefined ? {} : { file: args.file }), release: args.release },
    config.out ?? DEFAULT_BUILD_DIR,
  );
  if (image.release) {
    log(terminalSafe(
      `release ${describeBuild(image.release)}, built ${image.release.builtAt}: ${image.file}`,
      Infinity,
    ));
  }
  const common = {
    request: sharedRequest(args, config, image),
    keyPath: resolveKeyPath(args.keyPath, config),
    trigger: args.trigger,
    builds: buildPolicy(args, image),
    rollout: rolloutPolicy(args),
    events,
    signal,
    argv: ctx.argv,
    program: ctx.program,
    log: (line: string) => log(terminalSafe(line, Infinity)),
  };
  const rendering = { json: args.json, trigger: args.trigger, out };
  if (args.fleet) {
    const report = await deployFleet({
      ...common,
      inventory: config.devices,
      only: args.only,
      defaultPort: resolvePort(args.port, config),
      // Each board's password from the variable its entry names (never a prompt).
      env: (name) => Deno.env.get(name),
      progress: new FleetProgress(),
    });
    renderFleet(report, rendering);
    return fleetExitCode(report);
  }
  const board = loneBoard(args, config);
  const run = await runDeploy({
    ...common,
    targets: [board],
    passwords: flagOrPrompt(args),
    progress: new BoardProgress(args.bootCheckMs),
    ...boardAnnouncer(image, args.trigger),
  });
  return renderBoard(run, board, rendering);
}

if (import.meta.main) runTask(spec, main);
