/**
 * The dashboard's HTTP API over a fake `FleetPort`, with real requests on 127.0.0.1:
 * routes, the token, one rollout at a time, the event stream, and the report kept in
 * memory and on disk.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { tempDir } from "../_helpers.ts";
import { fakePort, get, post, readStream, serve, TOKEN } from "./_dashboard.ts";
import type { RolloutView } from "../../lib/dashboard/rollout_view.ts";
import type { RolloutEvent } from "../../lib/dashboard/port.ts";
import { readReport, reportPath, writeReport } from "../../lib/dashboard/report_store.ts";
import { TOKEN_HEADER } from "../../lib/dashboard/access.ts";

const FLEET = { target: { kind: "fleet" }, canary: 1, maxFailures: null, retries: 1 };
const CONFIRM = { boards: ["a", "b"], build: "abc123def456 (1.1.0)" };

async function body(r: Response): Promise<Record<string, unknown>> {
  return await r.json();
}

Deno.test("the dashboard serves its page (which never carries the token) with strict headers, its files, nothing else", async () => {
  await using s = await serve(fakePort());
  const page = await get(s.base, "/");
  assertEquals(page.status, 200);
  const html = await page.text();
  assert(!html.includes(TOKEN), "the page does not carry the token");
  assertStringIncludes(html, '<script src="/static/app.js" defer></script>');
  assertStringIncludes(page.headers.get("content-security-policy")!, "frame-ancestors 'none'");
  assertStringIncludes(page.headers.get("content-security-policy")!, "script-src 'self'");
  assertEquals(page.headers.get("x-frame-options"), "DENY");
  const js = await get(s.base, "/static/app.js");
  assertEquals([js.status, js.headers.get("content-type")], [
    200,
    "text/javascript; charset=utf-8",
  ]);
  assertStringIncludes(await js.text(), 'new EventSource("/api/stream")');
  const names = ["server.ts", "..%2fserver.ts", "constructor", "__proto__", "toString"]
    .concat(["hasOwnProperty", "valueOf"]);
  for (const path of [...names.map((n) => `/static/${n}`), "/deno.json", "/api/nope"]) {
    const r = await get(s.base, path);
    assertEquals(r.status, 404, path);
    assertEquals((await body(r)).error, `no page or API at '${new URL(s.base + path).pathname}'`);
  }
  const put = await get(s.base, "/api/state", { method: "PUT" });
  assertEquals([put.status, (await body(put)).error], [
    405,
    "method PUT is not used by the dashboard",
  ]);
  const getChange = await get(s.base, "/api/rollout");
  assertEquals([getChange.status, (await body(getChange)).error], [
    405,
    "GET /api/rollout is not used",
  ]);
});

Deno.test("GET /api/state gives the boards, the build, the releases and no rollout yet", async () => {
  await using s = await serve(fakePort(), { refreshMs: 15000 });
  const state = await body(await get(s.base, "/api/state"));
  assertEquals(
    (state.boards as { name: string }[]).map((b) => b.name),
    ["a", "b"],
  );
  assertEquals((state.build as { label: string }).label, "abc123def456 (1.1.0)");
  assertEquals((state.releases as { id: string }[]).map((r) => r.id), [
    "0ld0ld0ld0ld",
    "abc123def456",
  ]);
  assertEquals([state.rollout, state.checkedAt, state.refreshSeconds], [null, null, 15]);
  const refreshed = await body(await post(s.base, "/api/refresh"));
  assertEquals(
    (refreshed.boards as { state: string }[]).map((b) => b.state),
    ["app", "app"],
  );
  assertMatch(String(refreshed.checkedAt), /^\d{4}-\d\d-\d\dT/);
});

for (const host of ["127.0.0.1", "0.0.0.0"]) {
  Deno.test(`bound to ${host}, a request without the token is refused (another local user's curl too); ?token= becomes an HttpOnly cookie`, async () => {
    await tokenOnly(host);
  });
}

async function tokenOnly(host: string) {
  const port = fakePort();
  await using s = await serve(port, { host });
  for (const path of ["/", "/index.html", "/static/app.js", "/api/state", "/api/stream"]) {
    const r = await fetch(`${s.base}${path}`);
    assertEquals(r.status, 401, path);
    const text = await r.text();
    assert(!text.includes(TOKEN), path);
    assertStringIncludes(text, "this dashboard needs its token: open the address printed");
  }
  const wrong = await fetch(`${s.base}/api/state`, { headers: { [TOKEN_HEADER]: "guess" } });
  assertEquals(wrong.status, 401);
  await wrong.body?.cancel();
  const refused = await post(s.base, "/api/rollout", { request: FLEET, confirm: CONFIRM }, {
    [TOKEN_HEADER]: "guess",
  });
  assertEquals(refused.status, 401);
  await refused.body?.cancel();
  assertEquals(port.started, []);

  const entry = await fetch(`${s.base}/?token=${TOKEN}`, { redirect: "manual" });
  assertEquals(entry.status, 303);
  assertEquals(entry.headers.get("location"), "/");
  const cookie = `yaota_token_${new URL(s.base).port}=${TOKEN}`;
  assertEquals(entry.headers.get("set-cookie"), `${cookie}; HttpOnly; SameSite=Strict; Path=/`);
  await entry.body?.cancel();
  const withCookie = await fetch(`${s.base}/`, { headers: { cookie } });
  assertEquals(withCookie.status, 200);
  await withCookie.body?.cancel();
  const withHeader = await fetch(`${s.base}/api/state`, { headers: { [TOKEN_HEADER]: TOKEN } });
  assertEquals(withHeader.status, 200);
  await withHeader.body?.cancel();
  // The page's change: the cookie and its request header, from its own origin.
  const pageChange = await fetch(`${s.base}/api/plan`, {
    method: "POST",
    headers: {
      cookie,
      "x-yaota-request": "page",
      origin: s.base,
      "content-type": "application/json",
    },
    body: JSON.stringify({ request: FLEET }),
  });
  assertEquals(pageChange.status, 200);
  await pageChange.body?.cancel();
  // The cookie alone (what a form of another site would send): refused.
  const formLike = await fetch(`${s.base}/api/rollout`, {
    method: "POST",
    headers: { cookie, "content-type": "application/json" },
    body: JSON.stringify({ request: FLEET, confirm: CONFIRM }),
  });
  assertEquals(formLike.status, 403);
  await formLike.body?.cancel();
  assertEquals(port.started, []);
}

Deno.test("a POST without the token header, from another origin, or not JSON starts nothing", async () => {
  const port = fakePort();
  await using s = await serve(port);
  const start = { request: FLEET, confirm: CONFIRM };
  const noToken = await fetch(`${s.base}/api/rollout`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: s.base },
    body: JSON.stringify(start),
  });
  assertEquals(noToken.status, 401);
  assertStringIncludes((await body(noToken)).error as string, "this dashboard needs its token");
  const foreign = await post(s.base, "/api/rollout", start, { origin: "https://evil.example" });
  assertEquals([foreign.status, (await body(foreign)).error], [
    403,
    "refused a request from another site (Origin 'https://evil.example'): only the dashboard's " +
    "own page may change anything",
  ]);
  const form = await post(s.base, "/api/rollout", start, {
    "content-type": "text/plain",
  });
  assertEquals(form.status, 415);
  await form.body?.cancel();
  assertEquals(port.started, []);
  // Another site's name resolved to 127.0.0.1 (DNS rebinding): its Host header gives it away.
  // (fetch() sets Host itself, so this request is written by hand.)
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(s.base).port) });
  await conn.write(
    new TextEncoder().encode(
      `GET / HTTP/1.1\r\nHost: evil.example:8267\r\nCookie: yaota_token_${
        new URL(s.base).port
      }=${TOKEN}\r\nConnection: close\r\n\r\n`,
    ),
  );
  const answer = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
  assertMatch(answer, /^HTTP\/1\.1 403 /);
  assertStringIncludes(answer, "Host 'evil.example:8267' refused");
  assert(!answer.includes(TOKEN), "the page and its token stay unread");
});

Deno.test("POST /api/plan names the boards and the build; a bad request says what is wrong", async () => {
  await using s = await serve(fakePort());
  const plan = await body(await post(s.base, "/api/plan", { request: FLEET }));
  assertEquals(plan.boards, ["a", "b"]);
  assertEquals(plan.build, "abc123def456 (1.1.0)");
  assertEquals(
    plan.question,
    "Send build abc123def456 (1.1.0) to 2 boards (a, b)? canary 1, no failure limit, " +
      "retries 1, reboot into OTA mode over WebREPL, boards that run it are skipped, a newer " +
      "build is not replaced.",
  );
  const rollback = await body(
    await post(s.base, "/api/plan", { request: { ...FLEET, release: "0ld0ld0ld0ld" } }),
  );
  assertStringIncludes(
    String(rollback.question),
    "reboot into OTA mode over WebREPL, a kept release: boards that run it are skipped, a " +
      "newer build is rolled back.",
  );
  const untriggered = await body(
    await post(s.base, "/api/plan", { request: { ...FLEET, trigger: false } }),
  );
  assertStringIncludes(String(untriggered.question), "retries 1, boards already in OTA mode.");
  const unknown = await post(s.base, "/api/plan", {
    request: { ...FLEET, target: { kind: "board", name: "zz" } },
  });
  assertEquals([unknown.status, await body(unknown)], [400, {
    error: "--only: no device or tag named 'zz'",
    kind: "UsageError",
  }]);
  const bad = await post(s.base, "/api/plan", { request: { ...FLEET, retries: 99 } });
  assertEquals([bad.status, (await body(bad)).error], [
    400,
    "retries must be a whole number from 0 to 10, got 99",
  ]);
});

Deno.test("one rollout at a time: a second is refused with a clear message; stop ends the first", async () => {
  const port = fakePort();
  await using dir = await tempDir();
  await using s = await serve(port, { reportPath: reportPath(dir.path) });
  const first = await post(s.base, "/api/rollout", { request: FLEET, confirm: CONFIRM });
  assertEquals(first.status, 202);
  const view = (await body(first)).rollout as RolloutView;
  assertEquals([view.state, view.build], ["running", "abc123def456 (1.1.0)"]);
  const second = await post(s.base, "/api/rollout", {
    request: { ...FLEET, target: { kind: "board", name: "b" } },
    confirm: { ...CONFIRM, boards: ["b"] },
  });
  assertEquals(second.status, 409);
  assertEquals(await body(second), {
    error: `a rollout is already running (started ${view.startedAt}, build abc123def456 (1.1.0), ` +
      "boards a, b): wait for it to end, or stop it first",
    kind: "RolloutRunning",
  });
  assertEquals(port.started.length, 1);
  const stop = await post(s.base, "/api/stop");
  assertEquals([stop.status, await body(stop)], [200, { stopping: true }]);
  await s.dashboard.running();
  const after = await body(await get(s.base, "/api/state"));
  const ended = after.rollout as RolloutView;
  assertEquals([ended.state, ended.ok, ended.exitCode], ["done", false, 130]);
  assertEquals(ended.boards.map((b) => b.result), ["not-attempted", "not-attempted"]);
  const again = await post(s.base, "/api/stop");
  assertEquals([again.status, (await body(again)).error], [409, "no rollout is running"]);
});

Deno.test("a rollout whose boards or build changed since the confirmation is refused", async () => {
  const port = fakePort();
  await using s = await serve(port);
  const r = await post(s.base, "/api/rollout", {
    request: FLEET,
    confirm: { boards: ["a"], build: "abc123def456 (1.1.0)" },
  });
  assertEquals(r.status, 409);
  assertEquals(await body(r), {
    error: "the rollout changed since it was confirmed (now build abc123def456 (1.1.0) to a, b; " +
      "confirmed build abc123def456 (1.1.0) to a): look again and confirm",
    kind: "PlanChanged",
  });
  const missing = await post(s.base, "/api/rollout", { request: FLEET });
  assertEquals([missing.status, (await body(missing)).error], [
    400,
    "confirm must be a JSON object",
  ]);
  assertEquals(port.started, []);
});

Deno.test("the stream sends the state, each event and the view; the report survives a reload and a restart", async () => {
  const port = fakePort();
  await using dir = await tempDir();
  const path = reportPath(dir.path);
  {
    await using s = await serve(port, { reportPath: path });
    const stream = await get(s.base, "/api/stream");
    assertEquals(stream.headers.get("content-type"), "text/event-stream; charset=utf-8");
    let started = false;
    const messages = await readStream(stream, (m) => {
      if (m.event === "state" && !started) {
        started = true;
        void post(s.base, "/api/rollout", { request: FLEET, confirm: CONFIRM }).then(async (r) => {
          assertEquals(r.status, 202);
          await r.body?.cancel();
          port.finish();
        });
      }
      return m.event === "rollout" && (m.data as RolloutView).state === "done";
    });
    assertEquals(messages[0]!.event, "state");
    assertEquals((messages[0]!.data as { rollout: unknown }).rollout, null);
    const events = messages.filter((m) => m.event === "ota").map((m) => m.data as RolloutEvent);
    assertEquals(events.map((e) => e.seq), events.map((_, i) => i + 1));
    assertEquals(events[0]!.type, "run.started");
    assertEquals(events.at(-1)!.type, "run.ended");
    const progress = events.filter((e) => e.type === "progress");
    assertEquals(progress.map((e) => e.type === "progress" && [e.device, e.bytes]), [
      ["a", 4096],
      ["b", 4096],
      ["a", 8192],
      ["b", 8192],
    ]);
    const last = messages.at(-1)!.data as RolloutView;
    assertEquals(last.boards.map((b) => [b.name, b.percent, b.result]), [
      ["a", 100, "updated"],
      ["b", 100, "updated"],
    ]);
    await s.dashboard.running();
    // A page reload gets the report from memory.
    const reloaded = await body(await get(s.base, "/api/state"));
    assertEquals((reloaded.rollout as RolloutView).boards, last.boards);
  }
  // ... and a new dashboard from dist/dashboard/last-rollout.json.
  const kept = await readReport(path);
  assert(kept.kind === "report");
  assertEquals(kept.view.state, "done");
  await using again = await serve(fakePort(), { reportPath: path });
  const state = await body(await get(again.base, "/api/state"));
  assertEquals(state.rollout, kept.view);
});

Deno.test("a report kept while a rollout ran is read back as cut off", async () => {
  await using dir = await tempDir();
  const path = reportPath(dir.path);
  await writeReport(path, {
    id: "x",
    state: "running",
    startedAt: "2026-01-10T10:00:00.000Z",
    request: { target: { kind: "fleet" }, canary: 0, maxFailures: null, retries: 0, trigger: true },
    build: "abc123def456 (1.1.0)",
    boards: [{
      name: "a",
      phase: "push",
      bytes: 10,
      total: 20,
      percent: 50,
      rate: 1,
      eta: 10,
      retransmits: 0,
      retries: 0,
    }],
    decisions: [],
    events: [],
  });
  await using s = await serve(fakePort(), { reportPath: path });
  const view = (await body(await get(s.base, "/api/state"))).rollout as RolloutView;
  assertEquals([view.state, view.ok], ["done", false]);
  assertEquals(view.boards[0]!.result, "not-attempted");
  assertStringIncludes(view.reason!, "the dashboard stopped while this rollout ran");
});

Deno.test("a status refresh leaves alone the boards a running rollout is updating", async () => {
  const port = fakePort();
  await using s = await serve(port);
  const r = await post(s.base, "/api/rollout", {
    request: { ...FLEET, target: { kind: "board", name: "a" } },
    confirm: { boards: ["a"], build: CONFIRM.build },
  });
  assertEquals(r.status, 202);
  await r.body?.cancel();
  const refreshed = await body(await post(s.base, "/api/refresh"));
  assertEquals(port.asked.at(-1), ["b"]);
  const boards = refreshed.boards as { name: string; state?: string; note?: string }[];
  assertEquals(boards.map((b) => [b.name, b.state, b.note]), [
    ["a", undefined, "being updated now"],
    ["b", "app", undefined],
  ]);
  port.finish();
  await s.dashboard.running();
  assert(port.asked.length >= 2);
});

Deno.test("two rollouts started at the same moment: one runs, the other is refused", async () => {
  const port = fakePort();
  await using s = await serve(port);
  const start = () => post(s.base, "/api/rollout", { request: FLEET, confirm: CONFIRM });
  const answers = await Promise.all([start(), start(), start()]);
  const statuses = answers.map((r) => r.status).sort();
  await Promise.all(answers.map((r) => r.body?.cancel()));
  assertEquals(statuses, [202, 409, 409]);
  assertEquals(port.started.length, 1);
  port.finish();
  await s.dashboard.running();
});
