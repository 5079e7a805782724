/**
 * What the sockets and the scheduler calls made through the C library share (FFI:
 * `transfer/kernel_udp.ts`, `transfer/port_refused.ts`, `sim/process_priority.ts`): the
 * error number of the calling thread's last failed call, and its name.
 */

/** Linux's error numbers a caller here may meet, by name (`send_error.ts` reads the name). */
const LINUX_ERRNO: Record<number, string> = {
  1: "EPERM",
  4: "EINTR",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  22: "EINVAL",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  100: "ENETDOWN",
  101: "ENETUNREACH",
  105: "ENOBUFS",
  111: "ECONNREFUSED",
  112: "EHOSTDOWN",
  113: "EHOSTUNREACH",
};

/** The error number at `location` (what `__errno_location` or `__error` returns). */
export function lastErrno(location: Deno.PointerValue): number {
  return new Deno.UnsafePointerView(location!).getInt32();
}

/** Linux error number `errno` by name ("errno N" for one not listed). */
export function errnoName(errno: number): string {
  return LINUX_ERRNO[errno] ?? `errno ${errno}`;
}

/** An Error for a failed call (`what`), with the system's `code` name and `errno`. */
export function systemError(errno: number, what: string): Error & { code: string; errno: number } {
  const code = errnoName(errno);
  return Object.assign(new Error(`${what}: ${code}`), { code, errno });
}
