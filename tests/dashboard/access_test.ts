/**
 * Who may use the dashboard: the policy decided per request (lib/dashboard/access.ts).
 * Real requests against a running server are in server_test.ts.
 */
import { assert, assertEquals } from "../_assert.ts";
import {
  accessPolicy,
  checkRequest,
  dashboardUrls,
  isLoopbackHost,
  isWildcardHost,
  newToken,
  sameToken,
  tokenCookie,
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
/** A change as the page sends it: the token in the cookie, and the page's request header. */
const PAGE_POST = { ...POST, headerToken: undefined, cookieToken: TOKEN, pageHeader: true };
const NO_TOKEN = "this dashboard needs its token: open the address printed in the terminal " +
  "that started it (it ends in ?token=…), or send the token in the x-yaota-token header";

Deno.test("isLoopbackHost() is true for 127.0.0.0/8, ::1 and localhost only", () => {
  for (const h of ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]) {
    assert(isLoopbackHost(h), h);
  }
  for (const h of ["0.0.0.0", "192.168.1.5", "::", "example.com", "128.0.0.1"]) {
    assert(!isLoopbackHost(h), h);
  }
  assertEquals([LOCAL.loopback, LAN.loopback], [true, false]);
  assertEquals(["0.0.0.0", "::", "[::]", "192.168.1.5"].map(isWildcardHost), [
    true,
    true,
    true,
    false,
  ]);
});

Deno.test("dashboardUrls() carries the token in every mode", () => {
  assertEquals(dashboardUrls(LOCAL), [`http://127.0.0.1:8267/?token=${TOKEN}`]);
  assertEquals(dashboardUrls(accessPolicy("::1", 9000, TOKEN)), [
    `http://[::1]:9000/?token=${TOKEN}`,
  ]);
  assertEquals(dashboardUrls(accessPolicy("192.168.1.5", 9000, TOKEN)), [
    `http://192.168.1.5:9000/?token=${TOKEN}`,
  ]);
});

Deno.test("dashboardUrls() for 0.0.0.0 names this machine's addresses, not 0.0.0.0", () => {
  const interfaces = [
    { family: "IPv4" as const, address: "127.0.0.1" },
    { family: "IPv4" as const, address: "192.168.1.23" },
    { family: "IPv6" as const, address: "fe80::1", scopeid: 2 },
    { family: "IPv6" as const, address: "2001:db8::5", scopeid: 0 },
    { family: "IPv4" as const, address: "10.8.0.2" },
  ];
  assertEquals(dashboardUrls(LAN, interfaces), [
    `http://192.168.1.23:8267/?token=${TOKEN}`,
    `http://10.8.0.2:8267/?token=${TOKEN}`,
    `http://127.0.0.1:8267/?token=${TOKEN}`,
  ]);
  // Bound to "::": IPv6 addresses too (link-local ones need a zone a browser does not take).
  assertEquals(dashboardUrls(accessPolicy("::", 8267, TOKEN), interfaces), [
    `http://192.168.1.23:8267/?token=${TOKEN}`,
    `http://[2001:db8::5]:8267/?token=${TOKEN}`,
    `http://10.8.0.2:8267/?token=${TOKEN}`,
    `http://127.0.0.1:8267/?token=${TOKEN}`,
  ]);
  // No address could be listed: loopback at least is an address that opens.
  assertEquals(dashboardUrls(LAN, []), [`http://127.0.0.1:8267/?token=${TOKEN}`]);
  assertEquals(tokenCookie(LAN), "yaota_token_8267");
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

Deno.test("checkRequest() on loopback refuses a request without the token: another local user cannot read the page", () => {
  for (const method of ["GET", "HEAD", "POST"]) {
    assertEquals(checkRequest(LOCAL, { method, hostHeader: "127.0.0.1:8267" }), {
      ok: false,
      status: 401,
      message: NO_TOKEN,
    });
  }
  const { headerToken: _, ...noToken } = POST;
  assertEquals(checkRequest(LOCAL, { ...noToken, pageHeader: true }).ok, false);
  assertEquals(
    checkRequest(LOCAL, { ...noToken, cookieToken: "guess", pageHeader: true }).ok,
    false,
  );
});

Deno.test("checkRequest() on loopback lets the token in, under a loopback Host only", () => {
  for (const host of ["127.0.0.1:8267", "localhost:8267", "[::1]:8267"]) {
    assertEquals(checkRequest(LOCAL, { method: "GET", hostHeader: host, cookieToken: TOKEN }), {
      ok: true,
      tokenInQuery: false,
    });
  }
  assertEquals(
    checkRequest(LOCAL, { method: "GET", hostHeader: "127.0.0.1:8267", queryToken: TOKEN }),
    { ok: true, tokenInQuery: true },
  );
  // Another site's name resolved to 127.0.0.1 (DNS rebinding) is refused, token or not.
  const rebound = checkRequest(LOCAL, {
    method: "GET",
    hostHeader: "evil.example:8267",
    cookieToken: TOKEN,
  });
  assertEquals(rebound, {
    ok: false,
    status: 403,
    message:
      "this dashboard answers only at http://127.0.0.1:8267/ (Host 'evil.example:8267' refused: " +
      "another site's name pointing at this machine is not let in)",
  });
  assertEquals(
    checkRequest(LOCAL, { method: "GET", hostHeader: "127.0.0.1:9999", cookieToken: TOKEN }).ok,
    false,
  );
  assertEquals(checkRequest(LOCAL, { method: "GET", cookieToken: TOKEN }).ok, false);
});

Deno.test("checkRequest() takes a change with the token header (a script) or the cookie and the page's header", () => {
  assertEquals(checkRequest(LOCAL, POST), { ok: true, tokenInQuery: false });
  assertEquals(checkRequest(LOCAL, PAGE_POST), { ok: true, tokenInQuery: false });
  // The cookie alone is what a cross-site form would carry: refused without the page's header.
  assertEquals(checkRequest(LOCAL, { ...PAGE_POST, pageHeader: false }), {
    ok: false,
    status: 403,
    message: "a request that changes something needs the x-yaota-token header (a script) or " +
      "the x-yaota-request header (the dashboard's page sends it)",
  });
  assertEquals(checkRequest(LOCAL, { ...POST, headerToken: "wrong" }).ok, false);
});

Deno.test("checkRequest() refuses a change from another site, by Origin or Sec-Fetch-Site", () => {
  for (const change of [POST, PAGE_POST]) {
    assertEquals(checkRequest(LOCAL, { ...change, origin: "https://evil.example" }), {
      ok: false,
      status: 403,
      message: "refused a request from another site (Origin 'https://evil.example'): only the " +
        "dashboard's own page may change anything",
    });
    assertEquals(
      checkRequest(LOCAL, { ...change, origin: undefined, fetchSite: "cross-site" }).ok,
      false,
    );
    assertEquals(checkRequest(LOCAL, { ...change, fetchSite: "same-site" }).ok, false);
  }
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

Deno.test("checkRequest() beyond loopback takes any name for the machine, with the token", () => {
  const host = "192.168.1.5:8267";
  for (const method of ["GET", "HEAD", "POST"]) {
    assertEquals(checkRequest(LAN, { method, hostHeader: host }), {
      ok: false,
      status: 401,
      message: NO_TOKEN,
    });
  }
  assertEquals(
    checkRequest(LAN, { method: "GET", hostHeader: host, cookieToken: "nope" }).ok,
    false,
  );
  assertEquals(checkRequest(LAN, { method: "GET", hostHeader: host, queryToken: TOKEN }), {
    ok: true,
    tokenInQuery: true,
  });
  assertEquals(checkRequest(LAN, { method: "GET", hostHeader: host, cookieToken: TOKEN }), {
    ok: true,
    tokenInQuery: false,
  });
  assertEquals(
    checkRequest(LAN, { ...PAGE_POST, hostHeader: host, origin: `http://${host}` }),
    { ok: true, tokenInQuery: false },
  );
});
