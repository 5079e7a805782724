/**
 * The dashboard's HTTP side: the page, a small JSON API and a Server-Sent Events stream,
 * over a `FleetPort` (`port.ts`). Every request first passes the access policy
 * (`access.ts`). One rollout at a time; its report is kept in memory and in `dist/`.
 * Each board is asked again when its result arrives, and every board when a rollout ends
 * (`fleet_checks.ts`), so the fleet never shows what a board ran before. A rollout first
 * waits, bounded, for the check under way on its boards (one WebREPL client per board).
 *
 * API (JSON; POST bodies are JSON, at most `MAX_BODY_BYTES`, and carry the token header or
 * the page's request header):
 * - `GET /api/state`: boards, current build, releases, the last rollout, the refresh period.
 * - `POST /api/refresh`: asks the boards now.
 * - `POST /api/plan` `{request}`: the boards and the build the request means (to confirm).
 * - `POST /api/rollout` `{request, confirm}`: starts it; 409 while another runs, or when
 *   the boards or the build differ from what was confirmed.
 * - `POST /api/stop`: stops the running rollout (no new board starts; running ones stop).
 * - `GET /api/stream`: events `state`, `fleet`, `rollout` (the folded view) and `ota`
 *   (each event of the run as the `--events` stream has it).
 */
import { OtaError, UsageError } from "../errors.ts";
import {
  type AccessPolicy,
  checkRequest,
  REQUEST_HEADER,
  TOKEN_HEADER,
  TOKEN_QUERY,
  tokenCookie,
} from "./access.ts";
import { EventHub, formatEvent } from "./event_stream.ts";
import { fleetChecks, gaveUp } from "./fleet_checks.ts";
import type { FleetPort, RolloutEvent, RolloutRequest } from "./port.ts";
import { describeTarget, parseConfirmed, parseRolloutRequest } from "./rollout_request.ts";
import { applyEvent, interruptedView, type RolloutView, startView } from "./rollout_view.ts";
import { readReport, writeReport } from "./report_store.ts";
import { readJsonBody, RequestTooLargeError } from "./request_body.ts";
import { type AssetReader, assetType, readStaticAsset } from "./static_assets.ts";

/** The refresh period's bounds, in seconds. */
export const MIN_REFRESH_S = 5;
export const MAX_REFRESH_S = 600;
export const DEFAULT_REFRESH_S = 30;
/**
 * How long a rollout waits for a check under way on its boards (which holds a board's one
 * WebREPL session) before it starts anyway: a check is a few WebREPL steps of status's 3 s.
 */
export const DEFAULT_CHECK_WAIT_MS = 10000;

export interface DashboardOptions {
  port: FleetPort;
  policy: AccessPolicy;
  /** Where the last rollout's report is kept; none: in memory only. */
  reportPath?: string;
  /** Boards are asked again this often while a page is open (milliseconds). */
  refreshMs: number;
  assets?: AssetReader;
  /** A rollout's wait for the checks under way on its boards (default `DEFAULT_CHECK_WAIT_MS`). */
  checkWaitMs?: number;
  now?: () => Date;
  /**
   * Told what the person should know (a kept report that could not be read, a check that
   * held a rollout's board past `checkWaitMs`).
   */
  onWarning?: (message: string) => void;
}

export interface Dashboard {
  handler(request: Request): Promise<Response>;
  /** The running rollout's end, if one runs. */
  running(): Promise<void> | undefined;
  /** Stops the running rollout (if any), waits for it, ends the streams and timers. */
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

function json(value: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { ...SECURITY_HEADERS, ...headers, "content-type": "application/json" },
  });
}

function problem(status: number, error: string, kind?: string): Response {
  return json({ error, ...(kind ? { kind } : {}) }, status);
}

function cookie(header: string | null, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return undefined;
}

/**
 * The dashboard over `options.port`, with the last report read back from
 * `options.reportPath` (a run cut off by a stop is reported so).
 */
export async function createDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { port, policy } = options;
  const now = options.now ?? (() => new Date());
  const assets = options.assets ?? readStaticAsset;
  let view: RolloutView | undefined;
  let active: { controller: AbortController; done: Promise<void> } | undefined;
  let persisting = Promise.resolve();
  let timer: ReturnType<typeof setInterval> | undefined;

  if (options.reportPath) {
    const kept = await readReport(options.reportPath, now());
    if (kept.kind === "report") view = interruptedView(kept.view, now().toISOString());
    if (kept.kind === "malformed") {
      options.onWarning?.(
        `the last rollout's report ${options.reportPath} could not be read (${kept.problem}): ` +
          (kept.setAside
            ? `set aside as ${kept.setAside}; starting without it`
            : "starting without it (move it away, or the next rollout's report replaces it)"),
      );
    }
  }

  const hub = new EventHub((count) => {
    if (count > 0 && timer === undefined) {
      timer = setInterval(() => void refresh().catch(() => {}), options.refreshMs);
    } else if (count === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  });

  function persist(): Promise<void> {
    const path = options.reportPath;
    const snapshot = view;
    if (!path || !snapshot) return persisting;
    persisting = persisting.then(() => writeReport(path, snapshot)).catch(() => {});
    return persisting;
  }

  /** Boards a running rollout is updating: not asked meanwhile (one WebREPL client at a time). */
  function busyBoards(): string[] {
    if (!active || !view) return [];
    return view.boards.filter((b) => b.result === undefined).map((b) => b.name);
  }

  const fleet = fleetChecks(
    port,
    busyBoards,
    (boards, checkedAt) => hub.send("fleet", { boards, checkedAt: checkedAt ?? null }),
    now,
  );
  const refresh = () => fleet.check();

  async function state() {
    const [build, releases] = await Promise.all([
      port.currentBuild().catch(() => null),
      port.releases().catch(() => []),
    ]);
    return {
      boards: fleet.boards(),
      checkedAt: fleet.checkedAt() ?? null,
      build,
      releases,
      rollout: view ?? null,
      refreshSeconds: options.refreshMs / 1000,
    };
  }

  async function planOf(request: RolloutRequest) {
    const plan = await port.plan(request);
    const policy = [
      request.canary ? `canary ${request.canary}` : "no canary",
      request.maxFailures === null ? "no failure limit" : `max failures ${request.maxFailures}`,
      `retries ${request.retries}`,
      request.trigger ? "reboot into OTA mode over WebREPL" : "boards already in OTA mode",
      // What deploy --trigger does with the build a board runs (it cannot ask otherwise).
      ...(request.trigger
        ? [
          request.release === undefined
            ? "boards that run it are skipped, a newer build is not replaced"
            : "a kept release: boards that run it are skipped, a newer build is rolled back",
        ]
        : []),
    ].join(", ");
    return {
      ...plan,
      target: describeTarget(request.target),
      policy,
      question: `Send build ${plan.build} to ${plan.boards.length} board${
        plan.boards.length === 1 ? "" : "s"
      } (${plan.boards.join(", ")})? ${policy}.`,
    };
  }

  /** Waits (bounded) for the checks under way on `boards`: one WebREPL client per board. */
  async function checksEnded(boards: string[], signal: AbortSignal): Promise<void> {
    const waitMs = options.checkWaitMs ?? DEFAULT_CHECK_WAIT_MS;
    const still = await fleet.makeWay(boards, waitMs, signal);
    if (still.length) options.onWarning?.(`${still.join(", ")}: ${gaveUp(waitMs)}`);
  }

  async function startRollout(request: RolloutRequest, confirmed: unknown): Promise<Response> {
    if (active && view) {
      return problem(
        409,
        `a rollout is already running (started ${view.startedAt}, build ${view.build}, boards ${
          view.boards.map((b) => b.name).join(", ")
        }): wait for it to end, or stop it first`,
        "RolloutRunning",
      );
    }
    const confirm = parseConfirmed(confirmed);
    const plan = await port.plan(request);
    if (
      plan.build !== confirm.build || plan.boards.join("\n") !== confirm.boards.join("\n")
    ) {
      return problem(
        409,
        `the rollout changed since it was confirmed (now build ${plan.build} to ${
          plan.boards.join(", ") || "no board"
        }; confirmed build ${confirm.build} to ${confirm.boards.join(", ") || "no board"}): ` +
          "look again and confirm",
        "PlanChanged",
      );
    }
    // Checked again after the awaits: two requests may have passed the first check together.
    if (active) return startRollout(request, confirmed);
    const startedAt = now().toISOString();
    view = startView(startedAt, request, plan.build, plan.boards, startedAt);
    const controller = new AbortController();
    const onEvent = (event: RolloutEvent) => {
      if (!view) return;
      view = applyEvent(view, event);
      hub.send("ota", event, event.seq);
      hub.send("rollout", view);
      if (event.type === "device.result") {
        // What the board ran is out of date: asked again (it is no longer busy).
        fleet.forget(event.device, `checking again after its ${event.result} result`);
        void fleet.check([event.device]).catch(() => {});
      }
      if (event.type === "run.ended") void persist();
    };
    hub.send("rollout", view);
    void persist();
    // Set before the wait: the boards are busy from now on (no new check starts on them).
    const run = { controller, done: Promise.resolve() };
    active = run;
    run.done = checksEnded(plan.boards, controller.signal)
      .then(() => port.rollout(request, onEvent, controller.signal))
      .catch((e) => {
        // A bug in the rollout itself: the run ends with it, the dashboard goes on.
        const last = view?.events.at(-1)?.seq ?? 0;
        onEvent({
          v: 1,
          seq: last + 1,
          time: now().toISOString(),
          type: "run.ended",
          ok: false,
          exitCode: 1,
          reason: `the rollout stopped on an unexpected error (a bug): ${
            e instanceof Error ? e.message : String(e)
          }`,
          kind: "InternalError",
        });
      })
      .finally(async () => {
        if (view?.state === "running") view = interruptedView(view, now().toISOString());
        active = undefined;
        await persist();
        hub.send("rollout", view);
        void refresh().catch(() => {});
      });
    return json({ rollout: view }, 202);
  }

  async function route(request: Request, url: URL): Promise<Response> {
    const method = request.method === "HEAD" ? "GET" : request.method;
    const path = url.pathname;
    if (method === "GET" && (path === "/" || path === "/index.html")) {
      return new Response(await assets("index.html"), {
        headers: { ...SECURITY_HEADERS, "content-type": assetType("index.html")! },
      });
    }
    if (method === "GET" && path.startsWith("/static/")) {
      const name = path.slice("/static/".length);
      const type = assetType(name);
      if (type === undefined || name === "index.html") {
        return problem(404, `no page or API at '${path}'`);
      }
      return new Response(await assets(name), {
        headers: { ...SECURITY_HEADERS, "content-type": type },
      });
    }
    if (method === "GET" && path === "/api/state") return json(await state());
    if (method === "GET" && path === "/api/stream") {
      return hub.open(formatEvent("state", await state()), SECURITY_HEADERS);
    }
    if (method === "POST" && path === "/api/refresh") {
      await refresh();
      return json({ boards: fleet.boards(), checkedAt: fleet.checkedAt() ?? null });
    }
    if (method === "POST" && path === "/api/plan") {
      const b = await readJsonBody(request);
      return json(await planOf(parseRolloutRequest(b.request)));
    }
    if (method === "POST" && path === "/api/rollout") {
      const b = await readJsonBody(request);
      return await startRollout(parseRolloutRequest(b.request), b.confirm);
    }
    if (method === "POST" && path === "/api/stop") {
      if (!active) return problem(409, "no rollout is running", "NoRollout");
      active.controller.abort("stopped from the page");
      return json({ stopping: true });
    }
    const known = ["/", "/index.html", "/api/state", "/api/stream", "/api/refresh", "/api/plan"]
      .concat(["/api/rollout", "/api/stop"]);
    if (known.includes(path)) return problem(405, `${request.method} ${path} is not used`);
    return problem(404, `no page or API at '${path}'`);
  }

  async function handler(request: Request): Promise<Response> {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return problem(
        400,
        `the request's Host header '${request.headers.get("host")}' is not a host`,
      );
    }
    const cookieName = tokenCookie(policy);
    const verdict = checkRequest(policy, {
      method: request.method,
      hostHeader: request.headers.get("host") ?? undefined,
      origin: request.headers.get("origin") ?? undefined,
      fetchSite: request.headers.get("sec-fetch-site") ?? undefined,
      contentType: request.headers.get("content-type") ?? undefined,
      headerToken: request.headers.get(TOKEN_HEADER) ?? undefined,
      pageHeader: request.headers.has(REQUEST_HEADER),
      cookieToken: cookie(request.headers.get("cookie"), cookieName),
      queryToken: url.searchParams.get(TOKEN_QUERY) ?? undefined,
    });
    if (!verdict.ok) return problem(verdict.status, verdict.message, "AccessRefused");
    if (verdict.tokenInQuery) {
      // The token goes into a cookie that only this site's own requests carry, and out of
      // the address bar.
      url.searchParams.delete(TOKEN_QUERY);
      return new Response(null, {
        status: 303,
        headers: {
          ...SECURITY_HEADERS,
          location: url.pathname + url.search,
          "set-cookie": `${cookieName}=${policy.token}; HttpOnly; SameSite=Strict; Path=/`,
        },
      });
    }
    try {
      return await route(request, url);
    } catch (e) {
      if (e instanceof RequestTooLargeError) return problem(413, e.message, e.name);
      if (e instanceof UsageError) return problem(400, e.message, e.name);
      if (e instanceof OtaError) return problem(422, e.message, e.name);
      return problem(
        500,
        `unexpected error (a bug): ${e instanceof Error ? e.message : String(e)}`,
        "InternalError",
      );
    }
  }

  return {
    handler,
    running: () => active?.done,
    async close() {
      active?.controller.abort("the dashboard stopped");
      await active?.done;
      await fleet.settled();
      await persisting;
      hub.close();
    },
  };
}
