/** Small file-system helpers (no @std/fs here). */
import { dirname } from "node:path";
import { FileError } from "./errors.ts";
import { fromFileUrl } from "./_paths.ts";

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

/** The file at `path` was longer than the caller takes (`readFileUpTo`). */
export class TooLargeError extends Error {
  override name = "TooLargeError";
}

/**
 * The bytes of `path`, read up to `max`: a file that turns out longer (or a device such as
 * /dev/zero, or a pipe that does not end) stops the read at `max + 1` bytes.
 * @throws {TooLargeError} If there are more than `max` bytes.
 * @throws {Deno.errors.NotFound | Deno.errors.PermissionDenied} As `Deno.open` does.
 */
export async function readFileUpTo(path: string, max: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  if ((await file.stat()).isDirectory) throw new Deno.errors.IsADirectory(`'${path}' is a folder`);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(65536);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    total += n;
    if (total > max) throw new TooLargeError(`'${path}' holds more than ${max} bytes`);
    chunks.push(buffer.slice(0, n));
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * The bytes of a file that ships beside the code (`new URL("../templates/…", import.meta.url)`):
 * read from disk in a checkout or a compiled binary, fetched when `yaota` was installed
 * from a URL (its modules, and so these files, are remote).
 * @throws {Error} When the file cannot be read or fetched.
 */
export async function readAssetBytes(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (url.protocol === "file:") return await Deno.readFile(url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The text of a file that ships beside the code, as `readAssetBytes` gets it. */
export async function readAssetText(url: URL): Promise<string> {
  return new TextDecoder().decode(await readAssetBytes(url));
}

/** How messages name a file that ships beside the code: its path on disk, else its URL. */
export function assetName(url: URL): string {
  return url.protocol === "file:" ? fromFileUrl(url) : url.href;
}
