/**
 * Installing `yaota` (issue 22, point 10): the packages deno.lock holds, pinned; nothing
 * test-only on the run path. (The install from a URL, with no clone behind the command, is
 * run in tests/cli/yaota_test.ts.)
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { ROOT } from "../_helpers.ts";

const TEST_ONLY = ["ajv", "puppeteer-core"];

const denoJson = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
const lock = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.lock")));

Deno.test("deno.json pins each package to the exact version deno.lock holds", () => {
  for (const [name, specifier] of Object.entries(denoJson.imports as Record<string, string>)) {
    const m = /^npm:(@?[^@]+)@(\d+\.\d+\.\d+)$/.exec(specifier);
    assert(m, `${name}: '${specifier}' is not an exact version`);
    assertEquals(lock.specifiers[specifier], m[2], `${name}: deno.lock resolves it otherwise`);
  }
});

Deno.test("test-only packages are not on the run path", async () => {
  for (const pkg of TEST_ONLY) {
    assert(!(pkg in denoJson.imports), `deno.json imports ${pkg}: the first run would fetch it`);
  }
  // What `yaota` loads (every task: yaota.ts imports them all) and their npm packages.
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "yaota.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(info.code, 0, new TextDecoder().decode(info.stderr));
  const graph = JSON.parse(new TextDecoder().decode(info.stdout));
  const packages: Record<string, { dependencies?: string[] }> = graph.npmPackages;
  const seen = new Set<string>();
  const visit = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const dep of packages[id]?.dependencies ?? []) visit(dep);
  };
  for (const m of graph.modules as { specifier: string }[]) {
    const npm = /^npm:\/?(@?[^@/]+(?:\/[^@/]+)?@[^/]+)/.exec(m.specifier);
    if (npm) visit(npm[1]!);
  }
  assert([...seen].some((id) => id.startsWith("node-forge@")), [...seen].join(", "));
  for (const id of seen) {
    assert(!TEST_ONLY.some((pkg) => id.startsWith(`${pkg}@`)), `the run path needs ${id}`);
  }
});

Deno.test("README: the install folder goes on PATH; the tests take about 4 minutes", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  assertStringIncludes(readme, 'export PATH="$HOME/.deno/bin:$PATH"');
  assertStringIncludes(readme, "about 4 minutes");
});
