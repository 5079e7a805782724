/**
 * The build id of a build-ota run and the ota.py stamped with it (build_id.ts,
 * ota_module.ts): the tree's state, less the files build-ota itself writes into it.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { assetName } from "../_fs.ts";
import type { Runtime } from "./container.ts";
import { FileError } from "../errors.ts";
import { computeBuildId } from "./build_id.ts";
import { readTreeState, type TreeState } from "./tree_state.ts";
import { renderOtaModule } from "../format/ota_module.ts";
import {
  type FrozenModule,
  OTA_MODULE_TEMPLATE,
  readFrozenRecord,
  recordPaths,
} from "./frozen_modules.ts";
import type { MicroPythonTree } from "./micropython_tree.ts";
import type { Toolchain } from "./toolchain.ts";
import { formatHex } from "../_bytes.ts";

/** The build options the id covers (a `BuildOtaOptions` will do). */
export interface StampOptions {
  appOffset: number;
  runtime: Runtime;
  image: string;
  version?: string;
  makeVars?: string[];
}

export interface BuildStampResult {
  id: string;
  state?: TreeState;
  modules: FrozenModule[];
}

/** Hex SHA-256 of `bytes`. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The files build-ota writes into the tree: not part of the tree's state (tree_state.ts). */
async function managedFiles(tree: MicroPythonTree, modules: FrozenModule[]): Promise<string[]> {
  const names = new Set([
    ...modules.map((m) => m.name),
    ...await readFrozenRecord(tree.modulesDir),
  ]);
  return [
    tree.linkerScript,
    `${tree.linkerScript}.orig`,
    recordPaths(tree.modulesDir).record,
    recordPaths(tree.modulesDir).legacy,
    ...[...names].flatMap((n) => [join(tree.modulesDir, n), join(tree.modulesDir, `${n}.orig`)]),
  ];
}

/**
 * The build id of these inputs, and the modules with ota.py stamped with it (build_id.ts,
 * ota_module.ts).
 * @throws {FileError} The ota.py template cannot be stamped.
 */
export async function stampBuild(
  options: StampOptions,
  tree: MicroPythonTree,
  read: FrozenModule[],
  toolchain?: Toolchain,
  iromLength?: number,
): Promise<BuildStampResult> {
  const state = await readTreeState(tree.root, await managedFiles(tree, read));
  const id = computeBuildId({
    modules: read.map((m) => ({ name: m.name, sha256: m.sha256 })),
    tree: {
      version: tree.version,
      generation: tree.generation,
      board: tree.board,
      ...(state ? { state } : {}),
    },
    appOffset: formatHex(options.appOffset),
    toolchain: {
      runtime: options.runtime,
      image: options.runtime === "native" ? null : options.image,
      ...(toolchain?.compilerVersion === undefined ? {} : {
        compiler: toolchain.compilerVersion,
        cflagsExtra: toolchain.cflagsExtra,
      }),
      ...(toolchain?.imageDigest === undefined ? {} : { imageDigest: toolchain.imageDigest }),
    },
    ...(options.makeVars?.length || iromLength !== undefined
      ? {
        layout: {
          makeVars: options.makeVars ?? [],
          ...(iromLength === undefined ? {} : { iromLength: formatHex(iromLength) }),
        },
      }
      : {}),
    ...(options.version === undefined ? {} : { version: options.version }),
  });
  const modules = read.map((m) => {
    if (m.name !== "ota.py" || m.source !== assetName(OTA_MODULE_TEMPLATE)) return m;
    let text: string;
    try {
      text = renderOtaModule(new TextDecoder().decode(m.bytes), {
        build: id,
        ...(options.version === undefined ? {} : { version: options.version }),
      });
    } catch (e) {
      throw new FileError(`${m.source}: ${(e as Error).message}`);
    }
    const bytes = new TextEncoder().encode(text);
    return { ...m, bytes, sha256: sha256(bytes) };
  });
  return { id, ...(state ? { state } : {}), modules };
}
