/**
 * One deploy per board at a time, on this machine. Two senders to one yaota8266 device
 * each see the other's packets as unexpected offsets and restart sessions
 * (docs/device.md, "Session restarts keep stale bytes"): the second deploy is refused at
 * once, naming the first. The lock is an OS file lock (flock) on
 * `<dir>/<address>_<port>.lock`, whose text says who holds it; the kernel releases it
 * when its process dies, so a lock left by a dead process is simply taken over.
 * `<dir>` is `$OTA_LOCK_DIR`, else `yaota8266-ota-locks` in the system's temp folder,
 * shared by every user of the machine.
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

export function boardLockDir(env: (name: string) => string | undefined = Deno.env.get): string {
  return env(LOCK_DIR_ENV) || join(tmpdir(), "yaota8266-ota-locks");
}

export function boardLockFile(dir: string, address: string, port: number): string {
  return join(dir, `${address.replace(/[^0-9A-Za-z.-]/g, "_")}_${port}.lock`);
}

/** The lock file's text, or undefined if it is not one (empty, being written, foreign). */
export function parseLockInfo(text: string): BoardLockInfo | undefined {
  try {
    const info = JSON.parse(text);
    return Number.isInteger(info?.pid) && typeof info.startedAt === "string" ? info : undefined;
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
    new FileError(
      `cannot use the board lock '${path}': ${(e as Error).message}. ` +
        `Set ${LOCK_DIR_ENV} to a folder this user may write.`,
    );
  await ensureSharedDir(dir).catch((e) => Promise.reject(unusable(e)));
  const where = `${options.host ?? address}:${port}` +
    (options.host && options.host !== address ? ` (${address})` : "");
  for (let attempt = 0;; attempt++) {
    const file = await openLockFile(path).catch((e) => Promise.reject(unusable(e)));
    let held = false;
    try {
      held = await file.tryLock(true);
      if (!held) {
        throw new BoardBusyError(
          busyMessage(where, await readHolder(path), path, options.now?.() ?? Date.now()),
        );
      }
      // The holder before us may have removed the path after we opened it: lock the file
      // that is there now, not an orphan.
      const [mine, there] = await Promise.all([file.stat(), Deno.stat(path).catch(() => null)]);
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
      try {
        await file.truncate(0);
        await file.write(new TextEncoder().encode(JSON.stringify(info) + "\n"));
      } catch {
        // Another user's file, opened to read: the lock holds all the same.
      }
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
async function readHolder(path: string): Promise<BoardLockInfo | undefined> {
  for (let i = 0; i < 10; i++) {
    const info = parseLockInfo(await Deno.readTextFile(path).catch(() => ""));
    if (info) return info;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

async function openLockFile(path: string): Promise<Deno.FsFile> {
  try {
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o666 });
    // Others on this machine may need to write their own lock info into it later.
    await Deno.chmod(path, 0o666).catch(() => {});
    return file;
  } catch (e) {
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    // Another user's file: reading is enough to lock it or to learn who holds it.
    return await Deno.open(path, { read: true });
  }
}

async function ensureSharedDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir);
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return;
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    await Deno.mkdir(dir, { recursive: true });
  }
  // Made here: world-writable and sticky, like /tmp itself, so every user of the machine
  // may lock a board and none may delete another's file.
  await Deno.chmod(dir, 0o1777).catch(() => {});
}
