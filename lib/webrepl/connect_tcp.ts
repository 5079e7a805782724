/**
 * The TCP connection under a WebREPL session, with its failures named for a user: no
 * answer (the board is off or elsewhere), refused (no WebREPL running), or another error.
 */
import { DeviceUnreachableError, WebReplError } from "../errors.ts";
import { formatSeconds } from "../_units.ts";

/**
 * Connects to `host:port` within `timeoutMs`.
 * @throws {DeviceUnreachableError} No answer in time, or the address cannot be reached.
 * @throws {WebReplError} Refused: nothing listens there (caused by `ConnectionRefused`).
 */
export async function connectTcp(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<Deno.Conn> {
  const address = `${host}:${port}`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    return await Deno.connect({ hostname: host, port, transport: "tcp", signal: abort.signal });
  } catch (e) {
    if (abort.signal.aborted) {
      throw new DeviceUnreachableError(
        `no answer from ${address} within ${formatSeconds(timeoutMs / 1000)}: ` +
          "is the board powered, and on this network?",
        { cause: e },
      );
    }
    if (e instanceof Deno.errors.ConnectionRefused) {
      throw new WebReplError(
        `no WebREPL at ${address}: is the board running MicroPython with WebREPL enabled? ` +
          "(enable it once on its serial REPL: import webrepl_setup)",
        { cause: e },
      );
    }
    throw new DeviceUnreachableError(`cannot reach ${address}: ${(e as Error).message}`, {
      cause: e,
    });
  } finally {
    clearTimeout(timer);
  }
}
