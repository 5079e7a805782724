/**
 * `deno task sim` as a child process (the benchmark's and some tests' device): started
 * with `--listen-port 0 --json`, its events read from stdout as JSON lines.
 */
import { fromFileUrl } from "../_paths.ts";

export interface SimProcess extends AsyncDisposable {
  port: number;
  pid: number;
  /** Its nice value, when started with `--priority`. */
  nice?: number;
  /** In the real-time class, when started with `--realtime`. */
  realtime?: boolean;
  /** JSON events printed so far. */
  events: Record<string, unknown>[];
  /** Its exit status (with `--once` it exits by itself). */
  status: Promise<Deno.CommandStatus>;
  /** Its stderr so far (the log lines). */
  stderr(): string;
  waitFor(
    match: (e: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * The arguments that run `sim` with Deno (given where this module is): a compiled `yaota`
 * binary has no `deno run` and is its own `sim` task; a checkout runs tasks/sim.ts; a
 * `yaota` installed from a URL runs that file's URL with the import map it was installed
 * with (the deno.json beside it).
 */
export function simTaskArgs(here: URL, standalone = Deno.build.standalone): string[] {
  if (standalone) return ["sim"];
  const task = new URL("../../tasks/sim.ts", here);
  // Its socket sends through Deno.listenDatagram (datagram_socket.ts).
  const run = ["run", "-A", "--unstable-net"];
  if (task.protocol === "file:") return [...run, fromFileUrl(task)];
  return [...run, "--import-map", new URL("../../deno.json", here).href, task.href];
}

export async function startSimProcess(args: string[]): Promise<SimProcess> {
  const task = simTaskArgs(new URL(import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...task,
      "--listen-port",
      "0",
      "--json",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let stderr = "";
  const readingErr = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) stderr += decoder.decode(chunk, { stream: true });
  })();
  const events: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of child.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          events.push(JSON.parse(line));
        } catch {
          // not an event line
        }
        for (const l of listeners) l();
      }
    }
  })();
  const waitFor = (match: (e: Record<string, unknown>) => boolean, timeoutMs = 30000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const e = events.find(match);
        if (e) {
          listeners.delete(check);
          clearTimeout(timer);
          timers.delete(timer);
          resolve(e);
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        timers.delete(timer);
        reject(new Error(`sim: no matching event within ${timeoutMs} ms`));
      }, timeoutMs);
      timers.add(timer);
      listeners.add(check);
      check();
    });
  /** Ends the process and waits until it and both readers are done. */
  const end = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    await reading;
    await readingErr;
  };
  let listening: Record<string, unknown>;
  try {
    listening = await Promise.race([
      waitFor((e) => e.event === "listening", 20000),
      child.status.then(async (s) => {
        await readingErr;
        const up = events.find((e) => e.event === "listening");
        if (up) return up;
        throw new Error(`sim exited with code ${s.code} before listening: ${stderr.trim()}`);
      }),
    ]);
  } catch (e) {
    for (const t of timers) clearTimeout(t);
    await end();
    throw e;
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await end();
  };
  return {
    port: listening.port as number,
    pid: child.pid,
    ...(typeof listening.nice === "number" ? { nice: listening.nice } : {}),
    ...(typeof listening.realtime === "boolean" ? { realtime: listening.realtime } : {}),
    events,
    status: child.status,
    stderr: () => stderr,
    waitFor,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
