import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile } from "../_helpers.ts";

async function demoDirs(): Promise<string[]> {
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  const names: string[] = [];
  for await (const e of Deno.readDir(tmp)) if (e.name.startsWith("yaota-demo-")) names.push(e.name);
  return names;
}

Deno.test("demo deploys to a virtual device, says it would boot, and leaves nothing behind", async () => {
  const before = await demoDirs();
  const r = await runTaskFile("demo", ["--profile", "instant", "--bits", "512"]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "flash at 0x3c000 equals the image: yes");
  assertStringIncludes(r.stdout, "device would boot: yes");
  assertStringIncludes(r.stdout, "KiB/s");
  assertStringIncludes(r.stderr, "fingerprint");
  assert(!r.stderr.includes("PRIVATE KEY") && !r.stdout.includes("PRIVATE KEY"));
  assertEquals((await demoDirs()).filter((d) => !before.includes(d)), []);
});
