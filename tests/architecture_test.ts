/**
 * The layering rules of README.md's "Architecture", checked on the real import graph:
 * - the virtual device (`lib/sim/`) and the benchmark (`lib/bench/`) are never imported by
 *   production code (only by each other, by `tasks/sim.ts`, `tasks/demo.ts`,
 *   `tasks/bench.ts` and the dashboard's demo mode, and by tests);
 * - only `lib/cli/` and `tasks/` touch the terminal: no other `lib/` module imports
 *   `lib/cli/` or uses `Deno.stdout`, `Deno.stderr`, `Deno.stdin` or `console`;
 * - `lib/format/` is the bottom layer: it imports only itself and the root helpers;
 * - no import cycles between modules.
 */
import { assertEquals } from "./_assert.ts";
import { ROOT } from "./_helpers.ts";
import { importCycles, type ImportGraph, layeringProblems, readImportGraph } from "./_layering.ts";

Deno.test("layeringProblems() finds none in lib/ and tasks/", async () => {
  const graph = await readImportGraph(ROOT);
  assertEquals(layeringProblems(graph), []);
});

Deno.test("importCycles() finds no cycle between modules", async () => {
  const graph = await readImportGraph(ROOT);
  assertEquals(importCycles(graph), []);
});

Deno.test("layeringProblems() names each kind of forbidden import", () => {
  const graph: ImportGraph = new Map([
    ["lib/deploy/deploy.ts", { imports: ["lib/sim/device.ts", "lib/cli/output.ts"], terminal: [] }],
    ["lib/format/packet.ts", { imports: ["lib/transfer/udp.ts"], terminal: [] }],
    ["lib/build/build_ota.ts", { imports: [], terminal: ["console"] }],
    ["tasks/deploy.ts", { imports: ["lib/bench/baseline_sender.ts"], terminal: [] }],
    ["tasks/sim.ts", { imports: ["lib/sim/device.ts"], terminal: ["Deno.stdout"] }],
    ["lib/cli/output.ts", { imports: [], terminal: ["Deno.stderr"] }],
  ]);
  assertEquals(layeringProblems(graph), [
    "lib/deploy/deploy.ts imports lib/sim/device.ts: production code never imports the virtual device or the benchmark",
    "lib/deploy/deploy.ts imports lib/cli/output.ts: only lib/cli/ and tasks/ touch the terminal; report through a callback or returned data",
    "lib/format/packet.ts imports lib/transfer/udp.ts: lib/format/ is the bottom layer (itself and the lib/ root helpers only)",
    "lib/build/build_ota.ts uses console: only lib/cli/ and tasks/ touch the terminal; report through a callback or returned data",
    "tasks/deploy.ts imports lib/bench/baseline_sender.ts: production code never imports the virtual device or the benchmark",
  ]);
});

Deno.test("importCycles() finds a cycle", () => {
  const graph: ImportGraph = new Map([
    ["lib/a.ts", { imports: ["lib/b.ts"], terminal: [] }],
    ["lib/b.ts", { imports: ["lib/c.ts"], terminal: [] }],
    ["lib/c.ts", { imports: ["lib/a.ts"], terminal: [] }],
  ]);
  assertEquals(importCycles(graph), [["lib/a.ts", "lib/b.ts", "lib/c.ts", "lib/a.ts"]]);
});
