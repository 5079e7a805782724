/** Small file-system helpers (no @std/fs here). */
import { dirname } from "node:path";
import { FileError } from "./errors.ts";

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

/**
 * Writes `bytes` to a new file beside `path`, then renames it over `path`: a reader (or a
 * deploy) never sees a half-written file, and a failed write leaves none behind.
 * @throws {FileError} "cannot write 'PATH': …" if writing or renaming fails.
 */
export async function writeFileAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeFile(temp, bytes);
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw new FileError(`cannot write '${path}': ${(e as Error).message}`);
  }
}

/**
 * The text of a file that ships beside the code (`new URL("../templates/…", import.meta.url)`):
 * read from disk in a checkout or a compiled binary, fetched when `yaota` was installed
 * from a URL (its modules, and so these files, are remote).
 * @throws {Error} When the file cannot be read or fetched.
 */
export async function readAssetText(url: URL): Promise<string> {
  if (url.protocol === "file:") return await Deno.readTextFile(url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  return await response.text();
}
