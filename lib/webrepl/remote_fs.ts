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
  return `def _yaota_op(a, b=None):\n${body.replace(/^/gm, "    ")}\n` +
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

/** `snippet` with `os` imported and `errline` defined. */
function osSnippet(body: string, ...args: string[]): string {
  return snippet(`import os\n${ERRNO_LINE}\n${body}`, ...args);
}

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
  if (kind === "file" && /^\d{1,15}$/.test(size ?? "")) return { kind: "file", size: Number(size) };
  if (kind === "missing") return { kind: "missing" };
  throw notMicroPython(runner.address, `os.stat('${path}')`, lines.at(-1));
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
  if (status !== "ok") throw notMicroPython(runner.address, `listing '${dir}'`, status);
  return rows.map((row) => {
    let entry: unknown;
    try {
      entry = JSON.parse(row);
    } catch { /* checked below */ }
    if (!isEntry(entry)) throw notMicroPython(runner.address, `listing '${dir}'`, row);
    const [type, size, name] = entry;
    return { name, type, size };
  });
}

/** A row of the listing snippet: ["file" | "dir", size, name]. */
function isEntry(value: unknown): value is ["file" | "dir", number, string] {
  return Array.isArray(value) && value.length === 3 &&
    (value[0] === "file" || value[0] === "dir") && Number.isSafeInteger(value[1]) &&
    value[1] >= 0 && typeof value[2] === "string";
}

/** A snippet's answer that MicroPython would not give. */
function notMicroPython(address: string, what: string, line: string | undefined): WebReplError {
  return new WebReplError(
    `${address} answered ${what} with ${JSON.stringify((line ?? "").slice(0, 80))}, not as ` +
      "MicroPython does: is this MicroPython's WebREPL?",
  );
}

/**
 * Removes a file, or an empty folder, on the board. Returns which it was.
 * @throws {RemoteFileError} If it does not exist or cannot be removed (the board's OSError named).
 */
export async function removeRemote(runner: CodeRunner, path: string): Promise<"file" | "dir"> {
  const lines = await run(
    runner,
    osSnippet(
      `try:
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

/**
 * Renames `from` to `to` on the board, replacing `to`. FAT's rename refuses an existing
 * target (docs/device.md, "File transfer"), so there the old file is removed first; both steps run on the board in one
 * command, so a dropped connection cannot stop between them.
 * @throws {RemoteFileError} If the rename fails (the board's OSError named).
 */
export async function renameRemote(runner: CodeRunner, from: string, to: string): Promise<void> {
  const lines = await run(
    runner,
    osSnippet(
      `try:
    os.rename(a, b)
except OSError:
    try:
        os.remove(b)
        os.rename(a, b)
    except OSError as e:
        errline("failed", e)
        return
print("renamed")`,
      from,
      to,
    ),
    `renaming '${from}' to '${to}'`,
  );
  const [word, number, name] = (lines.at(-1) ?? "").split(" ");
  if (word !== "renamed") {
    throw new RemoteFileError(
      `cannot rename '${from}' to '${to}' on ${runner.address}: ${describeErrno(number, name)}`,
    );
  }
}

/**
 * Removes a file on the board if it is there, saying nothing either way (a clean-up).
 */
export async function removeQuietly(runner: CodeRunner, path: string): Promise<void> {
  await runner.exec(
    snippet("import os\ntry:\n    os.remove(a)\nexcept OSError:\n    pass", path),
  ).catch(() => {});
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
