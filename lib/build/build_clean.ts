/**
 * When the port's build folder must go before make runs: objects compiled by another
 * compiler or with other flags link wrongly (`undefined reference to 'errno'`), and make
 * does not know, since its rules depend on files, not on the toolchain. build-ota leaves
 * a stamp of the toolchain in the build folder; a folder without it, or with another one,
 * is removed, and so is any folder with `--clean`.
 */
import { join } from "node:path";
import { isDir } from "../_fs.ts";

/** The stamp file, inside the port's build folder (e.g. `build-GENERIC/`). */
export const TOOLCHAIN_STAMP = ".yaota-toolchain.json";

/** Why the build folder `dir` must be removed before make, or undefined if it may stay. */
export async function cleanReason(
  dir: string,
  stamp: string,
  forced: boolean,
): Promise<string | undefined> {
  if (!await isDir(dir)) return undefined;
  if (forced) return "--clean";
  const before = await Deno.readTextFile(join(dir, TOOLCHAIN_STAMP)).catch(() => undefined);
  if (before === undefined) return "built by another toolchain or by hand (no toolchain stamp)";
  return before === stamp ? undefined : "the compiler, its flags or the image changed";
}

/** Writes the stamp once make has run with this toolchain. */
export async function writeToolchainStamp(dir: string, stamp: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, TOOLCHAIN_STAMP), stamp);
}
