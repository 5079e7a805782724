/**
 * The WebREPL hello (lib/webrepl/hello.ts) that `status` without a password and `scan`
 * use: what each kind of peer on 127.0.0.1 is taken for, and that nothing is typed.
 */
import { assertEquals } from "../_assert.ts";
import { webReplHello } from "../../lib/webrepl/hello.ts";
import { bootBoard } from "../_webrepl_device.ts";
import { closedPort, silentPeer } from "../deploy/_one_build.ts";

/** A TCP peer that handles each connection with `handle`. */
function peer(handle: (conn: Deno.Conn) => Promise<void>): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const loop = (async () => {
    try {
      for await (const conn of listener) void handle(conn).catch(() => {});
    } catch { /* closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await loop;
    },
  };
}

Deno.test("webReplHello: a board's prompt, a busy board, a silent port, another server, nothing", async () => {
  await using board = await bootBoard("secret1");
  assertEquals(await webReplHello("127.0.0.1", board.target.port, 3000), "webrepl");
  // Nothing typed: the board saw a connection and no password, right or wrong.
  assertEquals(board.console.filter((l) => /connection from/.test(l)).length, 1);
  assertEquals(board.console.filter((l) => /access denied/.test(l)), []);
  // ...and its one client slot is free again: a login right after succeeds.
  assertEquals(await webReplHello("127.0.0.1", board.target.port, 3000), "webrepl");

  await using busy = peer((conn) => Promise.resolve(conn.close()));
  assertEquals(await webReplHello("127.0.0.1", busy.port, 2000), "busy");

  await using http = peer(async (conn) => {
    await conn.read(new Uint8Array(1024));
    await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
    conn.close();
  });
  assertEquals(await webReplHello("127.0.0.1", http.port, 2000), "not-webrepl");

  await using silent = silentPeer();
  assertEquals(await webReplHello("127.0.0.1", silent.port, 500), "silent");

  assertEquals(await webReplHello("127.0.0.1", closedPort(), 2000), "refused");
});
