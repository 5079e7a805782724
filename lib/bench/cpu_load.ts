/**
 * `bench --load`: a separate process that keeps every core of the machine busy (one
 * spinning thread per core), so that the figures show deploy on a busy machine. Stopped
 * by `stop()` (its own child, by its process handle).
 */

/** The load process's program: one busy worker per core beside a busy main thread. */
const PROGRAM = `
const spin = "for (;;) { Math.sqrt(Math.random()); }";
const url = URL.createObjectURL(new Blob([spin], { type: "text/javascript" }));
for (let i = 1; i < navigator.hardwareConcurrency; i++) new Worker(url, { type: "module" });
for (;;) { Math.sqrt(Math.random()); }
`;

export interface CpuLoad extends AsyncDisposable {
  /** Threads spinning (the machine's cores). */
  threads: number;
  stop(): Promise<void>;
}

export function startCpuLoad(): CpuLoad {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", PROGRAM],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
  };
  return { threads: navigator.hardwareConcurrency, stop, [Symbol.asyncDispose]: stop };
}
