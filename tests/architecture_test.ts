/**
 * The layering rules of README.md's "Architecture", checked on the real import graph:
 * - the virtual device (`lib/sim/`) and the benchmark (`lib/bench/`) are never imported by
 *   production code (only by each other, by `tasks/sim.ts`, `tasks/demo.ts`,
 *   `tasks/bench.ts`, and by tests);
 * - only `lib/cli/` and `tasks/` touch the terminal: no other `lib/` module imports
 *   `lib/cli/` or uses `Deno.stdout`, `Deno.stderr`, `Deno.stdin` or `console`;
 * - `lib/format/` is the bottom layer: it imports only itself and the root helpers;
 * - imports go down the layers of `LAYERS` (tests/_layering.ts), never sideways or up, and
 *   the root helpers (`lib/*.ts`) import only each other;
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
    ["lib/deploy/board_push.ts", {
      imports: ["lib/sim/device.ts", "lib/cli/output.ts"],
      terminal: [],
    }],
    ["lib/format/packet.ts", { imports: ["lib/transfer/udp.ts"], terminal: [] }],
    ["lib/build/build_ota.ts", { imports: [], terminal: ["console"] }],
    ["tasks/deploy.ts", { imports: ["lib/bench/baseline_sender.ts"], terminal: [] }],
    ["tasks/sim.ts", { imports: ["lib/sim/device.ts"], terminal: ["Deno.stdout"] }],
    ["lib/cli/output.ts", { imports: [], terminal: ["Deno.stderr"] }],
    ["lib/config/values.ts", { imports: ["lib/build/linker_script.ts"], terminal: [] }],
    ["lib/build/frozen_modules.ts", { imports: ["lib/webrepl/client.ts"], terminal: [] }],
    ["lib/errors.ts", { imports: ["lib/format/packet.ts", "lib/_bytes.ts"], terminal: [] }],
    ["lib/gadgets/x.ts", { imports: ["lib/format/packet.ts"], terminal: [] }],
    ["lib/deploy/fleet.ts", { imports: ["lib/transfer/udp.ts", "lib/_bytes.ts"], terminal: [] }],
    // The demo's boards are virtual boards: they live in lib/sim/.
    ["lib/sim/demo_fleet.ts", { imports: ["lib/sim/virtual_device.ts"], terminal: [] }],
  ]);
  assertEquals(layeringProblems(graph), [
    "lib/deploy/board_push.ts imports lib/sim/device.ts: production code never imports the virtual device or the benchmark",
    "lib/deploy/board_push.ts imports lib/cli/output.ts: only lib/cli/ and tasks/ touch the terminal; report through a callback or returned data",
    "lib/format/packet.ts imports lib/transfer/udp.ts: lib/format/ is the bottom layer (itself and the lib/ root helpers only)",
    "lib/build/build_ota.ts uses console: only lib/cli/ and tasks/ touch the terminal; report through a callback or returned data",
    "tasks/deploy.ts imports lib/bench/baseline_sender.ts: production code never imports the virtual device or the benchmark",
    "lib/config/values.ts imports lib/build/linker_script.ts: imports go down the layers (format, then config, then transfer and micropython, then webrepl and build, then deploy and setup, then fleet, then cli and dashboard, then sim and bench); lib/build/ is not below lib/config/",
    "lib/build/frozen_modules.ts imports lib/webrepl/client.ts: imports go down the layers (format, then config, then transfer and micropython, then webrepl and build, then deploy and setup, then fleet, then cli and dashboard, then sim and bench); lib/webrepl/ is not below lib/build/",
    "lib/errors.ts imports lib/format/packet.ts: the lib/ root helpers import only each other",
    'lib/gadgets/x.ts imports lib/format/packet.ts: lib/gadgets/ is in no layer: add it to LAYERS in tests/_layering.ts (and README.md, "Architecture")',
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

Deno.test("importCycles() leaves out type-only imports, which are erased at run time", () => {
  const graph: ImportGraph = new Map([
    ["lib/a.ts", { imports: ["lib/b.ts"], terminal: [] }],
    ["lib/b.ts", { imports: ["lib/a.ts"], terminal: [], typeOnly: ["lib/a.ts"] }],
  ]);
  assertEquals(importCycles(graph), []);
});
