/**
 * The per-board lock: a second deploy to one board is refused at once, naming the first;
 * a lock whose process died is taken over.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { ROOT, tempDir } from "../_helpers.ts";
import {
  boardLockFile,
  busyMessage,
  LOCK_DIR_ENV,
  lockBoard,
  parseLockInfo,
} from "../../lib/deploy/board_lock.ts";
import { BoardBusyError, FileError } from "../../lib/errors.ts";

/** A deno process holding the lock of 10.0.0.7:8266 in `dir` until it is killed. */
async function holder(dir: string): Promise<{ child: Deno.ChildProcess; pid: number }> {
  const code = `
    import { lockBoard } from "${ROOT}lib/deploy/board_lock.ts";
    await lockBoard("10.0.0.7", 8266);
    console.log("locked");
    setInterval(() => {}, 1000);
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { [LOCK_DIR_ENV]: dir },
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assertEquals(new TextDecoder().decode(value).trim(), "locked");
  reader.releaseLock();
  await child.stdout.cancel();
  return { child, pid: child.pid };
}

Deno.test("lockBoard() refuses a board another process holds, naming its pid and start; takes it over once that process died", async () => {
  await using dir = await tempDir();
  const { child, pid } = await holder(dir.path);
  try {
    const e = await assertRejects(
      () => lockBoard("10.0.0.7", 8266, { dir: dir.path, host: "kitchen.lan" }),
      BoardBusyError,
      `another deploy to kitchen.lan:8266 (10.0.0.7) is running on this machine (pid ${pid}, started `,
    );
    assertStringIncludes(e.message, "Wait for it to finish or stop it");
    // Another board is free.
    await using other = await lockBoard("10.0.0.8", 8266, { dir: dir.path });
    assert(other.path.endsWith("10.0.0.8_8266.lock"));
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  // Killed without cleaning up: its file is still there, naming a dead pid.
  const path = boardLockFile(dir.path, "10.0.0.7", 8266);
  assertEquals(parseLockInfo(await Deno.readTextFile(path))?.pid, pid);
  const lock = await lockBoard("10.0.0.7", 8266, { dir: dir.path });
  assertEquals(parseLockInfo(await Deno.readTextFile(path))?.pid, Deno.pid);
  await lock.release();
  assertEquals(await Deno.stat(path).then(() => true, () => false), false, "released: removed");
});

Deno.test("lockBoard() takes over a lock file left by a dead process (no OS lock on it)", async () => {
  await using dir = await tempDir();
  const path = boardLockFile(dir.path, "10.0.0.9", 8266);
  await Deno.writeTextFile(
    path,
    JSON.stringify({ pid: 999999, startedAt: "2020-01-01T00:00:00.000Z", host: "x", port: 8266 }),
  );
  await using lock = await lockBoard("10.0.0.9", 8266, { dir: dir.path });
  assertEquals(lock.path, path);
  assertEquals(parseLockInfo(await Deno.readTextFile(path))?.pid, Deno.pid);
});

Deno.test("lockBoard() refuses a second lock on one board in the same process (one fleet, two names)", async () => {
  await using dir = await tempDir();
  await using _first = await lockBoard("127.0.0.1", 9000, { dir: dir.path, host: "localhost" });
  await assertRejects(
    () => lockBoard("127.0.0.1", 9000, { dir: dir.path, host: "127.0.0.1" }),
    BoardBusyError,
    "this deploy is already sending to 127.0.0.1:9000 (for another device at the same address)",
  );
});

Deno.test("busyMessage() says who holds the board and for how long", () => {
  const info = {
    pid: 4242,
    startedAt: "2026-01-02T03:04:05.678Z",
    host: "10.0.0.7",
    address: "10.0.0.7",
    port: 8266,
  };
  assertEquals(
    busyMessage("10.0.0.7:8266", info, "/tmp/x.lock", Date.parse(info.startedAt) + 12_000, 1),
    "another deploy to 10.0.0.7:8266 is running on this machine (pid 4242, started " +
      "2026-01-02T03:04:05Z (12 s ago)). Wait for it to finish or stop it, then run deploy again: " +
      "two senders at once would each restart the other's session.",
  );
});

Deno.test("lockBoard() never follows a symlink planted as the lock file: the file it names keeps its mode and bytes", async () => {
  await using dir = await tempDir();
  await using elsewhere = await tempDir();
  const victim = `${elsewhere.path}/secret`;
  await Deno.writeTextFile(victim, "private\n", { mode: 0o600 });
  await Deno.chmod(victim, 0o600);
  const path = boardLockFile(dir.path, "127.0.0.1", 18299);
  await Deno.symlink(victim, path);
  await assertRejects(
    () => lockBoard("127.0.0.1", 18299, { dir: dir.path }),
    FileError,
    `refusing the board lock '${path}': it is a symbolic link, and lock files are never followed`,
  );
  assertEquals((await Deno.stat(victim)).mode! & 0o777, 0o600);
  assertEquals(await Deno.readTextFile(victim), "private\n");
  // A dangling link is not followed either: nothing is made where it points.
  await Deno.remove(path);
  await Deno.symlink(`${elsewhere.path}/made`, path);
  await assertRejects(() => lockBoard("127.0.0.1", 18299, { dir: dir.path }), FileError);
  assertEquals(await Deno.lstat(`${elsewhere.path}/made`).then(() => true, () => false), false);
});

Deno.test("lockBoard() refuses a hard link planted as the lock file, and makes new lock files 0600", async () => {
  await using dir = await tempDir();
  const victim = `${dir.path}/secret`;
  await Deno.writeTextFile(victim, "private\n", { mode: 0o600 });
  const path = boardLockFile(dir.path, "127.0.0.1", 18300);
  await Deno.link(victim, path);
  await assertRejects(
    () => lockBoard("127.0.0.1", 18300, { dir: dir.path }),
    FileError,
    "it has 2 names (a hard link to another file)",
  );
  assertEquals(await Deno.readTextFile(victim), "private\n");
  await Deno.remove(path);
  await using lock = await lockBoard("127.0.0.1", 18300, { dir: dir.path });
  assertEquals((await Deno.lstat(lock.path)).mode! & 0o777, 0o600);
});

/** Runs lockBoard() in a deno process with `env` only (no OTA_LOCK_DIR): its output. */
async function lockWithEnv(env: Record<string, string>): Promise<string> {
  const code = `
    import { lockBoard } from "${ROOT}lib/deploy/board_lock.ts";
    try {
      const lock = await lockBoard("127.0.0.1", 18301);
      console.log("locked " + lock.path);
      await lock.release();
    } catch (e) {
      console.log(e.name + ": " + e.message);
    }
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/", ...env },
    clearEnv: true,
    stderr: "inherit",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("lockBoard() keeps its lock folder per user: made 0700 in the temp folder, refused when open to others", async () => {
  await using tmp = await tempDir();
  const own = `${tmp.path}/yaota8266-ota-locks-${Deno.uid()}`;
  assertEquals(await lockWithEnv({ TMPDIR: tmp.path }), `locked ${own}/127.0.0.1_18301.lock`);
  assertEquals((await Deno.stat(own)).mode! & 0o777, 0o700);
  await Deno.chmod(own, 0o1777);
  assertEquals(
    await lockWithEnv({ TMPDIR: tmp.path }),
    `FileError: refusing the board lock folder '${own}': others may use it (mode 777), so ` +
      `another user could plant files in it. Remove it (it is remade for you), or set ` +
      `OTA_LOCK_DIR to a folder only you can write.`,
  );
  await Deno.remove(own);
  await Deno.symlink(tmp.path, own);
  assertStringIncludes(await lockWithEnv({ TMPDIR: tmp.path }), "it is a symbolic link");
  // XDG_RUNTIME_DIR, when set, holds it instead.
  const runtime = `${tmp.path}/run`;
  await Deno.mkdir(runtime, { mode: 0o700 });
  assertEquals(
    await lockWithEnv({ TMPDIR: tmp.path, XDG_RUNTIME_DIR: runtime }),
    `locked ${runtime}/yaota8266-ota-locks/127.0.0.1_18301.lock`,
  );
});

Deno.test("parseLockInfo() takes no lock text whose start time is not a time (busyMessage() could not say it)", () => {
  assertEquals(parseLockInfo('{"pid": 5, "startedAt": "yesterday"}'), undefined);
  assertEquals(parseLockInfo('{"pid": 5, "startedAt": "2026-01-02T03:04:05Z"}')?.pid, 5);
});
