/**
 * The manifest build-ota writes next to the image (`manifest.json`): what was built,
 * from what, with which build id, and what the image check found.
 */
import type { Runtime } from "./container.ts";
import type { BuildStamp } from "./build_id.ts";
import type { TreeState } from "./tree_state.ts";
import type { FrozenModule } from "./frozen_modules.ts";
import type { MicroPythonTree } from "./micropython_tree.ts";
import { FIRMWARE_FILE } from "./build_outputs.ts";
import { otaIromBase } from "../format/image.ts";
import type { InspectReport } from "../format/inspect.ts";
import { formatHex } from "../_bytes.ts";
import { sha256 } from "./build_stamp.ts";
import type { Toolchain } from "./toolchain.ts";
import { filesystemStart, flashUserStart } from "./linker_script.ts";

export interface BuildManifest {
  firmware: string;
  builtAt: string;
  /** What a board running this image reports as `ota.BUILD` / `ota.VERSION` (build_id.ts). */
  build: BuildStamp & {
    /** True only when the id covers everything that went in (see `notCovered`). */
    reproducible: boolean;
    /** What went into the image that the id does not cover. */
    notCovered: string[];
    tree: { commit: string | null; changed: boolean };
  };
  micropython: {
    version?: string;
    tree: string;
    generation: MicroPythonTree["generation"];
    board: string;
  };
  image: {
    size: number;
    sha256: string;
    md5: { ok: boolean; trailer?: string };
    /** The irom link address estimated from the image's pointers. */
    iromLinkBase?: string;
    expectedIromBase: string;
    appOffset: string;
    flashSize: number;
    /** The version string found in the image. */
    version?: string;
    safe: boolean;
    /** What `esp.flash_user_start()` returns on a board running this image (the irom's end). */
    flashUserStart: string;
    /** Where the board's filesystem starts with it (docs/device.md, "The board's filesystem"). */
    filesystemStart: string;
  };
  toolchain: {
    compiler: string | null;
    cflagsExtra: string[];
    imageDigest: string | null;
    makeVars: string[];
  };
  modules: { name: string; source: string; sha256: string }[];
  runtime: Runtime;
  /** The container image; null for `native`. */
  containerImage: string | null;
  commands: string[][];
}

/** What the manifest is made from. */
export interface ManifestInputs {
  options: {
    appOffset: number;
    flashSize: number;
    runtime: Runtime;
    image: string;
    version?: string;
    makeVars?: string[];
  };
  tree: MicroPythonTree;
  toolchain?: Toolchain;
  iromLength?: number;
  buildId: string;
  state?: TreeState;
  modules: FrozenModule[];
  image: Uint8Array;
  report: InspectReport;
  commands: string[][];
  builtAt: string;
}

/** The manifest of one build. Pure. */
export function buildManifest(inputs: ManifestInputs): BuildManifest {
  const { options, tree, buildId, state, modules, image, report, builtAt } = inputs;
  const md5 = report.checks.find((c) => c.name === "md5");
  const toolchain = inputs.toolchain ?? { cflagsExtra: [], reasons: [] };
  const notCovered = [
    ...(state ? [] : ["the tree's sources (not a git checkout)"]),
    ...(toolchain.compilerVersion ? [] : ["the compiler (its version could not be read)"]),
    ...(options.runtime === "native"
      ? ["the SDK and libraries on this machine (--runtime native)"]
      : toolchain.imageDigest
      ? []
      : ["the container image (its digest could not be read)"]),
  ];
  const userStart = flashUserStart(options.appOffset, inputs.iromLength);
  return {
    firmware: FIRMWARE_FILE,
    builtAt,
    build: {
      id: buildId,
      builtAt,
      ...(options.version === undefined ? {} : { version: options.version }),
      reproducible: notCovered.length === 0,
      notCovered,
      tree: {
        commit: state?.commit ?? null,
        changed: state?.changes !== undefined,
      },
    },
    micropython: {
      version: tree.version,
      tree: tree.root,
      generation: tree.generation,
      board: tree.board,
    },
    image: {
      size: image.length,
      sha256: sha256(image),
      md5: { ok: md5?.ok ?? false, trailer: report.md5 },
      iromLinkBase: report.link?.bestBaseHex,
      expectedIromBase: formatHex(otaIromBase(options.appOffset)),
      appOffset: formatHex(options.appOffset),
      flashSize: options.flashSize,
      version: report.version,
      safe: report.safe,
      flashUserStart: formatHex(userStart),
      filesystemStart: formatHex(filesystemStart(userStart)),
    },
    toolchain: {
      compiler: toolchain.compilerVersion ?? null,
      cflagsExtra: toolchain.cflagsExtra,
      imageDigest: toolchain.imageDigest ?? null,
      makeVars: options.makeVars ?? [],
    },
    modules: modules.map((m) => ({ name: m.name, source: m.source, sha256: m.sha256 })),
    runtime: options.runtime,
    containerImage: options.runtime === "native" ? null : options.image,
    commands: inputs.commands,
  };
}
