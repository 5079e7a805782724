/**
 * Who may use the dashboard, decided per request before any route runs. Safe by default:
 *
 * - Bound to loopback (127.0.0.1, the default), a page reads freely, but only under a
 *   loopback `Host` (a foreign site's name resolved to 127.0.0.1, DNS rebinding, is refused).
 * - Bound beyond loopback, every request carries the token printed at start: in the
 *   `X-Yaota-Token` header, or once in the address (`?token=…`, which becomes a
 *   same-site-only cookie), or in that cookie.
 * - A request that changes something is a POST with a JSON body and the token in the
 *   header, from our own origin. A page of another site can neither read the token nor set
 *   the header without our consent (which we never give), so it cannot start a rollout (CSRF).
 *
 * Pure, apart from `newToken`.
 */

export const TOKEN_HEADER = "x-yaota-token";
export const TOKEN_COOKIE = "yaota_token";
export const TOKEN_QUERY = "token";

export interface AccessPolicy {
  /** The address the server listens on, as given (`--host`). */
  host: string;
  port: number;
  token: string;
  /** Listening beyond loopback: every request needs the token. */
  tokenForAll: boolean;
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

/** The policy for a server at `host:port`. */
export function accessPolicy(host: string, port: number, token: string): AccessPolicy {
  return { host, port, token, tokenForAll: !isLoopbackHost(host) };
}

/** The address a person opens (with the token in it when every request needs it). */
export function dashboardUrl(policy: AccessPolicy): string {
  const host = policy.host.includes(":") ? `[${policy.host}]` : policy.host;
  const base = `http://${host}:${policy.port}/`;
  return policy.tokenForAll ? `${base}?${TOKEN_QUERY}=${policy.token}` : base;
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
  const own = policy.host.includes(":") ? `[${policy.host}]` : policy.host;
  return [...new Set([...names, own])].map((n) => `${n}:${policy.port}`.toLowerCase());
}

/** The verdict on one request. */
export function checkRequest(policy: AccessPolicy, r: RequestFacts): Verdict {
  const method = r.method.toUpperCase();
  if (method !== "GET" && method !== "HEAD" && method !== "POST") {
    return { ok: false, status: 405, message: `method ${method} is not used by the dashboard` };
  }
  const hostHeader = (r.hostHeader ?? "").toLowerCase();
  if (!policy.tokenForAll && !loopbackHostHeaders(policy).includes(hostHeader)) {
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
  const anyToken = byHeader || byQuery || sameToken(r.cookieToken, policy.token);
  if (policy.tokenForAll && !anyToken) {
    return {
      ok: false,
      status: 401,
      message: `this dashboard listens on ${policy.host}, beyond this machine: every request ` +
        "needs its token. Open the address printed when it started (it ends in ?token=…), or " +
        `send the token in the ${TOKEN_HEADER} header.`,
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
    if (!byHeader) {
      return {
        ok: false,
        status: 403,
        message: `a request that changes something needs the dashboard's token in the ` +
          `${TOKEN_HEADER} header (the dashboard's page sends it)`,
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
