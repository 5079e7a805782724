/**
 * Who may use the dashboard, decided per request before any route runs. Only the person who
 * started it holds the token, whatever the address:
 *
 * - The token is printed to their terminal and nowhere else: no page, file or API answer
 *   carries it. Every request needs it: once in the address (`?token=…`, which the server
 *   trades for an HttpOnly, same-site-only cookie and takes out of the address bar), then in
 *   that cookie, or in the `X-Yaota-Token` header (a script).
 * - Bound to loopback (127.0.0.1, the default) it also answers only under a loopback `Host`
 *   (a foreign site's name resolved to 127.0.0.1, DNS rebinding, is refused).
 * - A request that changes something is a POST with a JSON body, from our own origin, that
 *   carries either the token header or the page's `X-Yaota-Request` header. A page of another
 *   site can set neither without our consent (which we never give), and its requests do not
 *   carry the cookie, so it cannot start a rollout (CSRF).
 *
 * Pure, apart from `newToken`.
 */

export const TOKEN_HEADER = "x-yaota-token";
/** The header the page sets on its changes: a custom header is not sent cross-site. */
export const REQUEST_HEADER = "x-yaota-request";
export const TOKEN_QUERY = "token";

export interface AccessPolicy {
  /** The address the server listens on, as given (`--host`). */
  host: string;
  port: number;
  token: string;
  /** Bound to loopback: only a loopback `Host` header is answered. */
  loopback: boolean;
}

/** What the policy looks at in a request. */
export interface RequestFacts {
  method: string;
  /** The `Host` header. */
  hostHeader?: string;
  origin?: string;
  /** `Sec-Fetch-Site`, which browsers send: "same-origin", "cross-site", … */
  fetchSite?: string;
  contentType?: string;
  headerToken?: string;
  /** The page's `X-Yaota-Request` header is there. */
  pageHeader?: boolean;
  cookieToken?: string;
  queryToken?: string;
}

export type Verdict =
  /** `tokenInQuery`: answer with the cookie, and send the browser to the address without it. */
  | { ok: true; tokenInQuery: boolean }
  | { ok: false; status: 401 | 403 | 405 | 415; message: string };

/** Whether `host` (a `--host` value) is this machine's loopback only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Whether `host` is a wildcard (`0.0.0.0`, `::`): every address of the machine. */
export function isWildcardHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "0.0.0.0" || h === "::" || h === "0:0:0:0:0:0:0:0";
}

/** The policy for a server at `host:port`. */
export function accessPolicy(host: string, port: number, token: string): AccessPolicy {
  return { host, port, token, loopback: isLoopbackHost(host) };
}

/** The cookie the token becomes: one per port, so two dashboards do not overwrite each other. */
export function tokenCookie(policy: AccessPolicy): string {
  return `yaota_token_${policy.port}`;
}

/** One of the machine's addresses, as `Deno.networkInterfaces()` lists them. */
export interface InterfaceAddress {
  family: "IPv4" | "IPv6";
  address: string;
  /** `scopeid` of an IPv6 address: link-local ones (fe80::) need it and are left out. */
  scopeid?: number | null;
}

function urlHost(host: string): string {
  return host.includes(":") ? `[${host.replace(/^\[|\]$/g, "")}]` : host;
}

/**
 * The addresses a person can open, each with the token: the host given, or, for a wildcard
 * (`0.0.0.0`, `::`), each address of this machine that another device can reach (loopback
 * last; link-local IPv6 left out), from `interfaces`.
 */
export function dashboardUrls(
  policy: AccessPolicy,
  interfaces: readonly InterfaceAddress[] = [],
): string[] {
  const url = (host: string) =>
    `http://${urlHost(host)}:${policy.port}/?${TOKEN_QUERY}=${policy.token}`;
  if (!isWildcardHost(policy.host)) return [url(policy.host)];
  const v6 = policy.host.includes(":");
  const usable = interfaces.filter((i) =>
    (i.family === "IPv4" || v6) && !/^fe80:/i.test(i.address)
  );
  const outside = usable.filter((i) => !isLoopbackHost(i.address)).map((i) => i.address);
  const hosts = [...new Set([...outside, "127.0.0.1"])];
  return hosts.map(url);
}

/** Compares in time that does not depend on where the strings differ. */
export function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined || given.length !== token.length) return false;
  let diff = 0;
  for (let i = 0; i < token.length; i++) diff |= given.charCodeAt(i) ^ token.charCodeAt(i);
  return diff === 0;
}

/** 32 random bytes, base64url: the token of one dashboard run. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function loopbackHostHeaders(policy: AccessPolicy): string[] {
  const names = ["127.0.0.1", "localhost", "[::1]"];
  return [...new Set([...names, urlHost(policy.host)])].map((n) =>
    `${n}:${policy.port}`.toLowerCase()
  );
}

/** The verdict on one request. */
export function checkRequest(policy: AccessPolicy, r: RequestFacts): Verdict {
  const method = r.method.toUpperCase();
  if (method !== "GET" && method !== "HEAD" && method !== "POST") {
    return { ok: false, status: 405, message: `method ${method} is not used by the dashboard` };
  }
  const hostHeader = (r.hostHeader ?? "").toLowerCase();
  if (policy.loopback && !loopbackHostHeaders(policy).includes(hostHeader)) {
    return {
      ok: false,
      status: 403,
      message: `this dashboard answers only at http://127.0.0.1:${policy.port}/ (Host '${
        r.hostHeader ?? ""
      }' refused: another site's name pointing at this machine is not let in)`,
    };
  }
  const byHeader = sameToken(r.headerToken, policy.token);
  const byQuery = sameToken(r.queryToken, policy.token);
  const byCookie = sameToken(r.cookieToken, policy.token);
  if (!byHeader && !byQuery && !byCookie) {
    return {
      ok: false,
      status: 401,
      message: "this dashboard needs its token: open the address printed in the terminal that " +
        `started it (it ends in ?${TOKEN_QUERY}=…), or send the token in the ${TOKEN_HEADER} ` +
        "header",
    };
  }
  if (method === "POST") {
    const origin = r.origin?.toLowerCase();
    const ownOrigin = `http://${hostHeader}`;
    const crossSite = r.fetchSite !== undefined && r.fetchSite !== "same-origin" &&
      r.fetchSite !== "none";
    if ((origin !== undefined && origin !== ownOrigin) || crossSite) {
      return {
        ok: false,
        status: 403,
        message: `refused a request from another site (Origin '${
          r.origin ?? ""
        }'): only the dashboard's own page may change anything`,
      };
    }
    if (!byHeader && !r.pageHeader) {
      return {
        ok: false,
        status: 403,
        message: `a request that changes something needs the ${TOKEN_HEADER} header (a ` +
          `script) or the ${REQUEST_HEADER} header (the dashboard's page sends it)`,
      };
    }
    if (!(r.contentType ?? "").toLowerCase().startsWith("application/json")) {
      return {
        ok: false,
        status: 415,
        message: `send a JSON body (Content-Type: application/json), not '${r.contentType ?? ""}'`,
      };
    }
  }
  return { ok: true, tokenInQuery: byQuery && !byHeader };
}
