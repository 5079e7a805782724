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
import { BoardBusyError } from "../../lib/errors.ts";

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
