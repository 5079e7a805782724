/**
 * `deno task sim` as a child process (the benchmark's and some tests' device): started
 * with `--port 0 --json`, its events read from stdout as JSON lines.
 */
import { fromFileUrl } from "./_paths.ts";

export interface SimProcess extends AsyncDisposable {
  port: number;
  /** JSON events printed so far. */
  events: Record<string, unknown>[];
  waitFor(
    match: (e: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export async function startSimProcess(args: string[]): Promise<SimProcess> {
  // A compiled `yaota` binary has no `deno run`: it is its own `sim` task.
  const task = Deno.build.standalone
    ? ["sim"]
    : ["run", "-A", fromFileUrl(new URL("../tasks/sim.ts", import.meta.url))];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...task,
      "--port",
      "0",
      "--json",
      ...args,
    ],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const events: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
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
          resolve(e);
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`sim: no matching event within ${timeoutMs} ms`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  const listening = await waitFor((e) => e.event === "listening", 20000);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    await reading;
  };
  return { port: listening.port as number, events, waitFor, stop, [Symbol.asyncDispose]: stop };
}
