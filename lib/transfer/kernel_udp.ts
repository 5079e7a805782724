/**
 * UDP sockets through the C library (Linux, IPv4), for one thing Deno's sockets do not
 * give: the moment the system received each datagram (`SO_TIMESTAMPNS`), whatever this
 * thread was doing then. The sender's (`openKernelUdpPeer`): the pacing re-anchors its plan
 * of the device on every reply (`flight_plan.ts`, `confirm`); a reply read late says the
 * device finished late, and every packet after it is planned that much later. On a busy
 * machine replies were read 0.3 ms late at the median and 1.5 ms one time in ten, and the
 * quiet board waited for packets. The virtual device's (`openKernelUdpServer`): a board
 * takes a datagram when it comes, and a model that read one late (its process held up for
 * 5-12 ms a few times a run) had it arrive beside the next one, both in one check.
 *
 * Readiness is one `poll` for all of the process's sockets, on a thread of Deno's (a
 * non-blocking FFI call, `Poller`); the datagrams are read here, each with its time.
 * `udp.ts` falls back to `node:dgram` elsewhere, and the virtual device to Deno's own
 * socket (`sim/datagram_socket.ts`).
 */
import { trace } from "../trace.ts";
import { ipv4, sockaddrIn } from "./sockaddr.ts";
import { lastErrno, systemError } from "../_libc.ts";

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  errno: { name: "__errno_location", parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>;

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOL_SOCKET = 1;
const SO_TIMESTAMPNS = 35;
const MSG_DONTWAIT = 0x40;
const POLLIN = 1;
const EFD_NONBLOCK = 0x800;
const CLOCK_REALTIME = 0;
const EAGAIN = 11;
const ECONNREFUSED = 111;
const MAX_DATAGRAM = 2048;

let opened: Libc | null | undefined;

function libc(): Libc | null {
  if (opened !== undefined) return opened;
  try {
    if (Deno.build.os !== "linux") throw new Error("not Linux");
    opened = Deno.dlopen("libc.so.6", SYMBOLS) as Libc;
  } catch {
    // No FFI permission, another system or C library: `node:dgram` instead.
    opened = null;
  }
  return opened;
}

export interface KernelUdpPeer {
  send(data: Uint8Array): void;
  /** Reads every datagram the system has received by now (`onMessage` for each). */
  drain(): void;
  close(): Promise<void>;
}

/** Where a datagram came from. */
export interface KernelUdpSender {
  address: string;
  port: number;
}

export interface KernelUdpServer {
  /** The local port (chosen by the system when 0 was asked for). */
  readonly port: number;
  /** Sends `data` to `host:port` inside the call. */
  send(data: Uint8Array, host: string, port: number): void;
  /** Reads every datagram the system has received by now (`onMessage` for each). */
  drain(): void;
  close(): Promise<void>;
}

/**
 * A socket connected to `host:port` whose replies come with the time the system received
 * them (`performance.now()` ms). Undefined where this cannot be had (another system, no
 * FFI permission, not an IPv4 address): the caller uses `node:dgram`.
 * @throws An error with the system's `code` if the socket cannot be connected there.
 */
export function openKernelUdpPeer(
  host: string,
  port: number,
  onMessage: (data: Uint8Array, receivedAt: number) => void,
  onSendError: (error: Error) => void,
): KernelUdpPeer | undefined {
  const opened = openAt(host, port, false);
  if (!opened) return undefined;
  const { socket, c, addr } = opened;
  if (c.connect(socket.fd, addr, addr.length) !== 0) {
    const e = socket.failed(`connect ${host}:${port}`);
    socket.closeNow();
    throw e;
  }
  socket.watch(onMessage, onSendError);
  return {
    drain: () => socket.drain(),
    send: (data) => socket.send(data),
    close: () => socket.close(),
  };
}

/**
 * A socket bound to `host:port` (IPv4) whose datagrams come with the time the system
 * received them and where from: the virtual device's, so that a datagram its process read
 * late still reaches the model when it reached the machine. Undefined where this cannot be
 * had (another system, no FFI permission, not an IPv4 address).
 * @throws An error with the system's `code` (EADDRINUSE, EADDRNOTAVAIL, ...) if it cannot
 * be bound.
 */
export function openKernelUdpServer(
  host: string,
  port: number,
  onMessage: (data: Uint8Array, from: KernelUdpSender, receivedAt: number) => void,
  onSendError: (error: Error) => void,
): KernelUdpServer | undefined {
  const opened = openAt(host, port, true);
  if (!opened) return undefined;
  const { socket, c, addr } = opened;
  const bound = new Uint8Array(16);
  const boundLength = new Uint32Array([bound.length]);
  if (
    c.bind(socket.fd, addr, addr.length) !== 0 ||
    c.getsockname(socket.fd, bound, boundLength) !== 0
  ) {
    const e = socket.failed(`bind ${host}:${port}`);
    socket.closeNow();
    throw e;
  }
  socket.watch((data, receivedAt, from) => onMessage(data, from!, receivedAt), onSendError);
  // Every reply goes where the last one went (one sender at a time): its address as the C
  // library takes it is kept, not made again from the string for each.
  let last: { host: string; port: number; addr: Uint8Array } | undefined;
  return {
    port: (bound[2]! << 8) | bound[3]!,
    drain: () => socket.drain(),
    send(data, toHost, toPort) {
      if (last?.host !== toHost || last.port !== toPort) {
        const to = ipv4(toHost);
        if (!to) {
          onSendError(Object.assign(new Error(`send to ${toHost}: not an IPv4 address`), {
            code: "EINVAL",
          }));
          return;
        }
        last = { host: toHost, port: toPort, addr: sockaddrIn(to, toPort) };
      }
      socket.send(data, last.addr);
    },
    close: () => socket.close(),
  };
}

/** A new timestamped socket and `host:port` as the C library takes it, where that can be had. */
function openAt(host: string, port: number, withSender: boolean) {
  const ip = ipv4(host);
  const lib = ip && libc();
  const socket = lib && TimestampedSocket.open(lib, withSender);
  return socket ? { socket, c: lib.symbols, addr: sockaddrIn(ip, port) } : undefined;
}

type Delivery = (data: Uint8Array, receivedAt: number, from?: KernelUdpSender) => void;

/**
 * A datagram socket with `SO_TIMESTAMPNS`. What has arrived is read by `drain`, each
 * datagram with its time: when the caller asks, and when the process's `Poller` sees it.
 */
class TimestampedSocket {
  readonly fd: number;
  readonly #lib: Libc;
  readonly #receiver: Receiver;
  #deliver: Delivery = () => {};
  #onError: (error: Error) => void = () => {};
  #poller: Poller | undefined;
  #released: Promise<void> | undefined;
  closed = false;

  private constructor(lib: Libc, fd: number, withSender: boolean) {
    this.#lib = lib;
    this.fd = fd;
    this.#receiver = new Receiver(lib, fd, withSender);
  }

  /** A new socket (`withSender`: each datagram with where it came from), or undefined. */
  static open(lib: Libc, withSender: boolean): TimestampedSocket | undefined {
    const c = lib.symbols;
    const fd = c.socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return undefined;
    if (c.setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, new Int32Array([1]), 4) !== 0) {
      c.close(fd);
      return undefined;
    }
    return new TimestampedSocket(lib, fd, withSender);
  }

  /** Sends `data` inside the call, to `to` (a `sockaddr_in`) or where it is connected. */
  send(data: Uint8Array, to?: Uint8Array): void {
    if (this.closed) return;
    const c = this.#lib.symbols;
    const n = to
      ? c.sendto(this.fd, data, BigInt(data.length), 0, to, to.length)
      : c.send(this.fd, data, BigInt(data.length), 0);
    if (n < 0) this.#onError(this.failed("send"));
  }

  failed(what: string): Error {
    return systemError(lastErrno(this.#lib.symbols.errno()), what);
  }

  /** Closes the socket at once (nothing was started on it). */
  closeNow(): void {
    this.closed = true;
    this.#lib.symbols.close(this.fd);
  }

  /** Starts waiting for datagrams: each goes to `deliver`, errors to `onError`. */
  watch(deliver: Delivery, onError: (error: Error) => void): void {
    this.#deliver = deliver;
    this.#onError = onError;
    try {
      this.#poller = Poller.of(this.#lib);
    } catch (e) {
      this.closeNow();
      throw e;
    }
    this.#poller.add(this);
  }

  drain(): void {
    // Closed, the descriptor may already belong to another file.
    if (this.closed) return;
    // Taken anew for each batch, and only for one (a drain before every timed send mostly
    // finds nothing): the system clock may be slewed or set meanwhile.
    let offset: number | undefined;
    for (;;) {
      const r = this.#receiver.read();
      if (r === "empty") return;
      if (r instanceof Error) {
        // ECONNREFUSED here is an ICMP refusal of an earlier datagram: the caller judges it.
        if (!this.closed) this.#onError(r);
        if (r.errno !== ECONNREFUSED) return;
        continue;
      }
      if (!this.closed) {
        this.#deliver(
          r.data,
          Number.isFinite(r.realtimeMs)
            ? r.realtimeMs - (offset ??= realtimeOffset(this.#lib))
            : performance.now(),
          r.from,
        );
      }
    }
  }

  /** Stops delivering at once; resolves once the descriptor is closed. */
  close(): Promise<void> {
    if (!this.#released) {
      this.closed = true;
      this.#released = this.#poller!.remove(this);
    }
    return this.#released;
  }
}

/**
 * One wait for every timestamped socket of this process (this isolate): a `poll` on one of
 * Deno's threads for blocking work (a non-blocking FFI call). Deno gives an isolate 32 such
 * threads, and a file read needs one too: a `poll` per socket held one each for as long as
 * the socket was open, and a process with 32 sockets (a fleet's boards and senders) could
 * read no file. Running while a socket is open; a socket's descriptor is closed only between
 * two waits, never while the other thread still polls it.
 */
class Poller {
  static #current: Poller | undefined;
  readonly #lib: Libc;
  readonly #wake: number;
  readonly #sockets = new Map<number, TimestampedSocket>();
  readonly #closing = new Map<TimestampedSocket, PromiseWithResolvers<void>>();
  #changed = true;
  #running = false;

  private constructor(lib: Libc, wake: number) {
    this.#lib = lib;
    this.#wake = wake;
  }

  /**
   * This process's poller (a new one if none runs; it waits once a socket is added).
   * @throws If the system gives no eventfd (out of descriptors).
   */
  static of(lib: Libc): Poller {
    if (Poller.#current) return Poller.#current;
    const wake = lib.symbols.eventfd(0, EFD_NONBLOCK);
    if (wake < 0) throw systemError(lastErrno(lib.symbols.errno()), "eventfd");
    const poller = new Poller(lib, wake);
    Poller.#current = poller;
    return poller;
  }

  add(socket: TimestampedSocket): void {
    this.#sockets.set(socket.fd, socket);
    this.#changed = true;
    if (this.#running) this.#interrupt();
    else {
      this.#running = true;
      void this.#run();
    }
  }

  remove(socket: TimestampedSocket): Promise<void> {
    this.#sockets.delete(socket.fd);
    const closing = Promise.withResolvers<void>();
    this.#closing.set(socket, closing);
    this.#changed = true;
    this.#interrupt();
    return closing.promise;
  }

  #interrupt(): void {
    this.#lib.symbols.write(this.#wake, new BigUint64Array([1n]), 8n);
  }

  async #run(): Promise<void> {
    const c = this.#lib.symbols;
    // struct pollfd {int fd; short events, revents}: read by the other thread while this
    // one runs on, so off V8's heap (fixed); the wake descriptor first.
    let fds = new Uint8Array(new ArrayBuffer(8));
    let view = new DataView(fds.buffer);
    let watched: TimestampedSocket[] = [];
    for (;;) {
      if (this.#changed) {
        this.#changed = false;
        for (const [socket, closing] of this.#closing) {
          c.close(socket.fd);
          closing.resolve();
        }
        this.#closing.clear();
        if (this.#sockets.size === 0) break;
        watched = [...this.#sockets.values()];
        fds = new Uint8Array(new ArrayBuffer(8 * (watched.length + 1)));
        view = new DataView(fds.buffer);
        [this.#wake, ...watched.map((s) => s.fd)].forEach((fd, i) => {
          view.setInt32(8 * i, fd, true);
          view.setInt16(8 * i + 4, POLLIN, true);
        });
      }
      for (let i = 0; i <= watched.length; i++) view.setInt16(8 * i + 6, 0, true);
      const ready = await c.poll(fds, BigInt(watched.length + 1), -1);
      if (ready < 0) {
        // (Its errno is the other thread's.)
        trace("udp", "poll failed: trying again");
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      if (view.getInt16(6, true) !== 0) c.read(this.#wake, new BigUint64Array(1), 8n);
      watched.forEach((socket, i) => {
        if (view.getInt16(8 * (i + 1) + 6, true) !== 0) socket.drain();
      });
    }
    Poller.#current = undefined;
    c.close(this.#wake);
  }
}

/** CLOCK_REALTIME (what the system stamps datagrams with) minus `performance.now()`, ms. */
function realtimeOffset(lib: Libc): number {
  const ts = new BigInt64Array(2);
  const before = performance.now();
  lib.symbols.clock_gettime(CLOCK_REALTIME, ts);
  const after = performance.now();
  return Number(ts[0]!) * 1000 + Number(ts[1]!) / 1e6 - (before + after) / 2;
}

/**
 * Reads one datagram at a time without waiting, with the time the system received it
 * (CLOCK_REALTIME ms): "empty" if none is there, an Error (with `code`) if the socket
 * reports one.
 */
class Receiver {
  // The message header points at these buffers: each on its own ArrayBuffer (a small typed
  // array made by length lives on V8's heap, where a collection may move it), and each a
  // field, so that none is collected while the header still points at it (the C library
  // would write into freed memory).
  readonly #data = new Uint8Array(new ArrayBuffer(MAX_DATAGRAM));
  readonly #control = new Uint8Array(new ArrayBuffer(64));
  readonly #iov = new BigUint64Array(new ArrayBuffer(16));
  /** struct msghdr: name, namelen, iov, iovlen, control, controllen, flags (56 bytes). */
  readonly #msg = new BigUint64Array(new ArrayBuffer(56));
  /** struct sockaddr_in of the sender, when asked for. */
  readonly #name = new Uint8Array(new ArrayBuffer(16));
  readonly #header: bigint[];
  readonly #cmsg = new DataView(this.#control.buffer);
  readonly #lib: Libc;
  readonly #fd: number;
  readonly #withSender: boolean;

  constructor(lib: Libc, fd: number, withSender: boolean) {
    this.#lib = lib;
    this.#fd = fd;
    this.#withSender = withSender;
    const ptr = (b: BufferSource) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
    this.#iov.set([ptr(this.#data), BigInt(this.#data.length)]);
    this.#header = [
      withSender ? ptr(this.#name) : 0n,
      withSender ? BigInt(this.#name.length) : 0n,
      ptr(this.#iov),
      1n,
      ptr(this.#control),
      BigInt(this.#control.length),
      0n,
    ];
  }

  read():
    | { data: Uint8Array; realtimeMs: number; from?: KernelUdpSender }
    | "empty"
    | ReturnType<typeof systemError> {
    const c = this.#lib.symbols;
    // The system writes back the control length and the flags: set afresh for each call.
    this.#msg.set(this.#header);
    const n = Number(c.recvmsg(this.#fd, this.#msg, MSG_DONTWAIT));
    if (n < 0) {
      const errno = lastErrno(c.errno());
      return errno === EAGAIN ? "empty" : systemError(errno, "receive");
    }
    // struct cmsghdr: len (8 bytes), level, type (4 each), then the timespec.
    const cmsg = this.#cmsg;
    let realtimeMs = NaN;
    const controlLength = Number(this.#msg[5]!);
    for (let at = 0; at + 16 <= controlLength;) {
      const len = Number(cmsg.getBigUint64(at, true));
      if (len < 16) break;
      if (
        cmsg.getInt32(at + 8, true) === SOL_SOCKET &&
        cmsg.getInt32(at + 12, true) === SO_TIMESTAMPNS
      ) {
        realtimeMs = Number(cmsg.getBigInt64(at + 16, true)) * 1000 +
          Number(cmsg.getBigInt64(at + 24, true)) / 1e6;
      }
      at += (len + 7) & ~7;
    }
    const data = this.#data.slice(0, n);
    if (!this.#withSender) return { data, realtimeMs };
    const a = this.#name;
    return {
      data,
      realtimeMs,
      from: { address: a.slice(4, 8).join("."), port: (a[2]! << 8) | a[3]! },
    };
  }
}
