/**
 * The IPv4 address to send a board's datagrams to: the address itself, or a host name's
 * lookup (the system resolver: /etc/hosts, mDNS, DNS), checked with the same rules.
 * A lookup that fails is reported at once, with the name, instead of a transfer that
 * waits out its timeout.
 */
import { lookup } from "node:dns/promises";
import { AddressError } from "../errors.ts";
import { addressKind, deviceAddressProblem, ipv4Problem } from "../config/device_address.ts";
import { errorCode } from "./listen_error.ts";

/** A lookup that takes longer has failed (the resolver's own retries take ~10 s). */
export const LOOKUP_TIMEOUT_MS = 15000;

/**
 * @throws {AddressError} If `host` is not one board's address, does not resolve to an
 *   IPv4 address, or resolves to one that is not one board's.
 */
export async function resolveDeviceAddress(
  host: string,
  timeoutMs = LOOKUP_TIMEOUT_MS,
): Promise<string> {
  const problem = deviceAddressProblem(host);
  if (problem) throw new AddressError(`the device address ${problem}.`);
  if (addressKind(host) === "ipv4") return host;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let address: string;
  try {
    const found = await Promise.race([
      lookup(host, { family: 4 }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(Object.assign(new Error("timeout"), { code: "ETIMEOUT" })),
          timeoutMs,
        );
      }),
    ]);
    address = found.address;
  } catch (e) {
    throw new AddressError(lookupFailure(host, errorCode(e), timeoutMs));
  } finally {
    clearTimeout(timer);
  }
  const resolved = ipv4Problem(address);
  if (resolved) throw new AddressError(`'${host}' resolves to ${resolved}.`);
  return address;
}

function lookupFailure(host: string, code: string | undefined, timeoutMs: number): string {
  const advice = "check the name, or give the board's IPv4 address (e.g. --ip 192.168.1.20)";
  switch (code) {
    case "ENOTFOUND":
    case "EAI_NONAME":
    case "ENODATA":
      return `cannot resolve '${host}': no such host name (or it has no IPv4 address): ${advice}.`;
    case "EAI_AGAIN":
    case "ETIMEOUT":
    case "ESERVFAIL":
    case "ECONNREFUSED":
      return `cannot resolve '${host}': the name server did not answer${
        code === "ETIMEOUT" ? ` within ${timeoutMs / 1000} s` : ""
      }. Check this machine's network, or give the board's IPv4 address.`;
    default:
      return `cannot resolve '${host}' (${code ?? "lookup failed"}): ${advice}.`;
  }
}
