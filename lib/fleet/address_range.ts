/**
 * The addresses `scan` asks: an IPv4 CIDR block (`192.168.1.0/24`) or a range
 * (`192.168.1.10-192.168.1.50`, or `192.168.1.10-50` within the last octet). Only private
 * networks unless asked (a scan of someone else's addresses is not ours to make), and at
 * most a cap of addresses. Pure.
 */
import { UsageError } from "../errors.ts";

/** The default cap: a /22, four rooms' worth of /24s. */
export const DEFAULT_MAX_ADDRESSES = 1024;
/** The cap may be raised this far (a /16). */
export const MAX_ADDRESSES_LIMIT = 65536;

/** Networks a scan may cover without `--allow-public`, as [first address, prefix length]. */
const PRIVATE_BLOCKS: readonly [string, number, string][] = [
  ["10.0.0.0", 8, "private (RFC 1918)"],
  ["172.16.0.0", 12, "private (RFC 1918)"],
  ["192.168.0.0", 16, "private (RFC 1918)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["100.64.0.0", 10, "shared (carrier-grade NAT, RFC 6598)"],
];

/** `a.b.c.d` as a 32-bit number, or undefined. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    return undefined;
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

const maskOf = (prefix: number) => prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;

/** An inclusive range of addresses, as numbers. */
export interface AddressRange {
  first: number;
  last: number;
  /** As the user wrote it. */
  text: string;
}

const HELP = "give a CIDR block (192.168.1.0/24) or a range (192.168.1.10-192.168.1.50 or " +
  "192.168.1.10-50)";

/**
 * Parses a CIDR block or a range. A block of /30 or wider leaves out its network and
 * broadcast addresses, as no board holds them.
 * @throws {UsageError}
 */
export function parseAddressRange(text: string): AddressRange {
  const cidr = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  if (cidr) {
    const base = parseIpv4(cidr[1]!);
    const prefix = Number(cidr[2]);
    if (base === undefined || prefix > 32) throw new UsageError(`'${text}': ${HELP}`);
    const network = (base & maskOf(prefix)) >>> 0;
    const broadcast = (network | ~maskOf(prefix)) >>> 0;
    if (prefix <= 30) return { first: network + 1, last: broadcast - 1, text };
    return { first: network, last: broadcast, text };
  }
  const range = /^([\d.]+)-([\d.]+)$/.exec(text);
  if (range) {
    const first = parseIpv4(range[1]!);
    const tail = range[2]!;
    const last = /^\d{1,3}$/.test(tail) && first !== undefined && Number(tail) <= 255
      ? ((first & 0xffffff00) >>> 0) + Number(tail)
      : parseIpv4(tail);
    if (first === undefined || last === undefined) throw new UsageError(`'${text}': ${HELP}`);
    if (last < first) {
      throw new UsageError(`'${text}': the range ends before it starts: ${HELP}`);
    }
    return { first, last, text };
  }
  const single = parseIpv4(text);
  if (single !== undefined) return { first: single, last: single, text };
  throw new UsageError(`'${text}': ${HELP}`);
}

/** The private block `n` is in (its index), or -1 for a public address. */
function blockOf(n: number): number {
  return PRIVATE_BLOCKS.findIndex(([base, prefix]) =>
    ((n & maskOf(prefix)) >>> 0) === parseIpv4(base)
  );
}

/** The kind of private network `n` is in, or undefined for a public address. Pure. */
export function privateKind(n: number): string | undefined {
  return PRIVATE_BLOCKS[blockOf(n)]?.[2];
}

/**
 * The addresses to scan, after the checks: private networks only unless `allowPublic`,
 * at most `maxAddresses`.
 * @throws {UsageError}
 */
export function scanAddresses(
  ranges: readonly AddressRange[],
  options: { allowPublic?: boolean; maxAddresses?: number } = {},
): string[] {
  const max = options.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
  const total = ranges.reduce((n, r) => n + (r.last - r.first + 1), 0);
  if (total > max) {
    throw new UsageError(
      `${total} addresses to scan, more than the cap of ${max}: scan a smaller range ` +
        `(a /24 is 254), or raise the cap with --max-addresses N (at most ${MAX_ADDRESSES_LIMIT})`,
    );
  }
  if (!options.allowPublic) {
    for (const r of ranges) {
      for (const n of [r.first, r.last]) {
        if (!privateKind(n)) {
          throw new UsageError(
            `'${r.text}' holds the public address ${formatIpv4(n)}: scan is for your own ` +
              "network (10/8, 172.16/12, 192.168/16, 127/8, 169.254/16, 100.64/10); " +
              "if that network is yours, add --allow-public",
          );
        }
      }
      // Both ends private, but in two blocks: the addresses between are public.
      if (blockOf(r.first) !== blockOf(r.last)) {
        throw new UsageError(
          `'${r.text}' spans more than one network: scan each private block on its own`,
        );
      }
    }
  }
  const seen = new Set<string>();
  const out: string[] = [];
  for (const r of ranges) {
    for (let n = r.first; n <= r.last; n++) {
      const ip = formatIpv4(n);
      if (!seen.has(ip)) {
        seen.add(ip);
        out.push(ip);
      }
    }
  }
  return out;
}
