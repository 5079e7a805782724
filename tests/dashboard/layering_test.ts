/**
 * The dashboard's layering, checked on its sources: one module adapts the toolchain
 * (fleet_port.ts), the server and the page see only `port.ts` (which takes the toolchain's
 * types, never its code); no module imports the virtual device (the demo's boards are
 * lib/sim/demo_fleet.ts); nothing writes to the
 * terminal; the page loads nothing from elsewhere.
 */
import { join } from "node:path";
import { assert, assertEquals } from "../_assert.ts";
import { ROOT } from "../_helpers.ts";

const DIR = join(ROOT, "lib", "dashboard");

/** Each module of lib/dashboard/ and the lib/ folders (or files) it imports, outside lib/dashboard/. */
async function imports(): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for await (const e of Deno.readDir(DIR)) {
    if (!e.isFile || !e.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(join(DIR, e.name));
    const specifiers = [...text.matchAll(/(?:from|import\()\s*"([^"]+)"/g)].map((m) => m[1]!);
    const outside = specifiers.filter((s) => s.startsWith("../")).map((s) => {
      const parts = s.slice(3).split("/");
      return parts.length > 1 ? `${parts[0]}/` : parts[0]!;
    });
    found.set(e.name, [...new Set(outside)].sort());
  }
  return found;
}

Deno.test("lib/dashboard: only fleet_port.ts adapts the toolchain; the server and the page see port.ts, which imports types only", async () => {
  const all = await imports();
  const reach = Object.fromEntries([...all].filter(([, i]) => i.length > 0).sort());
  assertEquals(reach, {
    "fleet_port.ts": ["_bytes.ts", "build/", "config/", "deploy/", "errors.ts", "format/"],
    "port.ts": ["build/", "deploy/"],
    "request_body.ts": ["errors.ts"],
    "rollout_request.ts": ["errors.ts"],
    "serve.ts": ["transfer/"],
    "server.ts": ["errors.ts"],
    // The page's files, read beside the code or fetched where yaota was installed from.
    "static_assets.ts": ["_fs.ts"],
  });
  // port.ts takes the toolchain's shapes (a status row, an event), never its code.
  const port = await Deno.readTextFile(join(DIR, "port.ts"));
  const portImports = [...port.matchAll(/^(import|export)\b[^;]*from "[^"]+";/gms)].map((m) =>
    m[0]
  );
  assert(portImports.length > 0);
  for (const i of portImports) assert(/^(import|export) type /.test(i), `port.ts: ${i}`);
  const serve = await Deno.readTextFile(join(DIR, "serve.ts"));
  assertEquals(
    [...serve.matchAll(/from "(\.\.\/transfer\/[^"]+)"/g)].map((m) => m[1]),
    ["../transfer/listen_error.ts"],
    "serve.ts takes only the bind-error wording from transfer/",
  );
});

Deno.test("lib/dashboard: no module imports the virtual device; none writes to the terminal", async () => {
  for await (const e of Deno.readDir(DIR)) {
    if (!e.isFile || !/\.(ts|js)$/.test(e.name)) continue;
    const text = await Deno.readTextFile(join(DIR, e.name));
    assert(!/\.\.\/(sim|bench)\//.test(text), `${e.name} imports lib/sim or lib/bench`);
    assert(!/\.\.\/cli\//.test(text), `${e.name} imports lib/cli`);
    assert(!/console\.|Deno\.std(out|err)/.test(text), `${e.name} writes to the terminal`);
  }
  // The demo's boards live with the virtual device; only the demo task starts them.
  for (const folder of ["lib", "tasks"]) {
    for await (const file of walk(join(ROOT, folder))) {
      if (file.endsWith("tasks/demo.ts") || file.includes("/lib/sim/")) continue;
      const text = await Deno.readTextFile(file);
      assert(!text.includes("demo_fleet"), `${file} imports the demo's boards`);
    }
  }
});

Deno.test("the page is plain files in the repository: nothing fetched from elsewhere", async () => {
  for await (const e of Deno.readDir(join(DIR, "static"))) {
    const text = await Deno.readTextFile(join(DIR, "static", e.name));
    assertEquals(text.match(/\b(src|href)\s*=\s*["']?(https?:)?\/\/[^"' >]*/g), null, e.name);
    assertEquals(text.match(/@import|fetch\(\s*["'`]https?:/g), null, e.name);
  }
});

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) yield* walk(path);
    else if (e.name.endsWith(".ts")) yield path;
  }
}
