/**
 * The board's file system seen through its REPL: small MicroPython snippets run with
 * `exec` (`os.stat`, `os.listdir`, `os.remove`, `os.rmdir`), each wrapped in a function
 * that deletes itself, so no name is left in the board's `__main__`. Each prints plain
 * lines that the functions here read. Paths are the board's (`/` separated); a relative
 * one is taken from the board's current folder, `/` after boot.
 *
 * Errors the board reports are named in one table (`OSERROR_NAMES`); MicroPython's
 * `errno.errorcode` gives the name when the firmware has it.
 */
import { OtaError, WebReplError } from "../errors.ts";
import type { ExecResult } from "./client.ts";

/** Something about the board's files stops the operation (missing, a folder, not empty). */
export class RemoteFileError extends OtaError {}

/** What runs code on the board (a `WebReplClient`). */
export interface CodeRunner {
  readonly address: string;
  exec(code: string): Promise<ExecResult>;
}

export type RemoteStat =
  | { kind: "missing" }
  | { kind: "file"; size: number }
  | { kind: "dir" };

export interface RemoteEntry {
  name: string;
  type: "file" | "dir";
  /** Bytes (0 for a folder). */
  size: number;
}

/** What an OSError's name means, for messages. */
export const OSERROR_NAMES: Record<string, string> = {
  ENOENT: "no such file or folder",
  EISDIR: "it is a folder",
  ENOTDIR: "a part of the path is not a folder",
  ENOTEMPTY: "the folder is not empty",
  EACCES: "permission denied (a folder that is not empty, on FAT)",
  EEXIST: "it already exists",
  ENOSPC: "the file system is full",
  EROFS: "the file system is read-only",
  EIO: "the flash could not be read or written",
};

/** A Python string literal for `text` (JSON's escapes are all valid in Python). */
function py(text: string): string {
  return JSON.stringify(text);
}

/** `def _yaota_op(...)`, the call, and its removal: nothing stays defined. */
function snippet(body: string, ...args: string[]): string {
  return `def _yaota_op(a):\n${body.replace(/^/gm, "    ")}\n` +
    `try:\n    _yaota_op(${args.map(py).join(", ")})\nfinally:\n    del _yaota_op\n`;
}

/** Prints `e`'s errno and its name (if the firmware knows it) on one line. */
const ERRNO_LINE = `def errline(word, e):
    n = e.args[0] if e.args else 0
    try:
        import errno
        name = errno.errorcode.get(n, "")
    except (ImportError, AttributeError):
        name = ""
    print(word, n, name)`;

async function run(runner: CodeRunner, code: string, what: string): Promise<string[]> {
  const r = await runner.exec(code);
  if (r.error) {
    const last = r.error.trimEnd().split("\n").at(-1) ?? r.error;
    throw new WebReplError(`${runner.address}: ${what} failed on the board: ${last}`);
  }
  return r.output.split("\n").filter((l) => l !== "");
}

/** The board's errno line ("failed 39 ENOTEMPTY") as words for a message. */
function describeErrno(number: string | undefined, name: string | undefined): string {
  const meaning = name ? OSERROR_NAMES[name] : undefined;
  return `OSError ${number ?? "?"}${name ? ` ${name}` : ""}${meaning ? `: ${meaning}` : ""}`;
}

/**
 * Whether `path` is a file (and its size), a folder, or missing on the board.
 * @throws {WebReplError} If the snippet cannot run.
 */
export async function statRemote(runner: CodeRunner, path: string): Promise<RemoteStat> {
  const lines = await run(
    runner,
    snippet(
      `import os
try:
    s = os.stat(a)
except OSError:
    print("missing")
    return
print("dir" if s[0] & 0x4000 else "file", s[6])`,
      path,
    ),
    `os.stat('${path}')`,
  );
  const [kind, size] = (lines.at(-1) ?? "").split(" ");
  if (kind === "dir") return { kind: "dir" };
  if (kind === "file") return { kind: "file", size: Number(size) };
  return { kind: "missing" };
}

/**
 * The entries of the folder `dir` on the board, sorted by name.
 * @throws {RemoteFileError} If there is no such folder, or it is a file.
 */
export async function listRemote(runner: CodeRunner, dir: string): Promise<RemoteEntry[]> {
  const lines = await run(
    runner,
    snippet(
      `import os
try:
    import json
except ImportError:
    import ujson as json
try:
    if not os.stat(a)[0] & 0x4000:
        print("notdir")
        return
    names = sorted(os.listdir(a))
except OSError:
    print("missing")
    return
print("ok")
for n in names:
    p = a.rstrip("/") + "/" + n
    try:
        s = os.stat(p)
        print(json.dumps(["dir" if s[0] & 0x4000 else "file", 0 if s[0] & 0x4000 else s[6], n]))
    except OSError:
        print(json.dumps(["file", 0, n]))`,
      dir,
    ),
    `listing '${dir}'`,
  );
  const [status, ...rows] = lines;
  if (status === "missing") {
    throw new RemoteFileError(`no folder '${dir}' on ${runner.address}`);
  }
  if (status === "notdir") {
    throw new RemoteFileError(`'${dir}' on ${runner.address} is a file, not a folder`);
  }
  return rows.map((row) => {
    const entry = listingRow(row);
    if (!entry) {
      throw new WebReplError(
        `${runner.address}: listing '${dir}' answered a line that is not an entry ` +
          `(${JSON.stringify(row.slice(0, 80))}): is it running MicroPython's WebREPL?`,
      );
    }
    return entry;
  });
}

/** One `[type, size, name]` line of the listing snippet; undefined if it is not one. */
function listingRow(row: string): RemoteEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(row);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 3) return undefined;
  const [type, size, name] = value;
  if (type !== "file" && type !== "dir") return undefined;
  if (!Number.isSafeInteger(size) || size < 0 || typeof name !== "string") return undefined;
  return { name, type, size };
}

/**
 * Removes a file, or an empty folder, on the board. Returns which it was.
 * @throws {RemoteFileError} If it does not exist or cannot be removed (the board's OSError named).
 */
export async function removeRemote(runner: CodeRunner, path: string): Promise<"file" | "dir"> {
  const lines = await run(
    runner,
    snippet(
      `import os
${ERRNO_LINE}
try:
    folder = os.stat(a)[0] & 0x4000
except OSError:
    print("missing")
    return
try:
    if folder:
        os.rmdir(a)
    else:
        os.remove(a)
except OSError as e:
    errline("failed dir" if folder else "failed file", e)
    return
print("removed", "dir" if folder else "file")`,
      path,
    ),
    `removing '${path}'`,
  );
  const [word, kind, number, name] = (lines.at(-1) ?? "").split(" ");
  if (word === "missing") {
    throw new RemoteFileError(`no file or folder '${path}' on ${runner.address}`);
  }
  if (word === "failed") {
    throw new RemoteFileError(
      `cannot remove the ${kind === "dir" ? "folder" : "file"} '${path}' on ${runner.address}: ` +
        describeErrno(number, name) +
        (kind === "dir" ? " (rm removes files and empty folders: empty it first)" : ""),
    );
  }
  return kind === "dir" ? "dir" : "file";
}

/** The folder part of a board path: "lib/a.py" → "lib", "/a.py" → "/", "a.py" → "". */
export function remoteDirname(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return "";
  return slash === 0 ? "/" : path.slice(0, slash);
}

/** The last part of a path, local or remote ("a/b.py" → "b.py"). */
export function baseName(path: string): string {
  return path.replace(/[\\/]+$/, "").split(/[\\/]/).at(-1) ?? path;
}

/** `dir` and `name` joined with one `/`. */
export function remoteJoin(dir: string, name: string): string {
  return dir === "" ? name : dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}
