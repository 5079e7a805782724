/** A virtual board's running app with WebREPL on 127.0.0.1 (port from the OS), for the WebREPL tool tests. */
import {
  type RunningApp,
  startWebReplServer,
  type WebReplServer,
} from "../lib/sim/webrepl_server.ts";

export const VERSION = "v1.19.1 on 2022-06-18";

export interface VirtualBoard extends AsyncDisposable {
  app: RunningApp;
  server: WebReplServer;
  /** The board's console (UART) lines. */
  console: string[];
  target: { host: string; port: number; password: string; timeoutMs: number };
}

/** Boots a board whose webrepl_cfg.py holds `password`, with `files` on its file system. */
export async function bootBoard(
  password = "s3cr3tPw",
  files: Record<string, string> = {},
): Promise<VirtualBoard> {
  const console: string[] = [];
  const app: RunningApp = {
    version: () => VERSION,
    rtcMemory: new Uint8Array(0),
    onReset: () => {},
    files: new Map([["webrepl_cfg.py", `PASS = '${password}'\n`], ...Object.entries(files)]),
    log: (line) => console.push(line),
  };
  const server = await startWebReplServer({ host: "127.0.0.1", port: 0, app });
  return {
    app,
    server,
    console,
    target: { host: "127.0.0.1", port: server.port, password, timeoutMs: 5000 },
    [Symbol.asyncDispose]: () => server.close(),
  };
}

/** Every byte value, repeated to `length` bytes. */
export function allByteValues(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
}
