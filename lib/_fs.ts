/** Small file-system questions the build modules ask (no @std/fs here). */
import { dirname } from "node:path";

export async function isDir(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isDirectory, () => false);
}

export async function isFile(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isFile, () => false);
}

export function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

export async function removeIfExists(path: string): Promise<void> {
  await Deno.remove(path).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/**
 * Why `path` cannot be (or become) a folder: the first part of it that exists is a
 * file. Undefined when it is a folder or can be made one.
 */
export async function folderProblem(path: string): Promise<string | undefined> {
  for (let at = path;; at = dirname(at)) {
    const stat = await Deno.stat(at).catch(() => undefined);
    if (stat) {
      if (stat.isDirectory) return undefined;
      return at === path
        ? `'${at}' is a file, not a folder`
        : `'${at}' in it is a file, not a folder`;
    }
    if (dirname(at) === at) return undefined;
  }
}
