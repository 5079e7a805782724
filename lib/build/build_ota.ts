/**
 * `build-ota`: the MicroPython OTA firmware in one command. Finds and checks the tree,
 * compiles the frozen modules with MicroPython, checks the container runtime, renders
 * the linker script, copies the modules, runs make (mpy-cross first) in the container,
 * collects the image, writes the manifest and refuses an image that is not a valid OTA
 * image for the app offset: yaota8266 updates in place with no fallback copy.
 */
import { dirname, join, relative } from "node:path";
import { daxProbe } from "./container.ts";
import { cflagsArgument, COMPILER, detectToolchain, type Toolchain } from "./toolchain.ts";
import { cleanReason, writeToolchainStamp } from "./build_clean.ts";
import { explainMakeFailure } from "./make_failures.ts";
import { iromLengthOption, overflowContext, withMakeSettings } from "./build_layout.ts";
import { isFile } from "../_fs.ts";
import {
  type BuildDeps,
  type BuildReporter,
  defaultBuildDeps,
  dryRunListing,
  planMake,
  runMake,
} from "./make_runner.ts";
import { removeIfExists, writeFileAtomically } from "../_fs.ts";
import {
  type BuildOtaFlags,
  type BuildOtaOptions,
  DEFAULT_FLASH_SIZE,
  LOG_FILE,
  REJECTED_FILE,
  resolveBuildOtaOptions,
} from "./build_ota_options.ts";
import {
  clearStaleOutputs,
  FIRMWARE_FILE,
  MANIFEST_FILE,
  readPreviousBuildId,
  retireBuildOutputs,
  STALE_DIR,
  STALE_NOTE,
} from "./build_outputs.ts";
import { ContainerRuntimeError, FileError, UnsafeImageError } from "../errors.ts";
import { inspectImage, type InspectReport, summarizeProblems } from "../format/inspect.ts";
import { parseIromSegment, planLinkerScript } from "./linker_script.ts";
import { applyFileEdit, describeFileEdit, type FileEdit } from "./file_edit.ts";
import {
  applyFrozenModules,
  compileModules,
  type ModulePlan,
  planFrozenModules,
  readModules,
} from "./frozen_modules.ts";
import { describeBuild } from "./build_id.ts";
import { stampBuild } from "./build_stamp.ts";
import { type BuildManifest, buildManifest } from "./build_manifest.ts";
import { keepRelease } from "./releases.ts";
import {
  findMicroPythonTree,
  imageCandidates,
  makeCommands,
  type MicroPythonTree,
  staleBuildOutputs,
} from "./micropython_tree.ts";
import { formatBytes } from "../_units.ts";
import { trace } from "../trace.ts";
import { formatHex } from "../_bytes.ts";

export { DEFAULT_FLASH_SIZE, LOG_FILE, REJECTED_FILE, resolveBuildOtaOptions };
export type { BuildOtaFlags, BuildOtaOptions };
export { FIRMWARE_FILE, MANIFEST_FILE };

export interface BuildOtaResult {
  dryRun: boolean;
  /** With `dryRun`: every file change and command, in order, for the task to print. */
  plan?: string[];
  tree: MicroPythonTree;
  buildId: string;
  /** Where the build was kept (`dist/releases/<id>`). */
  releaseDir?: string;
  firmwarePath: string;
  manifestPath: string;
  manifest?: BuildManifest;
  report?: InspectReport;
}

/** One line per file change, for the log or the dry run. */
function describeLinkerEdit(edit: FileEdit, root: string, dryRun: boolean): string[] {
  const seg = parseIromSegment(edit.text);
  const where = seg ? `irom0_0_seg at ${formatHex(seg.org)}, len ${formatHex(seg.len)}` : "";
  return describeFileEdit(edit, root, dryRun, "linker script ", where);
}

function describeModules(plan: ModulePlan, root: string, dryRun: boolean): string[] {
  const lines = plan.copies.map((c) => {
    const dest = relative(root, c.dest);
    if (c.state === "unchanged") return `frozen module ${dest}: up to date`;
    const replacing = c.backup
      ? ` (keeping the tree's own as ${relative(root, c.backup)})`
      : c.state === "changed"
      ? " (replacing the older copy)"
      : "";
    return `${dryRun ? "would copy" : "copied"} ${c.module.source} to ${dest}${replacing}`;
  });
  for (const s of plan.stale) {
    lines.push(
      s.restoreFrom
        ? `${dryRun ? "would put back" : "put back"} the tree's own ${
          relative(root, s.path)
        } (replaced by an earlier build, no longer asked for)`
        : `${dryRun ? "would remove" : "removed"} ${
          relative(root, s.path)
        } (frozen by an earlier build, no longer asked for)`,
    );
  }
  return lines;
}

async function existing(paths: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const path of paths) {
    if (await Deno.stat(path).then(() => true, () => false)) found.push(path);
  }
  return found;
}

/**
 * Builds the OTA image (or, with `dryRun`, returns every file change and command as
 * `plan`). Progress goes to `reporter` as it happens.
 * @throws {FileError} Tree missing, a module missing or not compiling, no build output.
 * @throws {ToolMissingError} The runtime is not installed.
 * @throws {ContainerRuntimeError} Daemon down, image missing, make failed (with its tail).
 * @throws {UnsafeImageError} The build's image is not a valid OTA image for the app offset.
 * Needs read, write, run (make or the container runtime) and env permissions.
 */
export async function buildOta(
  options: BuildOtaOptions,
  reporter: BuildReporter = {},
  deps: BuildDeps = defaultBuildDeps,
): Promise<BuildOtaResult> {
  if (options.dryRun) return await runBuild(options, reporter, deps, async () => {});
  // The image deploy sends by default exists only after a build that succeeded
  // (build_outputs.ts). Every input is checked first: the previous build is moved to
  // stale/ only once make is about to run, and comes back only with a new good build.
  let retired: string | undefined;
  const retire = async () => {
    try {
      if ((await retireBuildOutputs(options.out, deps.now(), previousId)).length) {
        retired = previousId;
      }
    } catch (e) {
      throw new FileError(
        `cannot move the previous build in ${options.out} out of the way: ${(e as Error).message}`,
      );
    }
  };
  const previousId = await readPreviousBuildId(options.out);
  try {
    const result = await runBuild(options, reporter, deps, retire);
    await clearStaleOutputs(options.out);
    return result;
  } catch (e) {
    const stale = join(options.out, STALE_DIR);
    if (await Deno.stat(join(stale, FIRMWARE_FILE)).then(() => true, () => false)) {
      reporter.onWarning?.(
        `the build failed, so there is no ${join(options.out, FIRMWARE_FILE)} for ` +
          `'deno task deploy' to send by mistake: the previous build is in ${stale}/ ` +
          `(see ${STALE_NOTE} there)` +
          (retired
            ? `; it is also kept as release ${retired}: 'deno task deploy --release ${retired}' ` +
              `sends it, or copy ${
                join(options.out, "releases", retired)
              }/* back into ${options.out}/`
            : ""),
      );
    }
    throw e;
  }
}

async function runBuild(
  options: BuildOtaOptions,
  reporter: BuildReporter,
  deps: BuildDeps,
  beforeMake: () => Promise<void>,
): Promise<BuildOtaResult> {
  const say = (line: string) => reporter.onLine?.(line);
  const tree = await findMicroPythonTree(options.tree, options.board);
  const read = await readModules(options.modules);
  await compileModules(read);
  const iromLength = iromLengthOption(options);
  let toolchain: Toolchain = { cflagsExtra: [], reasons: [] };
  if (!options.dryRun) {
    for (const w of await deps.checkRuntime(options.runtime, options.image)) {
      reporter.onWarning?.(w);
    }
    toolchain = await detectToolchain(
      { runtime: options.runtime, image: options.image, root: tree.root, workdir: tree.port },
      await isFile(join(tree.port, "modespnow.c")),
      deps.probe ?? daxProbe,
    );
  }
  const stamped = await stampBuild(options, tree, read, toolchain, iromLength);
  const modules = stamped.modules;
  const buildId = stamped.id;
  say(
    `MicroPython ${tree.version ?? "(version unknown)"} at ${tree.root}: ${
      tree.generation === "make-ota"
        ? "'make ota' build"
        : `OTA board variant build (defined in ${tree.variantFile})`
    }, board ${tree.board}`,
  );
  say(`${modules.length} module(s) compile: ${modules.map((m) => m.name).join(", ")}`);
  say(
    `build id ${describeBuild({ id: buildId, version: options.version })}` +
      (stamped.state
        ? ` (git ${stamped.state.commit.slice(0, 12)}${
          stamped.state.changes ? " with uncommitted changes" : ""
        })`
        : ": the tree is not a git checkout, so only its version stands for its sources " +
          "(give --version to tell builds of changed sources apart)"),
  );
  if (!options.dryRun) {
    say(
      toolchain.compilerVersion
        ? `compiler ${COMPILER} ${toolchain.compilerVersion}${
          toolchain.cflagsExtra.length
            ? `: CFLAGS_EXTRA=${toolchain.cflagsExtra.join(" ")} (${toolchain.reasons.join("; ")})`
            : ""
        }`
        : `could not ask ${COMPILER} its version: no flags added for it, and the build id ` +
          "does not cover the compiler",
    );
  }
  const linkerEdit = await planLinkerScript(tree.linkerScript, options.appOffset, iromLength);
  const modulePlan = await planFrozenModules(modules, tree.modulesDir, options.force);
  const commands = withMakeSettings(
    makeCommands(tree, options.board !== undefined),
    [...cflagsArgument(toolchain), ...options.makeVars],
  );
  const firmwarePath = join(options.out, FIRMWARE_FILE);
  const manifestPath = join(options.out, MANIFEST_FILE);
  const logPath = join(options.out, LOG_FILE);
  const make = planMake({
    runtime: options.runtime,
    image: options.image,
    mount: tree.root,
    workdir: tree.port,
    commands,
    logPath,
  });
  const stale = await existing(staleBuildOutputs(tree));
  trace(
    "build-ota",
    () =>
      `planned: ${relative(tree.root, tree.linkerScript)} ${
        linkerEdit.changed ? "rewritten for" : "already links for"
      } app offset ${formatHex(options.appOffset)}; ${modules.length} module(s) into ${
        relative(tree.root, tree.modulesDir)
      }; ${
        stale.length
          ? `${stale.length} previous output(s) removed first, so that make relinks`
          : "no previous output to remove"
      }; then ${commands.map((c) => `'${c.join(" ")}'`).join(", ")} ${
        options.runtime === "native"
          ? "on this machine"
          : `in ${options.runtime} image ${options.image}`
      }`,
  );

  if (options.dryRun) {
    const plan = dryRunListing(
      [
        ...describeLinkerEdit(linkerEdit, tree.root, true),
        ...describeModules(modulePlan, tree.root, true),
        ...stale.map((p) => `would remove ${relative(tree.root, p)} (so that make relinks)`),
        `would ask ${COMPILER} its version where make runs, add the flags it needs to the ` +
        "last make command (CFLAGS_EXTRA), and empty the port's build folder if the toolchain " +
        "changed",
      ],
      make,
      `would collect ${relative(tree.root, imageCandidates(tree)[0]!)} into ${firmwarePath}, ` +
        `write ${manifestPath} and the log ${logPath}, and check the image for app offset ${
          formatHex(options.appOffset)
        }`,
    );
    const withId = [
      ...plan.slice(0, -1),
      `build id ${describeBuild({ id: buildId, version: options.version })}`,
      ...plan.slice(-1),
    ];
    return { dryRun: true, plan: withId, tree, buildId, firmwarePath, manifestPath };
  }

  await Deno.mkdir(options.out, { recursive: true });
  await applyFileEdit(linkerEdit);
  for (const l of describeLinkerEdit(linkerEdit, tree.root, false)) say(l);
  await applyFrozenModules(modulePlan);
  for (const l of describeModules(modulePlan, tree.root, false)) say(l);
  for (const p of stale) await removeIfExists(p);
  if (stale.length) {
    say(`removed the previous build's ${stale.map((p) => relative(tree.port, p)).join(", ")}`);
  }

  const buildDir = dirname(imageCandidates(tree)[0]!);
  const toolchainStamp = JSON.stringify({
    ...toolchain,
    reasons: undefined,
    makeVars: options.makeVars,
  });
  const why = await cleanReason(buildDir, toolchainStamp, options.clean);
  if (why) {
    await Deno.remove(buildDir, { recursive: true });
    say(`removed ${relative(tree.port, buildDir)}/ so that everything is compiled again: ${why}`);
  }
  await writeToolchainStamp(buildDir, toolchainStamp);
  await beforeMake();
  const started = deps.now().getTime();
  try {
    await runMake(make, deps, reporter);
  } catch (e) {
    if (!(e instanceof ContainerRuntimeError)) throw e;
    throw explainMakeFailure(e, await overflowContext(tree, modules, options, iromLength));
  }
  const output = (await existing(imageCandidates(tree)))[0];
  if (!output) {
    throw new FileError(
      `make finished but wrote none of ${
        imageCandidates(tree).map((p) => relative(tree.root, p)).join(", ")
      }; see ${logPath}`,
    );
  }
  const image = await Deno.readFile(output);
  const report = inspectImage(image, {
    appOffset: options.appOffset,
    flashSize: options.flashSize,
  });
  const builtAt = deps.now().toISOString();
  const manifest = buildManifest({
    options,
    tree,
    buildId,
    ...(stamped.state ? { state: stamped.state } : {}),
    modules,
    image,
    report,
    commands: make.lines.map((l) => l.argv),
    builtAt,
    toolchain,
    ...(iromLength === undefined ? {} : { iromLength }),
  });
  if (!report.safe) {
    reporter.onInspection?.(report, relative(tree.root, output));
    const rejected = join(options.out, REJECTED_FILE);
    await Deno.writeFile(rejected, image);
    throw new UnsafeImageError(
      `the build wrote an image that is not safe to push to app offset ${
        formatHex(options.appOffset)
      }: ${summarizeProblems(report)}. It is kept as ${rejected} for a look ` +
        `('deno task inspect ${rejected}'), not as ${firmwarePath}, so that it cannot be ` +
        `deployed by accident.`,
    );
  }
  const manifestText = JSON.stringify(manifest, null, 2) + "\n";
  await writeFileAtomically(firmwarePath, image);
  await Deno.writeTextFile(manifestPath, manifestText);
  await removeIfExists(join(options.out, REJECTED_FILE));
  const kept = await keepRelease(
    options.out,
    manifest.build,
    image,
    manifestText,
    manifest.image.sha256,
  );
  if (kept.earlier === "another image") {
    reporter.onWarning?.(
      `build ${buildId} was built before with another image: something the build id does not ` +
        "cover changed (the tree's sources, when it is not a git checkout). Boards running the " +
        `earlier one report the same id and count as up to date; give --version to tell them apart`,
    );
  }
  say(`kept as release ${relative(Deno.cwd(), kept.release.dir) || kept.release.dir}`);
  say(
    `collected ${relative(tree.root, output)} (${formatBytes(image.length)}) in ${
      ((deps.now().getTime() - started) / 1000).toFixed(1)
    } s`,
  );
  return {
    dryRun: false,
    tree,
    buildId,
    releaseDir: kept.release.dir,
    firmwarePath,
    manifestPath,
    manifest,
    report,
  };
}
