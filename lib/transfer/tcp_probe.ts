/** Is the device's app up? A TCP connect to its WebREPL port tells (the OTA server has UDP only). */

export const CONNECT_PROBE_MS = 1000;
/** How long a successful probe waits for the board to close its side first. */
const LET_GO_MS = 200;

/**
 * Does a TCP connection to `host:port` succeed? On the board WebREPL listens only while
 * the app runs (the OTA server answers UDP only), so one that does means the app is up.
 * It is half-closed at once, and closed after the board closes its side (or `LET_GO_MS`):
 * the side that closes first keeps the port pair in TIME_WAIT for a minute, and a local
 * port of ours held that way is one a virtual device on this host may not listen on.
 */
export async function tcpPortOpen(
  host: string,
  port: number,
  timeoutMs = CONNECT_PROBE_MS,
): Promise<boolean> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: host, port, transport: "tcp", signal: abort.signal });
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
  let wait: ReturnType<typeof setTimeout> | undefined;
  try {
    await conn.closeWrite();
    await Promise.race([
      conn.read(new Uint8Array(64)),
      new Promise((resolve) => (wait = setTimeout(resolve, LET_GO_MS))),
    ]);
  } catch {
    // The board let go first.
  } finally {
    clearTimeout(wait);
  }
  try {
    conn.close();
  } catch {
    // Already closed.
  }
  return true;
}
