/**
 * The README's "Try it without Docker or a board" runs as printed (issue 22, point 2): its
 * commands are read out of README.md and run one by one, in a fresh folder, the way a
 * shell runs them (`&` in the background, `export`, `kill %N`), each `deno task NAME` as
 * `deno run -A tasks/NAME.ts` (what deno.json's task says) in that folder. The rollout
 * must reach both boards, canary first, and status must then show them up to date.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { hermeticEnv, ROOT, tempDir } from "../_helpers.ts";

const SECTION = "## Try it without Docker or a board";
const TASKS: Record<string, string> = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks;

/** The commands of the section's first `sh` block, comments left out. */
async function readmeCommands(): Promise<string[]> {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const at = readme.indexOf(SECTION);
  assert(at >= 0, `README.md has no '${SECTION}'`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert(block, "the section has no sh block");
  return block[1]!.split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter((l) => l);
}

interface Background {
  child: Deno.ChildProcess;
  stderr: Promise<string>;
}

/** Reads `stream` until `marker` shows, then keeps draining it; resolves with all of it. */
function watch(stream: ReadableStream<Uint8Array>, marker: string, seen: () => void) {
  return (async () => {
    let text = "";
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      if (text.includes(marker)) seen();
    }
    return text;
  })();
}

Deno.test("README: from a fresh folder to a canary rollout on two virtual boards, as printed", async () => {
  const commands = await readmeCommands();
  assert(commands.some((c) => /deploy .*--fleet .*--canary/.test(c)), "no canary rollout");
  await using dir = await tempDir();
  const env = hermeticEnv();
  const background: Background[] = [];
  const outputs: { command: string; stdout: string; stderr: string }[] = [];
  try {
    for (const command of commands) {
      const exported = /^export (\w+)=(\S+)$/.exec(command);
      if (exported) {
        env[exported[1]!] = exported[2]!;
        continue;
      }
      const killed = /^kill((?: %\d+)+)$/.exec(command);
      if (killed) {
        for (const job of killed[1]!.trim().split(" ")) {
          const b = background[Number(job.slice(1)) - 1];
          assert(b, `${command}: no job ${job}`);
          b.child.kill("SIGTERM");
          assertEquals((await b.child.status).code, 0, await b.stderr);
          // Its banner said what the board does: its app runs, WebREPL up.
          assertStringIncludes(await b.stderr, "running its app (WebREPL on TCP");
        }
        continue;
      }
      const words = command.replace(/\s*&$/, "").split(/\s+/);
      assertEquals(words.slice(0, 2), ["deno", "task"], `not a deno task: ${command}`);
      const file = `tasks/${words[2]!.replaceAll("-", "_")}.ts`;
      // What `deno task NAME` runs, as deno.json says: then run here, in the fresh folder.
      assertEquals(TASKS[words[2]!], `deno run -A ${file}`, command);
      const args = ["run", "-A", `${ROOT}${file}`];
      const child = new Deno.Command(Deno.execPath(), {
        args: [...args, ...words.slice(3)],
        cwd: dir.path,
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      if (command.endsWith("&")) {
        // As a person would, wait for the board's banner before the next line.
        const { promise: listening, resolve } = Promise.withResolvers<void>();
        const stderr = watch(child.stderr, "virtual yaota8266 on", resolve);
        void child.stdout.cancel();
        const ended = child.status.then(async (s) => {
          throw new Error(`${command} ended (${s.code}) before listening:\n${await stderr}`);
        });
        await Promise.race([listening, ended]);
        ended.catch(() => {});
        background.push({ child, stderr });
        continue;
      }
      const out = await child.output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, `${command}\n${stdout}\n${stderr}`);
      outputs.push({ command, stdout, stderr });
    }
  } finally {
    for (const b of background) {
      try {
        b.child.kill("SIGKILL");
      } catch { /* already ended */ }
      await b.child.status;
    }
  }
  const [before, rollout, after] = outputs.filter((o) => / (status|deploy) /.test(o.command));
  assertMatch(before!.stdout, /kitchen .* older/);
  assertMatch(before!.stdout, /garage .* older/);
  assertStringIncludes(rollout!.stdout, "all 2 devices updated");
  // The canary went alone: garage started only after kitchen ran the new build.
  const log = rollout!.stderr;
  assert(
    log.indexOf("kitchen  done:") < log.indexOf("garage   sending"),
    `garage started before the canary was done:\n${log}`,
  );
  assertMatch(after!.stdout, /kitchen .* up to date/);
  assertMatch(after!.stdout, /garage .* up to date/);
});
