/**
 * Who may use the dashboard: the policy decided per request (lib/dashboard/access.ts).
 * Real requests against a running server are in server_test.ts.
 */
import { assert, assertEquals } from "../_assert.ts";
import {
  accessPolicy,
  checkRequest,
  dashboardUrl,
  isLoopbackHost,
  newToken,
  sameToken,
} from "../../lib/dashboard/access.ts";

const TOKEN = "t0ken-abcdefghijklmnopqrstuvwxyz0123456789";
const LOCAL = accessPolicy("127.0.0.1", 8267, TOKEN);
const LAN = accessPolicy("0.0.0.0", 8267, TOKEN);
const POST = {
  method: "POST",
  hostHeader: "127.0.0.1:8267",
  origin: "http://127.0.0.1:8267",
  fetchSite: "same-origin",
  contentType: "application/json",
  headerToken: TOKEN,
};

Deno.test("isLoopbackHost() is true for 127.0.0.0/8, ::1 and localhost only", () => {
  for (const h of ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]) {
    assert(isLoopbackHost(h), h);
  }
  for (const h of ["0.0.0.0", "192.168.1.5", "::", "example.com", "128.0.0.1"]) {
    assert(!isLoopbackHost(h), h);
  }
  assertEquals(LOCAL.tokenForAll, false);
  assertEquals(LAN.tokenForAll, true);
});

Deno.test("dashboardUrl() carries the token only when every request needs it", () => {
  assertEquals(dashboardUrl(LOCAL), "http://127.0.0.1:8267/");
  assertEquals(dashboardUrl(LAN), `http://0.0.0.0:8267/?token=${TOKEN}`);
  assertEquals(dashboardUrl(accessPolicy("::1", 9000, TOKEN)), "http://[::1]:9000/");
});

Deno.test("newToken() makes a different 43-character base64url token each time", () => {
  const a = newToken();
  const b = newToken();
  assert(/^[A-Za-z0-9_-]{43}$/.test(a), a);
  assert(a !== b);
  assert(sameToken(a, a));
  assert(!sameToken(b, a));
  assert(!sameToken(undefined, a));
  assert(!sameToken(a.slice(1), a));
});

Deno.test("checkRequest() on loopback lets a page read without the token, under a loopback Host only", () => {
  for (const host of ["127.0.0.1:8267", "localhost:8267", "[::1]:8267"]) {
    assertEquals(checkRequest(LOCAL, { method: "GET", hostHeader: host }), {
      ok: true,
      tokenInQuery: false,
    });
  }
  // Another site's name resolved to 127.0.0.1 (DNS rebinding) must not read the page and its token.
  const rebound = checkRequest(LOCAL, { method: "GET", hostHeader: "evil.example:8267" });
  assertEquals(rebound, {
    ok: false,
    status: 403,
    message:
      "this dashboard answers only at http://127.0.0.1:8267/ (Host 'evil.example:8267' refused: " +
      "another site's name pointing at this machine is not let in)",
  });
  assertEquals(checkRequest(LOCAL, { method: "GET", hostHeader: "127.0.0.1:9999" }).ok, false);
  assertEquals(checkRequest(LOCAL, { method: "GET" }).ok, false);
});

Deno.test("checkRequest() refuses a change without the token header, even with the cookie", () => {
  assertEquals(checkRequest(LOCAL, POST), { ok: true, tokenInQuery: false });
  const { headerToken: _, ...noToken } = POST;
  assertEquals(checkRequest(LOCAL, { ...noToken, cookieToken: TOKEN, queryToken: TOKEN }), {
    ok: false,
    status: 403,
    message: "a request that changes something needs the dashboard's token in the " +
      "x-yaota-token header (the dashboard's page sends it)",
  });
  assertEquals(checkRequest(LOCAL, { ...POST, headerToken: "wrong" }).ok, false);
});

Deno.test("checkRequest() refuses a change from another site, by Origin or Sec-Fetch-Site", () => {
  assertEquals(checkRequest(LOCAL, { ...POST, origin: "https://evil.example" }), {
    ok: false,
    status: 403,
    message: "refused a request from another site (Origin 'https://evil.example'): only the " +
      "dashboard's own page may change anything",
  });
  assertEquals(
    checkRequest(LOCAL, { ...POST, origin: undefined, fetchSite: "cross-site" }).ok,
    false,
  );
  assertEquals(checkRequest(LOCAL, { ...POST, fetchSite: "same-site" }).ok, false);
  // A script (no browser headers) with the token is let in.
  assertEquals(
    checkRequest(LOCAL, { ...POST, origin: undefined, fetchSite: undefined }),
    { ok: true, tokenInQuery: false },
  );
});

Deno.test("checkRequest() takes only JSON bodies for changes (no form posts)", () => {
  assertEquals(checkRequest(LOCAL, { ...POST, contentType: "application/x-www-form-urlencoded" }), {
    ok: false,
    status: 415,
    message: "send a JSON body (Content-Type: application/json), not " +
      "'application/x-www-form-urlencoded'",
  });
  assertEquals(checkRequest(LOCAL, { ...POST, contentType: undefined }).ok, false);
});

Deno.test("checkRequest() refuses methods the dashboard does not use", () => {
  assertEquals(checkRequest(LOCAL, { method: "DELETE", hostHeader: "127.0.0.1:8267" }), {
    ok: false,
    status: 405,
    message: "method DELETE is not used by the dashboard",
  });
});

Deno.test("checkRequest() beyond loopback refuses every request without the token", () => {
  const message = "this dashboard listens on 0.0.0.0, beyond this machine: every request needs " +
    "its token. Open the address printed when it started (it ends in ?token=…), or send the " +
    "token in the x-yaota-token header.";
  for (const path of [{ method: "GET" }, { method: "HEAD" }, { method: "POST" }]) {
    assertEquals(checkRequest(LAN, { ...path, hostHeader: "192.168.1.5:8267" }), {
      ok: false,
      status: 401,
      message,
    });
  }
  assertEquals(
    checkRequest(LAN, { method: "GET", hostHeader: "192.168.1.5:8267", cookieToken: "nope" }).ok,
    false,
  );
  // Any name for the machine will do once the token is there.
  const host = "192.168.1.5:8267";
  assertEquals(checkRequest(LAN, { method: "GET", hostHeader: host, queryToken: TOKEN }), {
    ok: true,
    tokenInQuery: true,
  });
  assertEquals(checkRequest(LAN, { method: "GET", hostHeader: host, cookieToken: TOKEN }), {
    ok: true,
    tokenInQuery: false,
  });
  assertEquals(
    checkRequest(LAN, {
      ...POST,
      hostHeader: host,
      origin: `http://${host}`,
    }),
    { ok: true, tokenInQuery: false },
  );
});
