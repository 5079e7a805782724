/**
 * Does a host refuse UDP on a port? A board running its app, not the OTA server, answers
 * a datagram to 8266 with an ICMP port-unreachable (lwIP does; docs/device.md, "Asking
 * whether a device is in OTA mode"). Only a connected socket hears of it, as
 * ECONNREFUSED on its next call, and Deno's sockets do not connect UDP: this opens one
 * through the C library (Linux, macOS). The datagram sent is one byte: the OTA server
 * drops anything under 12 bytes without a word ("Packet too short"), so asking changes
 * nothing on a board that is in OTA mode.
 */

import { ipv4, sockaddrIn } from "./sockaddr.ts";
import { lastErrno } from "../_libc.ts";

const LINUX = { errno: "__errno_location", refused: 111, again: 11, dontWait: 0x40 } as const;
const DARWIN = { errno: "__error", refused: 61, again: 35, dontWait: 0x80 } as const;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS & { errno: { parameters: []; result: "pointer" } }>;

let opened: { lib: Libc; os: typeof LINUX | typeof DARWIN } | null | undefined;

function libc(): { lib: Libc; os: typeof LINUX | typeof DARWIN } | null {
  if (opened !== undefined) return opened;
  const os = Deno.build.os === "linux" ? LINUX : Deno.build.os === "darwin" ? DARWIN : undefined;
  const path = Deno.build.os === "linux" ? "libc.so.6" : "libSystem.B.dylib";
  try {
    if (!os) throw new Error("unsupported");
    const lib = Deno.dlopen(path, {
      ...SYMBOLS,
      errno: { name: os.errno, parameters: [], result: "pointer" },
    }) as Libc;
    opened = { lib, os };
  } catch {
    // No FFI permission, another system, another C library: the caller waits instead.
    opened = null;
  }
  return opened;
}

/**
 * Sends one byte to `host:port` (an IPv4 address) on a connected socket and listens for
 * a refusal for up to `waitMs`. True: the host refused (its port is closed); false: no
 * refusal in that time (the port is open, or nothing answered); undefined: this system
 * cannot tell (no FFI, not IPv4).
 */
export async function udpPortRefused(
  host: string,
  port: number,
  options: { waitMs?: number; signal?: AbortSignal } = {},
): Promise<boolean | undefined> {
  const ip = ipv4(host);
  if (!ip) return undefined;
  const c = libc();
  if (!c) return undefined;
  const { lib, os } = c;
  const errno = () => lastErrno(lib.symbols.errno());
  const fd = lib.symbols.socket(2, 2, 0); // AF_INET, SOCK_DGRAM
  if (fd < 0) return undefined;
  try {
    const addr = sockaddrIn(ip, port);
    if (lib.symbols.connect(fd, addr, addr.length) !== 0) return undefined;
    if (lib.symbols.send(fd, new Uint8Array([0]), 1n, 0) < 0) {
      return errno() === os.refused ? true : undefined;
    }
    const buffer = new Uint8Array(64);
    const until = performance.now() + (options.waitMs ?? 500);
    for (;;) {
      const n = lib.symbols.recv(fd, buffer, BigInt(buffer.length), os.dontWait);
      if (n < 0) {
        const e = errno();
        if (e === os.refused) return true;
        if (e !== os.again) return undefined;
      }
      if (performance.now() >= until || options.signal?.aborted) return false;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    lib.symbols.close(fd);
  }
}
