/**
 * Is this text a usable address for one yaota8266 board? One check for every place an
 * address comes from (`--ip`, the config's `ip` and `devices[].ip`, a name's lookup).
 * The ota-server listens on IPv4 only (lwIP, `udp_bind(IP_ADDR_ANY, 8266)`) and answers
 * the one sender of each datagram: a broadcast, multicast or unspecified address is
 * never one board. Pure: the lookup of a host name is in `resolve_device.ts`.
 */

export type AddressKind = "ipv4" | "name";

const DOTTED = /^[0-9.]+$/;
const LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** The four numbers of a dotted-quad IPv4 address, or undefined. */
export function parseIpv4(text: string): [number, number, number, number] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const numbers = parts.map((p) =>
    // No leading zeros: the C resolver reads "010" as octal 8.
    /^(0|[1-9][0-9]{0,2})$/.test(p) ? Number(p) : NaN
  );
  if (numbers.some((n) => !(n >= 0 && n <= 255))) return undefined;
  return numbers as [number, number, number, number];
}

/** Why an IPv4 address is not one board's, or undefined if it may be. */
export function ipv4Problem(address: string): string | undefined {
  const n = parseIpv4(address);
  if (!n) return `'${address}' is not an IPv4 address`;
  const [a] = n;
  if (address === "0.0.0.0") {
    return `'${address}' is the unspecified address (it means "any address of this machine"), ` +
      `not a board`;
  }
  if (a === 0) return `'${address}' is in 0.0.0.0/8 ("this network"), not a board's address`;
  if (address === "255.255.255.255") {
    return `'${address}' is the broadcast address, not one board (yaota8266 answers one ` +
      `sender and updates one board)`;
  }
  if (a >= 224 && a <= 239) return `'${address}' is a multicast address, not one board`;
  if (a >= 240) return `'${address}' is in the reserved range 240.0.0.0/4, not a board's address`;
  return undefined;
}

/**
 * Why `text` cannot name one yaota8266 board, or undefined if it can (an IPv4 address
 * of one host, or a host name to look up).
 * @example
 * ```ts
 * import { deviceAddressProblem } from "./device_address.ts";
 * deviceAddressProblem("192.168.1.20"); // undefined
 * deviceAddressProblem("999.1.1.1"); // "'999.1.1.1' is not an IPv4 address: ..."
 * ```
 */
export function deviceAddressProblem(text: string): string | undefined {
  if (text.trim() === "") return "is empty: give the board's IPv4 address or host name";
  if (text !== text.trim() || /\s/.test(text)) return `'${text}' contains spaces`;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    return `'${text}' is a URL: give the board's address alone, e.g. 192.168.1.20`;
  }
  const withPort = /^(.+):(\d+)$/.exec(text);
  if (withPort && !withPort[1]!.includes(":")) {
    return `'${text}' carries a port: give the address alone ('${
      withPort[1]
    }') and the port with ` +
      `--device-port (or "port" in the config)`;
  }
  if (text.includes(":") || text.startsWith("[")) {
    return `'${text}' is an IPv6 address: yaota8266 listens on IPv4 only; give the board's IPv4 address`;
  }
  if (DOTTED.test(text)) {
    if (!parseIpv4(text)) {
      return `'${text}' is not an IPv4 address: it takes four numbers from 0 to 255 ` +
        `(no leading zeros), e.g. 192.168.1.20`;
    }
    const problem = ipv4Problem(text);
    return problem && `${problem}: give the board's own address, e.g. 192.168.1.20`;
  }
  const name = text.endsWith(".") ? text.slice(0, -1) : text;
  if (name.length > 253 || !name.split(".").every((label) => LABEL.test(label))) {
    return `'${text}' is neither an IPv4 address nor a host name`;
  }
  return undefined;
}

/** "ipv4" for a dotted-quad address, "name" for a host name (to be looked up). */
export function addressKind(text: string): AddressKind {
  return parseIpv4(text) ? "ipv4" : "name";
}
