/**
 * IPv4 addresses as the C library takes them, for the sockets opened through it
 * (`port_refused.ts`, `kernel_udp.ts`). Pure.
 */

/**
 * An IPv4 address as four numbers, or undefined if `host` is not one.
 * @example
 * ```ts
 * import { ipv4 } from "./sockaddr.ts";
 * ipv4("192.168.4.1"); // [192, 168, 4, 1]
 * ipv4("::1"); // undefined
 * ```
 */
export function ipv4(host: string): number[] | undefined {
  const ip = host.split(".").map(Number);
  return ip.length === 4 && ip.every((n) => Number.isInteger(n) && n >= 0 && n <= 255)
    ? ip
    : undefined;
}

/** `sockaddr_in` for `ip:port`, as `os` lays it out (macOS starts with its length). */
export function sockaddrIn(ip: number[], port: number, os = Deno.build.os): Uint8Array {
  const a = new Uint8Array(16);
  if (os === "darwin") {
    a[0] = 16;
    a[1] = 2;
  } else {
    a[0] = 2;
  }
  a[2] = port >> 8;
  a[3] = port & 0xff;
  a.set(ip, 4);
  return a;
}
