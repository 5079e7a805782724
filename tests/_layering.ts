/**
 * Reads the import graph of `lib/` and `tasks/` and checks it against the layering rules
 * (see tests/architecture_test.ts and README.md, "Architecture"). Test code only.
 */
import { dirname, join, normalize, relative } from "node:path";

/**
 * Each module (repo-relative path): the modules it imports, the terminal APIs it uses, and
 * which of its imports are type-only (erased at run time, so no part of an import cycle).
 */
export type ImportGraph = Map<
  string,
  { imports: string[]; terminal: string[]; typeOnly?: string[] }
>;

const TYPE_IMPORT =
  /(?:^|\n)\s*(?:import|export)\s+type\b[^;]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']/g;

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']/g;
const DYNAMIC = /\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;
const WORKER = /new\s+Worker\(\s*new\s+URL\(\s*["'](\.{1,2}\/[^"']+)["']/g;
const TERMINAL = /(?<![.\w$])(Deno\.stdout|Deno\.stderr|Deno\.stdin|console)\s*\./g;

/** Strips comments so a doc example or a comment naming `console.log` is not counted. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

/** Empties string literals, so a message that says "serial console." is not counted. */
function withoutStrings(text: string): string {
  return text.replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g, '""');
}

async function* tsFiles(root: string, dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(join(root, dir))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* tsFiles(root, path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

/** The graph of every `.ts` file under `lib/` and `tasks/`. Needs `--allow-read`. */
export async function readImportGraph(root: string): Promise<ImportGraph> {
  const graph: ImportGraph = new Map();
  for (const top of ["lib", "tasks"]) {
    for await (const file of tsFiles(root, top)) {
      const text = code(await Deno.readTextFile(join(root, file)));
      const imports = new Set<string>();
      for (const re of [IMPORT, DYNAMIC, WORKER]) {
        for (const m of text.matchAll(re)) {
          imports.add(normalize(join(dirname(file), m[1]!)));
        }
      }
      const terminal = new Set([...withoutStrings(text).matchAll(TERMINAL)].map((m) => m[1]!));
      const typeOnly = [...text.matchAll(TYPE_IMPORT)]
        .map((m) => normalize(join(dirname(file), m[1]!)))
        // A module imported for types in one statement and for values in another counts.
        .filter((target) =>
          ![...text.matchAll(IMPORT)].some((m) =>
            !/^\s*(?:import|export)\s+type\b/.test(m[0].trimStart()) &&
            normalize(join(dirname(file), m[1]!)) === target
          )
        );
      graph.set(relative(".", file), {
        imports: [...imports].sort(),
        terminal: [...terminal],
        typeOnly: [...new Set(typeOnly)].sort(),
      });
    }
  }
  return graph;
}

const area = (path: string) => path.startsWith("lib/") ? path.split("/")[1] ?? "" : "";
const isRootHelper = (path: string) => path.startsWith("lib/") && path.split("/").length === 2;

/**
 * The areas of `lib/`, from the bottom up (README.md, "Architecture"). A module imports
 * its own area, the root helpers (`lib/*.ts`, which import only each other) and the
 * areas of the layers below its own: never sideways, never up.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ["format"],
  ["config"],
  ["transfer", "micropython"],
  ["webrepl", "build"],
  ["deploy", "setup"],
  ["fleet"],
  ["cli", "dashboard"],
  ["sim", "bench"],
];
const layerOf = (name: string) => LAYERS.findIndex((layer) => layer.includes(name));
const ORDER = LAYERS.map((layer) => layer.join(" and ")).join(", then ");
/** The edges that may use the virtual device and the benchmark. */
const SIM_USERS = new Set(["tasks/sim.ts", "tasks/demo.ts", "tasks/bench.ts"]);
const TERMINAL_RULE =
  "only lib/cli/ and tasks/ touch the terminal; report through a callback or returned data";

/** Every import or terminal use that breaks a rule, as a sentence. Pure. */
export function layeringProblems(graph: ImportGraph): string[] {
  const problems: string[] = [];
  for (const [file, { imports, terminal }] of graph) {
    const from = area(file);
    const mayTouchTerminal = file.startsWith("tasks/") || from === "cli";
    const mayUseSim = SIM_USERS.has(file) || from === "sim" || from === "bench";
    for (const target of imports) {
      const to = area(target);
      if ((to === "sim" || to === "bench") && !mayUseSim) {
        problems.push(
          `${file} imports ${target}: production code never imports the virtual device or the benchmark`,
        );
      } else if (to === "cli" && !mayTouchTerminal) {
        problems.push(`${file} imports ${target}: ${TERMINAL_RULE}`);
      } else if (from === "format" && to !== "format" && !isRootHelper(target)) {
        problems.push(
          `${file} imports ${target}: lib/format/ is the bottom layer (itself and the lib/ root helpers only)`,
        );
      } else if (isRootHelper(file) && target.startsWith("lib/") && !isRootHelper(target)) {
        problems.push(`${file} imports ${target}: the lib/ root helpers import only each other`);
      } else if (
        !isRootHelper(file) && !isRootHelper(target) && from !== "" && to !== "" &&
        from !== to && !((to === "sim" || to === "bench") && mayUseSim)
      ) {
        const [a, b] = [layerOf(from), layerOf(to)];
        if (a < 0 || b < 0) {
          problems.push(
            `${file} imports ${target}: lib/${
              a < 0 ? from : to
            }/ is in no layer: add it to LAYERS in tests/_layering.ts (and README.md, "Architecture")`,
          );
        } else if (b >= a) {
          problems.push(
            `${file} imports ${target}: imports go down the layers (${ORDER}); lib/${to}/ is not below lib/${from}/`,
          );
        }
      }
    }
    if (!mayTouchTerminal) {
      for (const api of terminal) problems.push(`${file} uses ${api}: ${TERMINAL_RULE}`);
    }
  }
  return problems;
}

/** Each import cycle once, as the path around it (first module repeated at the end). Pure. */
export function importCycles(graph: ImportGraph): string[][] {
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const done = new Set<string>();
  const stack: string[] = [];
  const visit = (node: string) => {
    if (done.has(node)) return;
    const at = stack.indexOf(node);
    if (at >= 0) {
      const cycle = stack.slice(at);
      const key = [...cycle].sort().join(" ");
      if (!seen.has(key)) {
        seen.add(key);
        cycles.push([...cycle, node]);
      }
      return;
    }
    stack.push(node);
    const entry = graph.get(node);
    for (const next of entry?.imports ?? []) {
      if (graph.has(next) && !entry?.typeOnly?.includes(next)) visit(next);
    }
    stack.pop();
    done.add(node);
  };
  for (const node of [...graph.keys()].sort()) visit(node);
  return cycles;
}
