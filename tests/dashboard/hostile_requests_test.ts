/**
 * The dashboard against requests and files it did not make: a Host header that is no host,
 * bodies far over any request it takes, and a kept report that is not one.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "../_assert.ts";
import { tempDir } from "../_helpers.ts";
import { fakePort, get, post, serve, TOKEN } from "./_dashboard.ts";
import { TOKEN_HEADER } from "../../lib/dashboard/access.ts";
import { readReport, reportPath } from "../../lib/dashboard/report_store.ts";
import {
  MAX_BODY_BYTES,
  readJsonBody,
  RequestTooLargeError,
} from "../../lib/dashboard/request_body.ts";

/** Sends `head` (and `body`) on a connection of its own; returns the whole answer. */
async function raw(base: string, head: string, body?: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(base).port) });
  await conn.write(new TextEncoder().encode(head));
  if (body) await conn.write(body).catch(() => 0);
  // Read one answer (head and its content-length body): the server need not close first.
  const reader = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (true) {
      const end = text.indexOf("\r\n\r\n");
      const length = Number(/^content-length: (\d+)/im.exec(text)?.[1] ?? NaN);
      if (end >= 0 && text.length >= end + 4 + length) return text;
      const { value, done } = await reader.read();
      if (done) return text;
      text += value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

Deno.test("a Host header that is no host ('a b') is answered 400, not 500", async () => {
  await using s = await serve(fakePort());
  const answer = await raw(
    s.base,
    `GET / HTTP/1.1\r\nHost: a b\r\n${TOKEN_HEADER}: ${TOKEN}\r\nConnection: close\r\n\r\n`,
  );
  assertMatch(answer, /^HTTP\/1\.1 400 /);
  assertStringIncludes(answer, "the request's Host header 'a b' is not a host");
});

Deno.test("readJsonBody() stops reading a body at the limit, before parsing", async () => {
  // A body of 64 MiB, made as it is read: counts what the reader took.
  let pulled = 0;
  const chunk = new Uint8Array(16 * 1024).fill(0x20);
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= 64 * 1024 * 1024) return controller.close();
      pulled += chunk.length;
      controller.enqueue(chunk);
    },
  });
  const request = new Request("http://127.0.0.1/api/plan", { method: "POST", body: endless });
  await assertRejects(
    () => readJsonBody(request),
    RequestTooLargeError,
    `the request body is over ${MAX_BODY_BYTES} bytes: the dashboard takes small JSON requests only`,
  );
  assert(pulled <= MAX_BODY_BYTES + 2 * chunk.length, `read ${pulled} bytes`);
  // A declared length over the limit is refused before any byte is read.
  const declared = new Request("http://127.0.0.1/api/plan", {
    method: "POST",
    headers: { "content-length": String(1.5 * 1024 ** 3) },
    body: "{}",
  });
  await assertRejects(() => readJsonBody(declared), RequestTooLargeError);
  assertEquals(
    await readJsonBody(new Request("http://x/", { method: "POST", body: '{"a":1}' })),
    { a: 1 },
  );
});

Deno.test("a POST over the body limit is answered 413, by its length or as it streams", async () => {
  const port = fakePort();
  await using s = await serve(port);
  const big = `{"request":${JSON.stringify("x".repeat(MAX_BODY_BYTES))}}`;
  const r = await post(s.base, "/api/plan", JSON.parse(big));
  assertEquals(r.status, 413);
  assertEquals(await r.json(), {
    error: `the request body is over ${MAX_BODY_BYTES} bytes: the dashboard takes small JSON ` +
      "requests only",
    kind: "RequestTooLargeError",
  });
  // A 1.5 GB length announced: refused at once, without waiting for the bytes.
  const answer = await raw(
    s.base,
    `POST /api/rollout HTTP/1.1\r\nHost: 127.0.0.1:${new URL(s.base).port}\r\n` +
      `${TOKEN_HEADER}: ${TOKEN}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${1.5 * 1024 ** 3}\r\nConnection: close\r\n\r\n`,
    new TextEncoder().encode("{"),
  );
  assertMatch(answer, /^HTTP\/1\.1 413 /);
  // Streamed in chunks with no length: cut off at the limit.
  let sent = 0;
  const streamed = await fetch(`${s.base}/api/plan`, {
    method: "POST",
    headers: { "content-type": "application/json", [TOKEN_HEADER]: TOKEN, origin: s.base },
    body: new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent > 16 * 1024 * 1024) return c.close();
        sent += 64 * 1024;
        c.enqueue(new Uint8Array(64 * 1024).fill(0x20));
      },
    }),
  });
  assertEquals(streamed.status, 413);
  await streamed.body?.cancel();
  assertEquals(port.started, []);
});

Deno.test("a malformed last-rollout.json: the dashboard starts, names the file and sets it aside", async () => {
  await using dir = await tempDir();
  const path = reportPath(dir.path);
  await Deno.mkdir(`${dir.path}/dashboard`);
  const cases: [string, string][] = [
    ['{"state":"running","startedAt":"x","boards":[null]}', "its id is not a string"],
    [
      JSON.stringify({
        id: "x",
        state: "running",
        startedAt: "x",
        build: "b",
        request: {},
        boards: [null],
        decisions: [],
        events: [],
      }),
      "boards[0] is not an object",
    ],
    ["{not json", "it is not JSON ("],
  ];
  for (const [text, problem] of cases) {
    await Deno.writeTextFile(path, text);
    const warnings: string[] = [];
    await using s = await serve(fakePort(), {
      reportPath: path,
      onWarning: (m) => warnings.push(m),
    });
    const state = await (await get(s.base, "/api/state")).json();
    assertEquals(state.rollout, null);
    assertEquals(warnings.length, 1);
    const aside = /set aside as (\S+); starting without it$/.exec(warnings[0]!)?.[1];
    assert(aside !== undefined, warnings[0]);
    assertStringIncludes(
      warnings[0]!,
      `the last rollout's report ${path} could not be read (${problem}`,
    );
    assertEquals(await Deno.readTextFile(aside), text);
    assertEquals((await readReport(path)).kind, "none");
    await Deno.remove(aside);
  }
});
