/**
 * The virtual yaota8266 device on a real UDP socket: the device model behind the link
 * model, on 127.0.0.1. Used by `deno task sim`, the demo, the benchmark and the tests.
 * In app mode the OTA port is closed, as on a device running its app (a datagram gets an
 * ICMP refusal, as from a live board). While the device reboots the socket stays open and
 * drops whatever arrives: a rebooting board is silent, it refuses nothing.
 */
import { type DatagramSocket, openDatagramSocket } from "./datagram_socket.ts";
import { type DeviceEvent, DeviceModel, type DeviceOptions } from "./device.ts";
import { Link, type LinkOptions } from "./link.ts";
import { Scheduler } from "./scheduler.ts";
import { SECTOR_SIZE } from "../format/packet.ts";
import { startWebReplServer, type WebReplServer } from "./webrepl_server.ts";
import { findVersion } from "../format/image.ts";
import { readFrozenTable } from "../format/frozen_table.ts";
import { findImageBuild, renderOtaModule } from "../format/ota_module.ts";
import { DEFAULT_BOOT_PY, pyString, readOtaTemplate, webReplEnabled } from "./device_shims.ts";
import { listenError, type ListenTarget } from "../transfer/listen_error.ts";
import { FileError } from "../errors.ts";

export interface VirtualDeviceOptions extends Omit<DeviceOptions, "now"> {
  /** The address to listen on (default 127.0.0.1). */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  link?: LinkOptions;
  /** A file that mirrors the flash: each written sector is written there too. */
  flashFile?: string;
  /** Every device event, as it happens (times in ms since the device started). */
  onEvent?: (event: DeviceEvent) => void;
  /** Called once the sockets match a mode: rebooting (UDP open, silent), OTA mode, the app. */
  onModeChange?: (mode: SocketMode) => void | Promise<void>;
  /**
   * The running app's WebREPL (real MicroPython), on TCP at the same port number, when
   * the file system enables it: give `password` to write `webrepl_cfg.py`, or `files`.
   */
  webrepl?: { password?: string; files?: Map<string, string> };
  /** The app's console lines (WebREPL connections, resets). */
  onConsole?: (line: string) => void;
  /** Options named in bind errors (`sim`: "--listen-port", "--host"). */
  listenOptions?: Pick<ListenTarget, "portOption" | "hostOption">;
  /**
   * A socket could not be reopened while the device ran (its port was taken meanwhile):
   * a `ListenError`. The device is then off the network.
   */
  onError?: (error: unknown) => void;
}

export interface VirtualDevice extends AsyncDisposable {
  readonly port: number;
  readonly host: string;
  readonly model: DeviceModel;
  readonly link: LinkModelHandle;
  /** All events so far. */
  readonly events: DeviceEvent[];
  /** The app's file system (survives resets): `webrepl_cfg.py` and friends. */
  readonly files: Map<string, string>;
  /** Resolves with the first event (past or future) that matches. */
  waitFor(match: (e: DeviceEvent) => boolean, timeoutMs?: number): Promise<DeviceEvent>;
  /** `machine.reset()` from the app side. */
  reset(): void;
  close(): Promise<void>;
}

type LinkModelHandle = Link;
export type SocketMode = "ota" | "app" | "rebooting";

interface Peer {
  address: string;
  port: number;
}

export async function startVirtualDevice(options: VirtualDeviceOptions): Promise<VirtualDevice> {
  const host = options.host ?? "127.0.0.1";
  const t0 = performance.now();
  const clock = () => performance.now() - t0;
  const model = new DeviceModel({ ...options, now: 0 });
  const link = new Link(options.link);
  const events: DeviceEvent[] = [];
  const waiters: { match: (e: DeviceEvent) => boolean; resolve: (e: DeviceEvent) => void }[] = [];
  /** Opened once the sockets are bound: a device that cannot listen writes no file. */
  let flashFile: Deno.FsFile | undefined;

  let socket: DatagramSocket | undefined;
  let port = options.port ?? 0;
  let closed = false;

  const scheduler = new Scheduler(
    () => {
      const w = model.nextWakeup();
      return w === undefined ? undefined : w + t0;
    },
    (now) => publish(model.advance(now - t0)),
    // Whatever has arrived is taken first: it may be due before what the timer fired for.
    () => socket?.drain?.(),
  );

  function publish(list: DeviceEvent[]): void {
    for (const e of list) {
      events.push(e);
      options.onEvent?.(e);
      for (const w of [...waiters]) {
        if (w.match(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
      if (e.type === "reply") {
        for (const d of link.toClient(e.at, e.data)) {
          scheduler.at(d.at + t0, () => send(d.data, e.to as Peer));
        }
      } else if (e.type === "flash-write" && flashFile && e.address >= 0) {
        const bytes = model.flash.slice(e.address, e.address + SECTOR_SIZE);
        flashFile.seekSync(e.address, Deno.SeekMode.Start);
        flashFile.writeSync(bytes);
      } else if (e.type === "reboot") {
        void switchMode("rebooting");
      } else if (e.type === "boot") {
        void switchMode(e.mode);
      }
    }
  }

  function send(data: Uint8Array, to: Peer): void {
    if (socket && !closed) socket.send(data, to.address, to.port);
  }

  const target = (transport: "UDP" | "TCP"): ListenTarget => ({
    host,
    port,
    transport,
    purpose: transport === "UDP" ? "the OTA server" : "the app's WebREPL",
    ...options.listenOptions,
  });

  async function openSocket(): Promise<void> {
    socket = await openDatagramSocket({
      hostname: host,
      port,
      onMessage(data, from, receivedAt) {
        const now = receivedAt === undefined ? clock() : receivedAt - t0;
        for (const d of link.toDevice(now, data)) {
          scheduler.at(d.at + t0, (at) => {
            model.receive(at - t0, d.data, from);
            publish(model.advance(at - t0));
          });
        }
      },
    }).catch((e) => {
      throw listenError(e, target("UDP"));
    });
    port = socket.port;
  }

  /**
   * The UDP port, when the OS picks it, must also be free on TCP: the app's WebREPL
   * listens on the same number (a client socket in TIME_WAIT may hold it).
   */
  async function openSocketWithTcpTwin(): Promise<void> {
    const chosen = port;
    for (let attempt = 0;; attempt++) {
      await openSocket();
      // A port given, and an app with WebREPL: fail now, not when the app first boots.
      if (chosen !== 0 && !webReplEnabled(files)) return;
      try {
        Deno.listen({ hostname: host, port, transport: "tcp" }).close();
        return;
      } catch (e) {
        if (chosen !== 0 || attempt >= 20) {
          await closeSocket();
          throw listenError(e, target("TCP"));
        }
        await closeSocket();
        port = 0;
      }
    }
  }

  async function closeSocket(): Promise<void> {
    const s = socket;
    socket = undefined;
    await s?.close();
  }

  const files = options.webrepl?.files ?? new Map<string, string>();
  if (options.webrepl?.password !== undefined) {
    // As `webrepl_setup` leaves a board: the password file, and boot.py starting WebREPL.
    files.set("webrepl_cfg.py", `PASS = ${pyString(options.webrepl.password)}\n`);
    if (!webReplEnabled(files)) {
      files.set(
        "boot.py",
        (files.get("boot.py") ?? DEFAULT_BOOT_PY) + "import webrepl\nwebrepl.start()\n",
      );
    }
  }
  let webrepl: WebReplServer | undefined;

  async function startApp(): Promise<void> {
    if (!webReplEnabled(files)) return;
    // The frozen `ota.py` of every build (templates/ota.py).
    const otaTemplate = await readOtaTemplate();
    const app = {
      version: () => findVersion(model.flash.subarray(model.appOffset)) ?? "unknown",
      // The image's own ota.py (and with it the build it names), when it carries one.
      frozenModules: () => {
        const app = model.flash.subarray(model.appOffset);
        const table = readFrozenTable(app);
        if (table.length) return table;
        // A real image: its bytecode cannot run here; its ota.py is the template with the
        // build the image carries (read as inspect reads it).
        const build = findImageBuild(app);
        if (!build) return undefined;
        const stamp = { build: build.id, ...(build.version ? { version: build.version } : {}) };
        return [{ name: "ota.py", source: renderOtaModule(otaTemplate, stamp) }];
      },
      get rtcMemory() {
        return model.rtcMemory;
      },
      set rtcMemory(bytes: Uint8Array) {
        model.rtcMemory = bytes;
      },
      onReset: () => {
        // machine.reset(): reboot after the app side has let go of the port.
        queueMicrotask(() => device.reset());
      },
      files,
      log: options.onConsole,
    };
    let server: WebReplServer;
    try {
      server = await startWebReplServer({ host, port, app });
    } catch (e) {
      throw listenError(e, target("TCP"));
    }
    webrepl = server;
    // After machine.reset() this server is gone: a reboot into the app starts a new one.
    void server.stopped.then(() => {
      if (webrepl === server) webrepl = undefined;
    });
  }

  let modeChange = Promise.resolve();
  let failure: unknown;
  /**
   * Rebooting: the app (and its WebREPL) is gone and the UDP socket is open, dropping
   * what arrives (the model's "rebooting"). OTA mode: the same socket, now answered.
   * App mode: the UDP port closed, WebREPL up if the file system enables it.
   */
  function switchMode(mode: SocketMode, rethrow = false): Promise<void> {
    modeChange = modeChange.then(async () => {
      // The power-on boot event comes out with the model's next events, possibly after a
      // reset: act only on the mode the device is in now.
      if (closed || failure !== undefined || model.mode !== mode) return;
      try {
        if (mode === "ota" || mode === "rebooting") {
          const w = webrepl;
          webrepl = undefined;
          await w?.close();
          if (!socket) await openSocket();
        }
        if (mode === "app") {
          if (socket) await closeSocket();
          if (!webrepl) await startApp();
        }
        await options.onModeChange?.(mode);
      } catch (e) {
        if (rethrow) throw e;
        failure = e;
        options.onError?.(e);
      }
    });
    return modeChange;
  }

  await openSocketWithTcpTwin();
  if (model.mode !== "ota") {
    await closeSocket();
    await switchMode("app", true);
  }
  if (options.flashFile) {
    try {
      const file = await Deno.open(options.flashFile, { read: true, write: true, create: true });
      flashFile = file;
      await writeAll(file, model.flash);
      // A longer file given with `sim --force` keeps no tail of its old self.
      await file.truncate(model.flash.length);
    } catch (e) {
      closed = true;
      await webrepl?.close();
      await closeSocket();
      flashFile?.close();
      throw new FileError(
        `cannot write the flash file '${options.flashFile}': ${(e as Error).message}`,
      );
    }
  }
  scheduler.arm();

  const device: VirtualDevice = {
    get port() {
      return port;
    },
    host,
    model,
    link,
    events,
    files,
    waitFor(match, timeoutMs = 30000) {
      const past = events.find(match);
      if (past) return Promise.resolve(past);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(entry), 1);
          reject(new Error(`virtual device: no matching event within ${timeoutMs} ms`));
        }, timeoutMs);
        const entry = {
          match,
          resolve: (e: DeviceEvent) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        waiters.push(entry);
      });
    },
    reset() {
      model.reset(clock());
      publish(model.advance(clock()));
      scheduler.arm();
    },
    async close() {
      if (closed) return;
      await modeChange;
      closed = true;
      scheduler.close();
      await webrepl?.close();
      await closeSocket();
      flashFile?.close();
    },
    [Symbol.asyncDispose]() {
      return device.close();
    },
  };
  return device;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}
