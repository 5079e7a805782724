/**
 * The running app's side of the virtual device: MicroPython's WebREPL server on TCP,
 * as docs/device.md ("WebREPL") describes the board's, with a real MicroPython
 * VM (`micropython.ts`) behind the REPL (`webrepl_repl.ts`) and the shims of
 * `device_shims.ts`. One VM per boot: names stay defined across connections until
 * `machine.reset()`.
 *
 * On `machine.reset()` a real board sends nothing more, not even a FIN. Deno cannot
 * drop a socket without one, so this server stops answering at once, closes the
 * listener, calls `app.onReset()`, and then closes the client's socket (which sends a
 * FIN). Clients must take silence or a close as the reset (the WebREPL client does).
 */
import { WebReplError } from "../errors.ts";
import { type MicroPythonVM, type RunResult, startMicroPython } from "../micropython/vm.ts";
import { Repl, type ReplHost } from "./webrepl_repl.ts";
import { installShims, pyString, readWebReplPassword, releaseOf } from "./device_shims.ts";
import { type DeviceFiles, FileChannel } from "../webrepl/file_device.ts";
import type { FrozenSource } from "../format/frozen_table.ts";
import { encodeFrame, FrameDecoder, OPCODE } from "../webrepl/websocket.ts";
import {
  acceptUpgrade,
  closeQuietly,
  reads,
  readUpgrade,
  sendText,
  writeAll,
} from "./websocket_server.ts";
import { ACCESS_DENIED, CONNECTED_BANNER, PASSWORD_PROMPT } from "../webrepl/protocol.ts";

export interface RunningApp {
  /** Version string of the image in flash, e.g. "v1.19.1 on 2022-06-18" (`image.ts` findVersion). */
  version(): string;
  /** RTC user memory; survives reset. The `machine.RTC().memory()` shim replaces it. */
  rtcMemory: Uint8Array;
  /** Called when MicroPython runs `machine.reset()`: the device reboots (this server has stopped). */
  onReset(): void;
  /**
   * Files of the device's file system that survive resets, by path from the root
   * ("webrepl_cfg.py", "boot.py", "lib/x.py"). Kept in step with the VM after every
   * command and at reset.
   */
  files: Map<string, string>;
  /** Whether `ota.py` is frozen into the firmware (default true). */
  frozenOta?: boolean;
  /**
   * The modules frozen into the image in flash (`frozen_table.ts`), or undefined when the
   * image carries no such table: then `frozenOta` says whether templates/ota.py runs.
   */
  frozenModules?(): FrozenSource[] | undefined;
  /** The board's console (UART) lines, e.g. "WebREPL connection from: 127.0.0.1:5000". */
  log?(line: string): void;
}

export interface WebReplServer {
  /** The TCP port listened on (the OS's choice when asked for 0). */
  port: number;
  /** Settles when the server stops: after a reset or `close()`. */
  stopped: Promise<void>;
  /** Stops the server and the VM (power off). Idempotent. */
  close(): Promise<void>;
}

/** The device keeps at most 10 typed password characters (`modwebrepl.c`). */
const PASSWORD_INPUT_MAX = 10;

const encoder = new TextEncoder();

/**
 * Boots the running app (a fresh VM with the shims and the device's files, boot.py
 * run) and listens for WebREPL on TCP `host:port`.
 * @throws {WebReplError} If the file system has no `webrepl_cfg.py` with `PASS`.
 */
export async function startWebReplServer(
  options: { host: string; port: number; app: RunningApp },
): Promise<WebReplServer> {
  const { app } = options;
  const log = (line: string) => app.log?.(line);
  let resetting = false;
  let onResetNotify: (filesJson: string) => void = () => {};
  const vm = await startMicroPython({
    onNotify: (name, payload) => {
      if (name === "rtc") app.rtcMemory = fromHex(String(payload));
      if (name === "files") replaceFiles(app.files, String(payload));
      if (name === "reset") onResetNotify(String(payload));
    },
  });
  let password: string | undefined;
  try {
    const frozen = app.frozenModules?.();
    const ota = frozen?.find((m) => m.name === "ota.py");
    const bootError = await installShims(vm, {
      version: app.version(),
      rtcMemory: app.rtcMemory,
      files: app.files,
      frozenOta: frozen ? ota !== undefined : app.frozenOta ?? true,
      ...(ota ? { otaSource: ota.source } : {}),
    });
    if (bootError) log(bootError.trimEnd());
    password = await readWebReplPassword(vm);
  } catch (e) {
    vm.terminate();
    throw e;
  }
  if (password === undefined) {
    vm.terminate();
    throw new WebReplError(
      "WebREPL is not configured on the virtual device: no webrepl_cfg.py with PASS = '...'",
    );
  }
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: options.host, port: options.port, transport: "tcp" });
  } catch (e) {
    vm.terminate();
    throw e;
  }
  const sockets = new Set<Deno.Conn>();
  let active: Deno.Conn | undefined;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const repl = new Repl(vmHost(vm, () => resetting), app.version());

  const closeAll = () => {
    try {
      listener.close();
    } catch { /* already closed */ }
    for (const s of sockets) closeQuietly(s);
    sockets.clear();
    active = undefined;
  };

  onResetNotify = (filesJson) => {
    if (resetting) return;
    resetting = true;
    replaceFiles(app.files, filesJson);
    vm.terminate();
    try {
      listener.close();
    } catch { /* already closed */ }
    try {
      app.onReset();
    } finally {
      closeAll();
      stop();
    }
  };

  const connection = async (conn: Deno.Conn) => {
    const peer = formatAddr(conn.remoteAddr);
    const refuse = () => log(`Concurrent WebREPL connection from ${peer} rejected`);
    // webrepl.py's accept_conn: with a client on dupterm, close the new one at once.
    if (active || resetting) return refuse();
    const handshake = await readUpgrade(conn);
    if (!handshake) return;
    if (handshake.key === undefined) {
      // websocket_helper.py raises "Not a websocket request" and never answers: the
      // client waits until it gives up (or the server stops).
      log(`WebREPL: not a websocket request from ${peer} (no 'Sec-WebSocket-Key' header)`);
      for await (const _ of reads(conn)) { /* silence */ }
      return;
    }
    if (active || resetting) return refuse();
    active = conn;
    log(`WebREPL connection from: ${peer}`);
    try {
      await acceptUpgrade(conn, handshake.key);
      await session(conn, handshake.rest);
    } finally {
      if (active === conn) active = undefined;
    }
  };

  /** One logged-in (or logging-in) client, until it leaves, is refused, or the device resets. */
  const session = async (conn: Deno.Conn, first: Uint8Array) => {
    const send = async (text: string) => {
      if (resetting || text === "") return;
      await sendText(conn, text);
    };
    const frames = new FrameDecoder();
    const text = new TextDecoder();
    const files = new FileChannel(
      vmFiles(vm),
      (bytes) => resetting ? Promise.resolve() : writeAll(conn, encodeFrame(OPCODE.binary, bytes)),
      releaseOf(app.version()),
    );
    /** Password characters typed so far; undefined once logged in. */
    let typed: string | undefined = "";
    /** Handles the frames in `bytes`; false when the session is over. */
    const receive = async (bytes: Uint8Array): Promise<boolean> => {
      for (const frame of frames.push(bytes)) {
        if (resetting) return false;
        if (frame.opcode === OPCODE.close) {
          if (active === conn) active = undefined;
          await writeAll(conn, encodeFrame(OPCODE.close, new Uint8Array(0)));
          return false;
        }
        if (frame.opcode === OPCODE.binary && typed === undefined) {
          const outcome = await files.push(frame.payload);
          if (outcome.kind === "drop") {
            log(outcome.console);
            return false;
          }
          continue;
        }
        if (frame.opcode > OPCODE.binary) continue; // no pings on the device, so no pong
        let input = text.decode(frame.payload, { stream: true });
        if (typed !== undefined) {
          const end = input.search(/[\r\n]/);
          typed = (typed + (end < 0 ? input : input.slice(0, end))).slice(0, PASSWORD_INPUT_MAX);
          if (end < 0) continue;
          if (typed !== password) {
            log("WebREPL: access denied");
            await send(`\r\n${ACCESS_DENIED}\r\n`);
            return false;
          }
          typed = undefined;
          await send(`\r\n${CONNECTED_BANNER}`);
          input = input.slice(end + 1);
        }
        await repl.input(input, send);
      }
      return !resetting;
    };
    await send(PASSWORD_PROMPT);
    try {
      if (first.length && !await receive(first)) return;
      for await (const chunk of reads(conn)) if (!await receive(chunk)) return;
    } finally {
      // A client that leaves mid-put leaves what it sent, as on the board.
      if (!resetting) await files.flush().catch(() => {});
    }
  };

  const acceptLoop = (async () => {
    const handlers = new Set<Promise<void>>();
    try {
      for await (const conn of listener) {
        sockets.add(conn);
        const handler = connection(conn).catch(() => {}).finally(() => {
          if (!resetting) {
            sockets.delete(conn);
            closeQuietly(conn);
          }
          handlers.delete(handler);
        });
        handlers.add(handler);
      }
    } catch { /* listener closed */ }
    await Promise.all(handlers);
  })();

  let closing: Promise<void> | undefined;
  return {
    port: (listener.addr as Deno.NetAddr).port,
    stopped,
    close: () => {
      closing ??= (async () => {
        resetting = true;
        vm.terminate();
        closeAll();
        stop();
        await acceptLoop;
      })();
      return closing;
    },
  };
}

/** How the REPL runs code in the VM, keeping the device's files in step after each command. */
function vmHost(vm: MicroPythonVM, stopped: () => boolean): ReplHost {
  const after = async (r: RunResult) => {
    if (!stopped()) await vm.run("__import__('_board').sync()");
    return r;
  };
  return {
    stopped,
    runFile: async (code) => after(await vm.run(code)),
    runSingle: async (code) => {
      const literal = bytesLiteral(encoder.encode(code));
      const r = await vm.run(`exec(compile(${literal}.decode(), '<stdin>', 'single'))`);
      // Drop the wrapper's own frame: the first one after the header.
      const error = r.error?.replace(
        /^(Traceback \(most recent call last\):\n) {2}File "<stdin>", line 1, in <module>\n/,
        "$1",
      );
      return after({ output: r.output, ...(error ? { error } : {}) });
    },
  };
}

/**
 * The board's file system for WebREPL file transfer: MicroPython's own `open()` in the
 * VM, so names resolve and fail as in the REPL. No Python names are left behind. A
 * finished put syncs the device's files, as a command does.
 */
function vmFiles(vm: MicroPythonVM): DeviceFiles {
  const run = async (code: string) => {
    const r = await vm.run(code);
    if (r.error) throw new Error(r.error.trimEnd().split("\n").at(-1) ?? r.error);
    return r.output;
  };
  return {
    create: async (name) => {
      await run(`open(${pyString(name)}, 'wb').close()`);
    },
    append: async (name, data) => {
      await run(
        `(lambda f: (f.write(${bytesLiteral(data)}), f.close()))(open(${pyString(name)}, 'ab'))`,
      );
    },
    read: async (name) => {
      // The length first: the WebAssembly port's `b''.hex()` gives `b''`, not "".
      const out = await run(
        `(lambda f: (lambda d: (f.close(), print(len(d), d.hex() if d else '')))(f.read()))` +
          `(open(${pyString(name)}, 'rb'))`,
      );
      const [length = "0", hex = ""] = out.trim().split(" ");
      const data = fromHex(hex);
      if (data.length !== Number(length)) throw new Error(`OSError: reading '${name}' failed`);
      return data;
    },
    closed: async () => {
      await vm.run("__import__('_board').sync()");
    },
  };
}

/** A Python bytes literal for any bytes. */
function bytesLiteral(data: Uint8Array): string {
  return "b'" + Array.from(data, (b) => "\\x" + b.toString(16).padStart(2, "0")).join("") + "'";
}

function formatAddr(addr: Deno.Addr): string {
  return addr.transport === "tcp" ? `${addr.hostname}:${addr.port}` : addr.transport;
}

function fromHex(text: string): Uint8Array {
  return new Uint8Array((text.match(/../g) ?? []).map((h) => parseInt(h, 16)));
}

function replaceFiles(files: Map<string, string>, json: string): void {
  let parsed: Record<string, string>;
  try {
    parsed = JSON.parse(json);
  } catch {
    return;
  }
  files.clear();
  for (const [path, text] of Object.entries(parsed)) files.set(path, text);
}
