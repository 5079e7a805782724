/**
 * The local side of `put` and `get`: what may be read (a regular file, or stdin, of a
 * size a board can hold) and where a copy may land (never over a file of the user's
 * unless asked: `get --force`). Deno receives a command-line byte that is not UTF-8 as
 * U+FFFD, so such a name cannot be opened; the messages say how to get around it.
 */
import { FileError } from "../errors.ts";
import { MAX_FILE_BYTES } from "./file_transfer.ts";

/** What a name with U+FFFD most likely means, for a message. */
function notUtf8Hint(path: string): string {
  return path.includes("\ufffd")
    ? ": its name holds a byte that is not UTF-8, which reaches this program as U+FFFD " +
      "(rename the file, or give it on stdin: put - REMOTE < FILE)"
    : "";
}

/**
 * Reads what `put` sends: a regular file, or `stdin` for `-`, at most `limit` bytes.
 * @throws {FileError} Not a regular file (a device such as /dev/zero, a FIFO, a folder),
 *   more than `limit` bytes, or unreadable.
 */
export async function readForPut(
  path: string,
  options: { limit?: number; stdin?: () => ReadableStream<Uint8Array> } = {},
): Promise<Uint8Array> {
  const limit = options.limit ?? MAX_FILE_BYTES;
  const tooBig = (what: string) =>
    new FileError(
      `${what} is over ${limit} bytes: more than an ESP8266's file system holds, so put does ` +
        "not send it",
    );
  if (path === "-") {
    if (!options.stdin) throw new FileError("put -: no standard input to read here");
    const parts: Uint8Array[] = [];
    let length = 0;
    for await (const chunk of options.stdin()) {
      length += chunk.length;
      if (length > limit) throw tooBig("stdin");
      parts.push(chunk);
    }
    const out = new Uint8Array(length);
    let at = 0;
    for (const p of parts) (out.set(p, at), at += p.length);
    return out;
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    throw new FileError(`cannot read '${path}': ${(e as Error).message}${notUtf8Hint(path)}`);
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile) {
      throw new FileError(
        `'${path}' is not a regular file (${
          stat.isDirectory ? "a folder" : "a device, pipe or socket"
        }): put copies regular files (or stdin, as -, up to ${limit} bytes)`,
      );
    }
    if (stat.size > limit) throw tooBig(`'${path}' (${stat.size} bytes)`);
    // Read at most limit + 1 bytes: a file that grows meanwhile is still bounded.
    const out = new Uint8Array(limit + 1);
    let at = 0;
    while (at < out.length) {
      const n = await file.read(out.subarray(at));
      if (n === null) break;
      at += n;
    }
    if (at > limit) throw tooBig(`'${path}'`);
    return out.slice(0, at);
  } finally {
    file.close();
  }
}

/**
 * Refuses to write a get's copy over something that exists, unless `force` (and never
 * over a folder). `get` checks this before it connects, so nothing is fetched for naught.
 * @throws {FileError} Naming --force and the other ways.
 */
export async function checkGetDestination(path: string, force: boolean): Promise<void> {
  const stat = await Deno.lstat(path).catch(() => undefined);
  if (!stat) return;
  if (stat.isDirectory) throw new FileError(`'${path}' is a folder`);
  if (force && stat.isFile) return;
  throw new FileError(
    stat.isFile
      ? `'${path}' exists and get does not replace a file unless asked: add --force to ` +
        "replace it (the copy is written in full first, then renamed over it), or name " +
        "another FILE, or - for stdout"
      : `'${path}' exists and is not a regular file (a link, device or pipe): name another ` +
        "FILE, or - for stdout",
  );
}
