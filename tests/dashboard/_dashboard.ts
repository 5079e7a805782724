/** Helpers for the dashboard tests: a fake `FleetPort`, a served dashboard, and SSE reading. */
import { UsageError } from "../../lib/errors.ts";
import { accessPolicy, TOKEN_HEADER } from "../../lib/dashboard/access.ts";
import type {
  BoardStatus,
  CurrentBuild,
  FleetPort,
  Release,
  RolloutEvent,
  RolloutEventBody,
  RolloutRequest,
} from "../../lib/dashboard/port.ts";
import { createDashboard, type Dashboard } from "../../lib/dashboard/server.ts";
import { onlyOf } from "../../lib/dashboard/rollout_request.ts";

export const TOKEN = "test-token-0123456789abcdefghijklmnopqrstu";

export const BUILD: CurrentBuild = {
  id: "abc123def456",
  label: "abc123def456 (1.1.0)",
  file: "dist/firmware-ota.bin",
  size: 8192,
  sha256: "ab".repeat(32),
  builtAt: "2026-01-10T10:00:00.000Z",
  version: "1.1.0",
  appOffset: "0x3c000",
  linkAddress: "0x40245000",
  modules: ["ota.py"],
  verdict: { safe: true, problems: [] },
  matchesManifest: true,
};

const BOARDS: BoardStatus[] = [
  { name: "a", tags: ["sensor"], address: "10.0.0.2:8266", comparison: "unknown" },
  { name: "b", tags: ["door"], address: "10.0.0.3:8266", comparison: "unknown" },
];

export interface FakePort extends FleetPort {
  /** Requests `rollout` was called with. */
  started: RolloutRequest[];
  /** Names each `status` call asked for. */
  asked: (readonly string[] | undefined)[];
  /** Lets every running rollout past its halfway point. */
  finish(): void;
  /** What each board runs against the current build, by name (a rollout updates it). */
  runs: Map<string, "older" | "up to date">;
  /** Holds every later `status` answer until the function returned is called. */
  holdStatus(): () => void;
  /** Resolves at the next `status` call (a check is under way). */
  nextStatus(): Promise<void>;
}

/**
 * Boards "a" and "b"; a rollout sends each board to 50 %, waits for `finish()` (or a
 * stop), then 100 % and "updated" (or "not-attempted" after a stop).
 */
export function fakePort(): FakePort {
  const gate = Promise.withResolvers<void>();
  const started: RolloutRequest[] = [];
  const asked: (readonly string[] | undefined)[] = [];
  const runs = new Map<string, "older" | "up to date">(BOARDS.map((b) => [b.name, "older"]));
  let hold: Promise<void> = Promise.resolve();
  let asking = Promise.withResolvers<void>();
  const chosen = (request: RolloutRequest) => {
    const only = onlyOf(request.target);
    const boards = BOARDS.filter((b) =>
      only.length === 0 || only.includes(b.name) || b.tags.some((t) => only.includes(t))
    );
    if (boards.length === 0) throw new UsageError(`--only: no device or tag named '${only[0]}'`);
    return boards.map((b) => b.name);
  };
  return {
    started,
    asked,
    finish: () => gate.resolve(),
    runs,
    holdStatus() {
      const release = Promise.withResolvers<void>();
      hold = release.promise;
      return () => {
        hold = Promise.resolve();
        release.resolve();
      };
    },
    boards: () => BOARDS,
    nextStatus() {
      asking = Promise.withResolvers<void>();
      return asking.promise;
    },
    async status(names) {
      asked.push(names);
      asking.resolve();
      // What the boards run when asked, answered when the hold (if any) is let go.
      const answers = BOARDS.filter((b) => names === undefined || names.includes(b.name))
        .map((b) => {
          const comparison = runs.get(b.name)!;
          const id = comparison === "older" ? "0ld0ld0ld0ld" : BUILD.id!;
          return {
            ...b,
            state: "app" as const,
            webrepl: "logged in" as const,
            otaMode: false,
            micropython: { release: "1.19.1", version: "v1.19.1 on 2025-06-18" },
            build: { id },
            comparison,
            release: { id, builtAt: "2025-06-18T10:00:00.000Z" },
            checkedAt: "2026-01-10T11:00:00.000Z",
          };
        });
      await hold;
      return answers;
    },
    currentBuild: () => Promise.resolve(BUILD),
    releases: () =>
      Promise.resolve<Release[]>([
        { id: "0ld0ld0ld0ld", builtAt: "2025-06-18T10:00:00.000Z", current: false },
        { id: "abc123def456", builtAt: BUILD.builtAt!, version: "1.1.0", current: true },
      ]),
    plan: (request) =>
      Promise.resolve().then(() => ({
        boards: chosen(request),
        build: BUILD.label,
        buildId: BUILD.id,
        file: BUILD.file,
        size: BUILD.size,
      })),
    async rollout(request, onEvent, signal) {
      started.push(request);
      const boards = chosen(request);
      let seq = 0;
      const emit = (body: RolloutEventBody) =>
        onEvent({ v: 1, seq: ++seq, time: new Date().toISOString(), ...body } as RolloutEvent);
      const progress = (device: string, bytes: number) =>
        emit({
          type: "progress",
          device,
          bytes,
          total: BUILD.size,
          rate: 4096,
          eta: (BUILD.size - bytes) / 4096,
          retransmits: 0,
          block: 1024,
        });
      emit({ type: "run.started", command: "deploy", devices: boards });
      for (const d of boards) {
        emit({ type: "phase.started", phase: "push", device: d });
        progress(d, BUILD.size / 2);
      }
      await Promise.race([
        gate.promise,
        new Promise((resolve) =>
          signal.aborted
            ? resolve(undefined)
            : signal.addEventListener("abort", resolve, { once: true })
        ),
      ]);
      for (const d of boards) {
        if (signal.aborted) {
          emit({ type: "device.result", device: d, result: "not-attempted", reason: "stopped" });
          continue;
        }
        progress(d, BUILD.size);
        runs.set(d, "up to date");
        emit({ type: "device.result", device: d, result: "updated", attempts: 1 });
      }
      emit({ type: "run.ended", ok: !signal.aborted, exitCode: signal.aborted ? 130 : 0 });
    },
  };
}

export interface Served extends AsyncDisposable {
  base: string;
  dashboard: Dashboard;
}

/**
 * The dashboard over `port` on 127.0.0.1 (a port from the OS), with the policy of
 * `options.host` (default 127.0.0.1; "0.0.0.0": as if bound beyond loopback).
 */
export async function serve(
  port: FleetPort,
  options: {
    reportPath?: string;
    host?: string;
    refreshMs?: number;
    checkWaitMs?: number;
    onWarning?: (m: string) => void;
  } = {},
): Promise<Served> {
  const made = Promise.withResolvers<Dashboard>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (r) => (await made.promise).handler(r),
  );
  const policy = accessPolicy(options.host ?? "127.0.0.1", server.addr.port, TOKEN);
  const dashboard = await createDashboard({
    port,
    policy,
    refreshMs: options.refreshMs ?? 60000,
    ...(options.reportPath ? { reportPath: options.reportPath } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    ...(options.checkWaitMs === undefined ? {} : { checkWaitMs: options.checkWaitMs }),
  });
  made.resolve(dashboard);
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    dashboard,
    async [Symbol.asyncDispose]() {
      await dashboard.close();
      await server.shutdown();
    },
  };
}

/** A GET with the token in its cookie, as a browser that opened the printed address sends it. */
export function get(base: string, path: string, init: RequestInit = {}): Promise<Response> {
  const port = new URL(base).port;
  return fetch(`${base}${path}`, {
    ...init,
    headers: { cookie: `yaota_token_${port}=${TOKEN}`, ...init.headers },
  });
}

/** A POST as a script sends it: JSON, the token header, our own origin. */
export function post(
  base: string,
  path: string,
  body: unknown = {},
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      [TOKEN_HEADER]: TOKEN,
      origin: base,
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

export interface SseMessage {
  event: string;
  data: unknown;
}

/** Reads `text/event-stream` messages until `until` says stop; then lets the stream go. */
export async function readStream(
  response: Response,
  until: (message: SseMessage, all: SseMessage[]) => boolean,
): Promise<SseMessage[]> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const all: SseMessage[] = [];
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return all;
      buffer += value;
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
        const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null");
        const message = { event, data };
        all.push(message);
        if (until(message, all)) return all;
      }
    }
  } finally {
    await reader.cancel();
  }
}
