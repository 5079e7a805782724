/**
 * One deploy per board at a time, on this machine. Two senders to one yaota8266 device
 * each see the other's packets as unexpected offsets and restart sessions
 * (docs/device.md, "Session restarts keep stale bytes"): the second deploy is refused at
 * once, naming the first. The lock is an OS file lock (flock) on
 * `<dir>/<address>_<port>.lock`, whose text says who holds it; the kernel releases it
 * when its process dies, so a lock left by a dead process is simply taken over.
 * `<dir>` is `$OTA_LOCK_DIR`, else a folder of this user's own: `yaota8266-ota-locks` in
 * `$XDG_RUNTIME_DIR`, or `yaota8266-ota-locks-<uid>` in the temp folder, made 0700 and
 * refused unless this user owns it and nobody else may write it. A lock file is never
 * opened through a link: another local user who plants a symlink or a hard link there
 * must not make us change or overwrite a file of ours.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BoardBusyError, FileError } from "../errors.ts";

export const LOCK_DIR_ENV = "OTA_LOCK_DIR";

/** What a lock file says about its holder. */
export interface BoardLockInfo {
  pid: number;
  /** ISO time the holder took the lock. */
  startedAt: string;
  /** The address as the holder was given it (a name or an IPv4 address). */
  host: string;
  address: string;
  port: number;
}

export interface BoardLock extends AsyncDisposable {
  readonly path: string;
  release(): Promise<void>;
}

/** Where the lock files go, and whether the folder is ours alone (not named by the user). */
export function boardLockDir(
  env: (name: string) => string | undefined = Deno.env.get,
  uid: number | null = Deno.uid(),
): string {
  const named = env(LOCK_DIR_ENV);
  if (named) return named;
  const runtime = env("XDG_RUNTIME_DIR");
  if (runtime) return join(runtime, "yaota8266-ota-locks");
  return join(env("TMPDIR") || tmpdir(), `yaota8266-ota-locks${uid === null ? "" : `-${uid}`}`);
}

export function boardLockFile(dir: string, address: string, port: number): string {
  return join(dir, `${address.replace(/[^0-9A-Za-z.-]/g, "_")}_${port}.lock`);
}

/** The lock file's text, or undefined if it is not one (empty, being written, foreign). */
export function parseLockInfo(text: string): BoardLockInfo | undefined {
  try {
    const info = JSON.parse(text);
    return Number.isInteger(info?.pid) && typeof info.startedAt === "string" &&
        !Number.isNaN(Date.parse(info.startedAt))
      ? info
      : undefined;
  } catch {
    return undefined;
  }
}

/** "another deploy to ... is running": who, since when, and what to do. Pure. */
export function busyMessage(
  where: string,
  info: BoardLockInfo | undefined,
  lockPath: string,
  now = Date.now(),
  ownPid = Deno.pid,
): string {
  if (info?.pid === ownPid) {
    return `this deploy is already sending to ${where} (for another device at the same address): ` +
      `one board, one deploy at a time. Check the addresses in the config's "devices".`;
  }
  const since = info ? Date.parse(info.startedAt) : NaN;
  const who = info
    ? `pid ${info.pid}, started ${new Date(since).toISOString().replace(/\.\d+Z$/, "Z")} (${
      ago(now - since)
    })`
    : `its lock is ${lockPath}`;
  return `another deploy to ${where} is running on this machine (${who}). Wait for it to finish ` +
    `or stop it, then run deploy again: two senders at once would each restart the other's session.`;
}

function ago(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "just now";
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s ago`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min ago` : `${Math.round(m / 60)} h ago`;
}

/**
 * Takes the lock for the board at `address:port`, or fails at once if another deploy
 * holds it.
 * @throws {BoardBusyError} If another deploy (this process included) holds it.
 */
export async function lockBoard(
  address: string,
  port: number,
  options: { host?: string; dir?: string; now?: () => number } = {},
): Promise<BoardLock> {
  const dir = options.dir ?? boardLockDir();
  const path = boardLockFile(dir, address, port);
  const unusable = (e: unknown) =>
    e instanceof FileError ? e : new FileError(
      `cannot use the board lock '${path}': ${(e as Error).message}. ` +
        `Set ${LOCK_DIR_ENV} to a folder this user may write.`,
    );
  await ensurePrivateDir(dir, options.dir === undefined && !Deno.env.get(LOCK_DIR_ENV))
    .catch((e) => Promise.reject(unusable(e)));
  const where = `${options.host ?? address}:${port}` +
    (options.host && options.host !== address ? ` (${address})` : "");
  for (let attempt = 0;; attempt++) {
    const file = await openLockFile(path).catch((e) => Promise.reject(unusable(e)));
    let held = false;
    try {
      held = await file.tryLock(true);
      if (!held) {
        throw new BoardBusyError(
          busyMessage(where, await readHolder(file), path, options.now?.() ?? Date.now()),
        );
      }
      // The holder before us may have removed the path after we opened it: lock the file
      // that is there now, not an orphan.
      const [mine, there] = await Promise.all([file.stat(), Deno.lstat(path).catch(() => null)]);
      if (!there || mine.ino !== there.ino || mine.dev !== there.dev) {
        if (attempt < 5) {
          file.close();
          continue;
        }
        throw new BoardBusyError(busyMessage(where, undefined, path));
      }
      const info: BoardLockInfo = {
        pid: Deno.pid,
        startedAt: new Date(options.now?.() ?? Date.now()).toISOString(),
        host: options.host ?? address,
        address,
        port,
      };
      await file.truncate(0);
      await file.write(new TextEncoder().encode(JSON.stringify(info) + "\n"));
    } catch (e) {
      file.close();
      throw e;
    }
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      // Remove while still holding it: whoever opens the path next creates a new file.
      await Deno.remove(path).catch(() => {});
      file.close();
    };
    return { path, release, [Symbol.asyncDispose]: release };
  }
}

/** Who holds the lock; its holder may still be writing that down, so wait a little. */
async function readHolder(file: Deno.FsFile): Promise<BoardLockInfo | undefined> {
  for (let i = 0; i < 10; i++) {
    const info = parseLockInfo(await readSmall(file).catch(() => ""));
    if (info) return info;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

/** The first 4 KiB of the open lock file: its holder's line, whatever else is there. */
async function readSmall(file: Deno.FsFile): Promise<string> {
  await file.seek(0, Deno.SeekMode.Start);
  const buffer = new Uint8Array(4096);
  const n = await file.read(buffer);
  return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
}

/**
 * Opens `path` as a lock file without following a link: a new file is made with O_EXCL
 * (which never follows one); an existing one must be a regular file of ours with one
 * name, and the file opened must be the one looked at (same device and inode).
 */
async function openLockFile(path: string): Promise<Deno.FsFile> {
  const uid = Deno.uid();
  for (let attempt = 0; attempt < 5; attempt++) {
    const seen = await Deno.lstat(path).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    });
    if (!seen) {
      try {
        return await Deno.open(path, { read: true, write: true, createNew: true, mode: 0o600 });
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) continue;
        throw e;
      }
    }
    const refuse = (what: string) =>
      new FileError(
        `refusing the board lock '${path}': ${what}. Someone else may have put it there: ` +
          `look at it, remove it, and run again (or set ${LOCK_DIR_ENV} to a folder only you can ` +
          `write).`,
      );
    if (seen.isSymlink) throw refuse("it is a symbolic link, and lock files are never followed");
    if (!seen.isFile) throw refuse("it is not a regular file");
    if (uid !== null && seen.uid !== uid) {
      throw refuse(`it belongs to another user (uid ${seen.uid})`);
    }
    if (seen.nlink !== null && seen.nlink > 1) {
      throw refuse(`it has ${seen.nlink} names (a hard link to another file)`);
    }
    const file = await Deno.open(path, { read: true, write: true });
    const opened = await file.stat();
    if (opened.dev === seen.dev && opened.ino === seen.ino && opened.isFile) return file;
    // Replaced between the look and the open: look again.
    file.close();
  }
  throw new FileError(
    `cannot use the board lock '${path}': it keeps being replaced while it is opened. ` +
      `Set ${LOCK_DIR_ENV} to a folder only you can write.`,
  );
}

/**
 * Makes the lock folder. One of ours (`owned`) is made 0700 and must belong to this user
 * and be closed to others, or another local user could plant links in it.
 */
async function ensurePrivateDir(dir: string, owned: boolean): Promise<void> {
  try {
    await Deno.mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    else if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  if (!owned) return;
  const info = await Deno.lstat(dir);
  const uid = Deno.uid();
  const refuse = (what: string) =>
    new FileError(
      `refusing the board lock folder '${dir}': ${what}, so another user could plant files ` +
        `in it. Remove it (it is remade for you), or set ${LOCK_DIR_ENV} to a folder only you ` +
        `can write.`,
    );
  if (info.isSymlink) throw refuse("it is a symbolic link");
  if (!info.isDirectory) throw refuse("it is not a folder");
  if (uid !== null && info.uid !== uid) {
    throw refuse(`it belongs to another user (uid ${info.uid})`);
  }
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    throw refuse(`others may use it (mode ${(info.mode & 0o777).toString(8)})`);
  }
}
