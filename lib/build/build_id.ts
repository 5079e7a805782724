/**
 * The build id: a short hash of what goes into an OTA image, so that a board can say
 * which build it runs (`ota.BUILD`, see `ota_module.ts`) and `deploy` can skip a board
 * that already runs it. The same inputs give the same id, whenever and wherever they are
 * built: the frozen modules (the user's and the `ota.py` template), the MicroPython tree
 * (its git commit and any change to it, see `tree_state.ts`; its version, board and kind
 * of build), the app offset the image is linked for, the toolchain and the `--version`
 * label. The build time is not part of it: it is written beside it in the manifest, and
 * orders two builds ("older", "newer"). Pure.
 */
import { createHash } from "node:crypto";
import type { TreeState } from "./tree_state.ts";

/** Hex digits of the id: 48 bits, as short as a git abbreviation and as safe for a fleet. */
export const BUILD_ID_LENGTH = 12;

export interface BuildInputs {
  /** Every frozen module, in order: name and SHA-256 (ota.py's before it is stamped). */
  modules: { name: string; sha256: string }[];
  tree: {
    version?: string;
    generation: string;
    board: string;
    /** From git, when the tree is a git checkout. */
    state?: TreeState;
  };
  /** e.g. "0x3c000": the irom link address follows from it. */
  appOffset: string;
  toolchain: {
    runtime: string;
    image: string | null;
    /** The cross compiler's version, its extra flags, the image's digest (toolchain.ts). */
    compiler?: string;
    cflagsExtra?: string[];
    imageDigest?: string;
  };
  /** `--make-var` settings and the irom length, when they differ from the defaults. */
  layout?: { makeVars: string[]; iromLength?: string };
  /** The `--version` label. */
  version?: string;
}

/** What the manifest (and so each kept release) says about a build. */
export interface BuildStamp {
  id: string;
  /** ISO 8601; orders builds. */
  builtAt: string;
  /** The `--version` label. */
  version?: string;
  /**
   * The image's `esp.flash_user_start()` (manifest `image.flashUserStart`): deploy refuses
   * to move a board's filesystem (lib/deploy/filesystem_move.ts).
   */
  flashUserStart?: number;
}

/** The id of a build with these inputs: the first 12 hex digits of a SHA-256. Pure. */
export function computeBuildId(inputs: BuildInputs): string {
  // A fixed key order, so the same inputs always hash the same.
  const canonical = JSON.stringify([
    "yaota8266-ota-build/1",
    inputs.modules.map((m) => [m.name, m.sha256]),
    [
      inputs.tree.version ?? null,
      inputs.tree.generation,
      inputs.tree.board,
      inputs.tree.state?.commit ?? null,
      inputs.tree.state?.changes ?? null,
    ],
    inputs.appOffset,
    [inputs.toolchain.runtime, inputs.toolchain.image],
    inputs.version ?? null,
    // Appended only when known, so that ids of builds made before these were covered stay.
    ...(inputs.toolchain.compiler === undefined && inputs.toolchain.imageDigest === undefined
      ? []
      : [[
        inputs.toolchain.compiler ?? null,
        inputs.toolchain.cflagsExtra ?? [],
        inputs.toolchain.imageDigest ?? null,
      ]]),
    ...(inputs.layout === undefined
      ? []
      : [[inputs.layout.makeVars, inputs.layout.iromLength ?? null]]),
  ]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, BUILD_ID_LENGTH);
}

/** "3f2a9c1e0b7d (1.2.0)" or the bare id. Pure. */
export function describeBuild(build: { id: string; version?: string }): string {
  return build.version ? `${build.id} (${build.version})` : build.id;
}
