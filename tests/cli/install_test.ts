/**
 * Installing `yaota` (issue 22, point 10): from a URL, with no clone behind the command;
 * the packages deno.lock holds, pinned; nothing test-only on the run path.
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { ROOT, tempDir } from "../_helpers.ts";

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

Deno.test("installed from a URL, yaota runs with no clone behind it", async () => {
  await using dir = await tempDir();
  // The repository's files over HTTP, as a tag's raw files are.
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    try {
      return new Response(await Deno.readFile(join(ROOT, new URL(r.url).pathname)));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    const root = join(dir.path, "install");
    const install = await new Deno.Command(Deno.execPath(), {
      args: [
        "install",
        "-g",
        "-A",
        "-f",
        "--root",
        root,
        "-n",
        "yaota",
        "--import-map",
        `${url}/deno.json`,
        `${url}/yaota.ts`,
      ],
      cwd: dir.path,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(install.code, 0, new TextDecoder().decode(install.stderr));
    const shim = join(root, "bin", "yaota");
    assert(!(await Deno.readTextFile(shim)).includes(ROOT), "the command names the clone");
    const run = async (...args: string[]) => {
      const r = await new Deno.Command(shim, {
        args,
        cwd: dir.path,
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
      assertEquals(r.code, 0, text);
      return text;
    };
    assertStringIncludes(await run("help"), "Tasks:");
    // The sample project reads templates/ota.py: fetched, since the modules are remote.
    const out = await run("demo", "--keep", "sample");
    assertStringIncludes(out, "yaota sim --config sample/ota.config.json --device kitchen");
    assert((await Deno.stat(join(dir.path, "sample", "ota.config.json"))).isFile);
  } finally {
    await server.shutdown();
  }
});

Deno.test("README: the install folder goes on PATH; the tests take about 4 minutes", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  assertStringIncludes(readme, 'export PATH="$HOME/.deno/bin:$PATH"');
  assertStringIncludes(readme, "about 4 minutes");
});
