/**
 * The end-packet rule (docs/device.md, "Session restarts keep stale bytes") rests on one
 * place: `EngineCore.sendEnd`, which checks `endPacketAllowed` before anything else. These
 * tests read the sources so that a second way to make an end packet cannot slip in
 * unnoticed: a new caller must be added here, on purpose, with its proof.
 */
import { join } from "node:path";
import { assert, assertEquals } from "../_assert.ts";
import { ROOT } from "../_helpers.ts";

/** Every `.ts` file under `dir`, relative to the repository, comments removed. */
function sources(...dirs: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of Deno.readDirSync(join(ROOT, rel))) {
      const path = `${rel}/${e.name}`;
      if (e.isDirectory) walk(path);
      else if (e.name.endsWith(".ts")) {
        const text = Deno.readTextFileSync(join(ROOT, path));
        out.set(path, text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1"));
      }
    }
  };
  for (const d of dirs) walk(d);
  return out;
}

/** `[file, count]` for each file where `pattern` occurs. */
function occurrences(files: Map<string, string>, pattern: RegExp): [string, number][] {
  const found: [string, number][] = [];
  for (const [path, text] of files) {
    const n = text.match(new RegExp(pattern.source, "g"))?.length ?? 0;
    if (n > 0) found.push([path, n]);
  }
  return found.sort();
}

const lib = sources("lib", "tasks");

Deno.test("the engine queues an end action in exactly one place: EngineCore.sendEnd, behind endPacketAllowed()", () => {
  assertEquals(occurrences(lib, /push\(\{\s*type:\s*"end"/), [["lib/transfer/engine_core.ts", 1]]);
  const core = lib.get("lib/transfer/engine_core.ts")!;
  const start = core.indexOf("  sendEnd(");
  assert(start >= 0, "EngineCore.sendEnd not found");
  const body = core.slice(start, core.indexOf("\n  }\n", start));
  // The check comes first, and refusing throws: nothing is queued on any path around it.
  assert(
    /^\s*sendEnd\([^)]*\): void \{\s*if \(!this\.endPacketAllowed\(reason\)\) \{\s*throw /.test(
      body,
    ),
    `sendEnd does not open with the endPacketAllowed() check:\n${body}`,
  );
  assertEquals(occurrences(new Map([["sendEnd", body]]), /push\(/), [["sendEnd", 1]]);
});

Deno.test("only the final end (phase_ending.ts) and the clean-up end (phase_cleanup.ts) call sendEnd", () => {
  assertEquals(occurrences(lib, /\.sendEnd\(/), [
    ["lib/transfer/phase_cleanup.ts", 1],
    ["lib/transfer/phase_ending.ts", 1],
  ]);
  assert(/\.sendEnd\(\s*"final"/.test(lib.get("lib/transfer/phase_ending.ts")!));
  assert(/\.sendEnd\(\s*"cleanup"/.test(lib.get("lib/transfer/phase_cleanup.ts")!));
});

Deno.test("end-packet bytes are made only for the engine's end action (send_firmware.ts) and by the packet sources", () => {
  // The driver turns an end action into bytes; nothing else in lib/ or tasks/ asks for them.
  assertEquals(occurrences(lib, /\.endPacket\(/), [["lib/transfer/send_firmware.ts", 1]]);
  const driver = lib.get("lib/transfer/send_firmware.ts")!;
  assert(/a\.type === "end"\) \{\s*const d = source\.endPacket\(a\.seq\)/.test(driver));
  // The signed bytes themselves: a live source signs one on demand, `sign` stores copies
  // in a canned file (which its source replays only through `endPacket`).
  assertEquals(occurrences(lib, /makeEndPacket\(/), [
    ["lib/format/canned.ts", 1],
    ["lib/format/packet.ts", 1],
    ["lib/transfer/packet_source.ts", 1],
  ]);
});
