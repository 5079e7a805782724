/**
 * `bench --load`: a separate process that keeps every core of the machine busy (one
 * spinning thread per core), so that the figures show deploy on a busy machine. Stopped
 * by `stop()`, or by the bench's end however it ends (it closes the child's stdin).
 */

/**
 * The load process's program: one busy worker per core. Its main thread waits for the end
 * of its stdin, which comes when the bench closes it, or ends in any way (Ctrl-C
 * included): it never outlives the bench.
 */
const PROGRAM = `
const spin = "for (;;) { Math.sqrt(Math.random()); }";
const url = URL.createObjectURL(new Blob([spin], { type: "text/javascript" }));
for (let i = 0; i < navigator.hardwareConcurrency; i++) new Worker(url, { type: "module" });
for await (const _ of Deno.stdin.readable) { /* until the bench goes */ }
Deno.exit(0);
`;

export interface CpuLoad extends AsyncDisposable {
  /** Threads spinning (the machine's cores). */
  threads: number;
  stop(): Promise<void>;
}

export function startCpuLoad(): CpuLoad {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", PROGRAM],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await child.stdin.close().catch(() => {});
    await child.status;
  };
  return { threads: navigator.hardwareConcurrency, stop, [Symbol.asyncDispose]: stop };
}
