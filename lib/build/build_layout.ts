/**
 * The parts of an OTA build's layout a user chooses: `--make-var` settings and the flags
 * the compiler needs on make's command line, the larger irom of `--move-filesystem-to`,
 * and what a refusal of an image too large for the irom names as remedies
 * (make_failures.ts; docs/device.md, "The board's filesystem").
 */
import { join } from "node:path";
import { isDir } from "../_fs.ts";
import { UsageError } from "../errors.ts";
import type { FrozenModule } from "./frozen_modules.ts";
import { inBoardOtaVariant, type MicroPythonTree } from "./micropython_tree.ts";
import type { OverflowContext } from "./make_failures.ts";
import { filesystemStart, flashUserStart, iromLengthForFilesystem } from "./linker_script.ts";

/** `NAME=VALUE` for make. Pure. @throws {UsageError} For anything else. */
export function parseMakeVar(text: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=[^\s'"$`\\]*$/.test(text)) {
    throw new UsageError(
      `--make-var expects NAME=VALUE (e.g. MICROPY_PY_ESPNOW=0), got '${text}'`,
    );
  }
  return text;
}

/** Adds `extra` (NAME=VALUE arguments) to the last command, the firmware's make. Pure. */
export function withMakeSettings(commands: string[][], extra: string[]): string[][] {
  if (!extra.length) return commands;
  const last = commands.at(-1)!;
  return [...commands.slice(0, -1), [last[0]!, ...extra, ...last.slice(1)]];
}

/**
 * The irom length `--move-filesystem-to` asks for; undefined without it.
 * @throws {UsageError} If the address is not past the usual filesystem start on a sector.
 */
export function iromLengthOption(
  options: { appOffset: number; filesystemStart?: number },
): number | undefined {
  if (options.filesystemStart === undefined) return undefined;
  try {
    return iromLengthForFilesystem(options.appOffset, options.filesystemStart);
  } catch (e) {
    throw new UsageError(`--move-filesystem-to: ${(e as Error).message}`);
  }
}

/** The `MICROPY_… ?= 1` features of the OTA variant, which a make variable may turn off. Pure. */
export function variantFeatures(variantText: string): string[] {
  return [...variantText.matchAll(/^(MICROPY_[A-Z0-9_]+)\s*\?=\s*1\s*$/gm)].map((m) => m[1]!);
}

/** What the remedies for an image too large are worked out from. */
export async function overflowContext(
  tree: MicroPythonTree,
  modules: FrozenModule[],
  options: { appOffset: number; flashSize: number; makeVars: string[] },
  iromLength: number | undefined,
): Promise<OverflowContext> {
  const boards: string[] = [];
  const dir = join(tree.port, "boards");
  if (await isDir(dir)) {
    for await (const e of Deno.readDir(dir)) if (e.isDirectory) boards.push(e.name);
  }
  const text = tree.variantFile
    ? await Deno.readTextFile(join(tree.port, tree.variantFile)).catch(() => "")
    : "";
  const variant = tree.variantFile?.endsWith("mpconfigboard.mk")
    ? inBoardOtaVariant(text) ?? ""
    : text;
  const set = new Set(options.makeVars.map((v) => v.split("=")[0]));
  return {
    modules: modules.map((m) => ({ name: m.name, size: m.bytes.length })),
    boards: boards.sort(),
    board: tree.board,
    features: variantFeatures(variant).filter((f) => !set.has(f)),
    filesystemStart: filesystemStart(flashUserStart(options.appOffset, iromLength)),
    flashSize: options.flashSize,
  };
}
