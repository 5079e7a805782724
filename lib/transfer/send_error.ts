/**
 * A datagram the system would not send to the device: the address and what to change,
 * at once, instead of a transfer that waits out its timeout. Pure: `udp.ts` hands the
 * error here.
 */
import { AddressError, DeviceUnreachableError, type OtaError } from "../errors.ts";
import { errorCode } from "./listen_error.ts";

/** Errors that may pass (a neighbour not yet resolved, a full buffer): the timers decide. */
const TRANSIENT = new Set([
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENOBUFS",
  "ENOMEM",
  "EAGAIN",
  "EWOULDBLOCK",
  "EINTR",
  "ECONNREFUSED",
]);

/**
 * The typed error for a failed send to `host:port`, or undefined if it may pass.
 * @example
 * ```ts
 * import { sendError } from "./send_error.ts";
 * sendError({ code: "ENETUNREACH" }, "10.9.0.5", 8266)?.message; // "cannot send to 10.9.0.5:8266: ..."
 * ```
 */
export function sendError(e: unknown, host: string, port: number): OtaError | undefined {
  const code = errorCode(e) ?? "UNKNOWN";
  if (TRANSIENT.has(code)) return undefined;
  const where = `${host}:${port}`;
  switch (code) {
    case "ENETUNREACH":
    case "ENETDOWN":
      return new DeviceUnreachableError(
        `cannot send to ${where}: no route from this machine to that network (${code}). ` +
          `Is this machine on the board's network (Wi-Fi, cable, VPN)? Nothing was written.`,
      );
    case "EACCES":
    case "EPERM":
    case "UNKNOWN":
      return new AddressError(
        `cannot send to ${where}: the system refused (${code}: a broadcast address, or a firewall ` +
          `rule). Give one board's address. Nothing was written.`,
      );
    default:
      return new AddressError(
        `cannot send to ${where} (${code}): check the address. Nothing was written.`,
      );
  }
}
