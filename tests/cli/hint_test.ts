/**
 * Every suggested command runs as printed (issue 22, point 3): built from the program the
 * user typed and the flags in effect (lib/cli/hint.ts), and every one the tasks can print
 * parses with that task's own parser.
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { TASKS } from "../../yaota.ts";
import { type CommandSpec, parseCommandArgs } from "../../lib/cli/cli.ts";
import {
  carriedFlags,
  type Invocation,
  quotedCommands,
  suggest,
  withInvocation,
} from "../../lib/cli/hint.ts";
import { renderKeygenReport } from "../../lib/setup/keygen.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir } from "../_helpers.ts";

const SPECS: Record<string, CommandSpec> = Object.fromEntries(
  await Promise.all(
    Object.entries(TASKS).map(async ([name, load]) => [name, (await load()).spec] as const),
  ),
);

/** Splits a printed command into words as a shell would (quotes, no expansion). */
function words(text: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const m of text.matchAll(re)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** Parses a printed `deno task NAME …` / `yaota NAME …` with NAME's own parser. */
function parsePrinted(command: string): void {
  const w = words(command);
  const rest = w[0] === "yaota" ? w.slice(1) : w[0] === "deno" && w[1] === "task" ? w.slice(2) : [];
  const [task, ...argv] = rest;
  const spec = SPECS[task ?? ""];
  assert(spec !== undefined, `'${command}' names no task`);
  const parsed = parseCommandArgs(spec, argv);
  assertEquals(parsed.warnings, undefined, `'${command}' uses an old flag name`);
}

/** The message strings of lib/ and tasks/ (comments left out), with `${…}` as a word. */
async function sourceMessages(): Promise<{ file: string; text: string }[]> {
  const out: { file: string; text: string }[] = [];
  for (const dir of ["lib", "tasks"]) {
    const root = fromFileUrl(new URL(`../../${dir}/`, import.meta.url));
    const walk = async (path: string): Promise<void> => {
      for await (const entry of Deno.readDir(path)) {
        const full = `${path}${entry.name}`;
        if (entry.isDirectory) await walk(`${full}/`);
        else if (entry.name.endsWith(".ts")) {
          for (const line of (await Deno.readTextFile(full)).split("\n")) {
            if (/^\s*(\*|\/\/|\/\*\*)/.test(line)) continue;
            out.push({ file: full, text: line.replace(/\$\{[^}]*\}/g, "X") });
          }
        }
      }
    };
    await walk(root);
  }
  return out;
}

Deno.test("suggest() uses the program typed and carries --config, --key and --device-port", () => {
  const inv: Invocation = {
    program: "yaota",
    task: "trigger",
    argv: ["--ip", "10.0.0.2", "--config", "my conf.json", "--port", "9000"],
  };
  assertEquals(
    suggest(inv, "deploy", "--ip 10.0.0.2"),
    "yaota deploy --config 'my conf.json' --device-port 9000 --ip 10.0.0.2",
  );
  // A flag the hint sets itself is not repeated; a task that does not take one is not given it.
  assertEquals(
    suggest(inv, "deploy", "--device-port 1"),
    "yaota deploy --config 'my conf.json' --device-port 1",
  );
  assertEquals(suggest(inv, "build-ota"), "yaota build-ota --config 'my conf.json'");
  // flash's --port is a serial device, not a board's network port.
  const flash: Invocation = {
    program: "deno task",
    task: "flash",
    argv: ["--port", "/dev/ttyUSB0"],
  };
  assertEquals(suggest(flash, "deploy", "--ip h"), "deno task deploy --ip h");
});

Deno.test("the flags suggest() carries are taken by the tasks it gives them to", () => {
  for (const [flag, tasks] of Object.entries(carriedFlags())) {
    const takers = Object.entries(SPECS).filter(([, s]) => flag in s.options || flag === "config")
      .map(([n]) => n);
    if (tasks === "all") continue;
    for (const t of tasks) assert(takers.includes(t), `${t} does not take --${flag}`);
  }
});

Deno.test("withInvocation() rewrites every quoted command of a message", () => {
  const inv: Invocation = { program: "yaota", task: "deploy", argv: ["--device-port", "8300"] };
  assertEquals(
    withInvocation(
      "not in OTA mode (run 'deno task trigger --ip h', or press its button); check with `deno task verify`",
      inv,
    ),
    "not in OTA mode (run 'yaota trigger --device-port 8300 --ip h', or press its button); check with `yaota verify`",
  );
});

Deno.test("every command the tasks and lib/ can print parses with its task's parser", async () => {
  let seen = 0;
  const bare: string[] = [];
  for (const { file, text } of await sourceMessages()) {
    for (const { task, args } of quotedCommands(text)) {
      seen++;
      try {
        parsePrinted(`deno task ${task} ${args}`);
      } catch (e) {
        throw new Error(`${file}: 'deno task ${task} ${args}': ${(e as Error).message}`);
      }
    }
    // A command outside quotes would not be rewritten for `yaota` or carry the flags. (A
    // quote opened on this line may close on the next; --help examples are `deno task` too.)
    const unquoted = text.replace(/(['`])deno task [a-z][a-z-]*(?:(?!\1)[^\n])*\1/g, "")
      .replace(/['`]deno task .*$/, "");
    const example = /^\s*(examples: \[)?["`]([A-Z_]+=\S+ )?(printf .*\| )?deno task /.test(text);
    const notHint = /WRITTEN_BY|added by deno task/.test(text) || file.includes("/lib/build/");
    if (/deno task [a-z]/.test(unquoted) && !example && !notHint) {
      bare.push(`${file}: ${text.trim()}`);
    }
  }
  assert(seen > 30, `only ${seen} commands found`);
  assertEquals(bare, [], "commands printed outside quotes");
});

Deno.test("every task's --help examples parse", () => {
  for (const spec of Object.values(SPECS)) {
    for (const example of spec.examples ?? []) {
      const command = example.replace(/^[A-Z_]+=\S+ /, "").replace(/^printf .*\| /, "")
        .replace(/ > \S+$/, "");
      parsePrinted(command);
    }
  }
});

Deno.test("keygen's next steps run as printed: real flags, no 'sign'", () => {
  const inv: Invocation = { program: "yaota", task: "keygen", argv: ["--config", "c.json"] };
  const lines = renderKeygenReport(
    {
      privateKey: "k/priv.key",
      publicKey: "k/pub.key",
      info: { bits: 512, fingerprint: "ab", modulus: new Uint8Array(64) },
    },
    (task, args) => suggest(inv, task, args),
  );
  const steps = lines.filter((l) => /^\s+\d\. /.test(l)).map((l) => l.replace(/^\s+\d\. /, ""));
  const commands = steps.filter((s) => s.startsWith("yaota ")).map((s) => s.split("   ")[0]!);
  assert(commands.length >= 3, lines.join("\n"));
  for (const c of commands) {
    parsePrinted(c);
    assertStringIncludes(c, "--config c.json");
  }
  assert(!lines.some((l) => /\bsign\b|--serial/.test(l)), lines.join("\n"));
});

Deno.test("a deploy hint carries the flags of the run and the program typed", async () => {
  await using dir = await tempDir();
  const fw = `${dir.path}/fw.bin`;
  await Deno.writeFile(fw, new Uint8Array(0));
  // Nothing listens (the port refuses at once, as a board running its app does): the hint
  // names deploy --trigger with this run's --device-port and --config.
  await Deno.writeTextFile(`${dir.path}/c.json`, "{}");
  const r = await runTaskFile("deploy", [
    "--config",
    `${dir.path}/c.json`,
    "--ip",
    "127.0.0.1",
    "--device-port",
    "9",
    "--timeout",
    "0.5",
    "--force",
    "--key",
    `${fromFileUrl(new URL("../vectors/test-key-512.pem", import.meta.url))}`,
    `${fromFileUrl(new URL("../vectors/fw-10000.bin", import.meta.url))}`,
  ]);
  assertEquals(r.code, 4, r.stderr);
  const [hint] = quotedCommands(r.stderr).filter((c) => c.task === "deploy");
  assert(hint !== undefined, r.stderr);
  assertStringIncludes(hint.args, "--device-port 9");
  assertStringIncludes(hint.args, "--config");
  assertStringIncludes(hint.args, "--trigger");
  parsePrinted(`deno task deploy ${hint.args}`);
});

Deno.test("every text line's suggested command is as typed: yaota status names 'yaota build-ota' with this run's --config", async () => {
  await using dir = await tempDir();
  const config = `${dir.path}/conf.json`;
  await Deno.writeTextFile(config, "{}");
  const yaota = fromFileUrl(new URL("../../yaota.ts", import.meta.url));
  const args = ["status", "--config", config, "--ip", "127.0.0.1", "--device-port", "9"];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", yaota, ...args, "--timeout", "0.3"],
    cwd: dir.path,
    env: { NO_COLOR: "1", WEBREPL_PASSWORD: "" },
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  // The heading (a status line, not an error) suggests a build, as this run would type it.
  assertStringIncludes(stdout, `'yaota build-ota --config ${config}'`);
  assert(!stdout.includes("deno task"), stdout);
});

/** The words a POSIX shell reads in `command` (its program replaced by one that prints them). */
async function shellWords(command: string): Promise<string[]> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `yaota() { printf '%s\\n' "$@"; }; ${command}`],
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).split("\n").slice(0, -1);
}

Deno.test("a hint in '…' with a config path holding a space or a single quote stays one command that a shell reads back", async () => {
  for (const config of ["my conf.json", "it's.json", 'a $b `c` "d".json', "wow!'s.json"]) {
    const inv: Invocation = { program: "yaota", argv: ["--config", config] };
    for (const message of ["run 'deno task verify' next", "run `deno task verify` next"]) {
      const text = withInvocation(message, inv);
      const commands = quotedCommands(text.replaceAll("yaota verify", "deno task verify"));
      assertEquals(commands.length, 1, text);
      assertEquals(commands[0]!.task, "verify", text);
      assert(text.startsWith("run ") && text.endsWith(" next"), text);
      const inner = text.slice("run ".length + 1, -" next".length - 1);
      assertEquals(await shellWords(inner), ["verify", "--config", config], text);
    }
  }
  const inv = (config: string): Invocation => ({ program: "yaota", argv: ["--config", config] });
  assertEquals(
    withInvocation("run 'deno task verify'", inv("my conf.json")),
    `run 'yaota verify --config "my conf.json"'`,
  );
  assertEquals(
    withInvocation("run 'deno task verify'", inv("it's.json")),
    'run `yaota verify --config "it\'s.json"`',
  );
  assertEquals(
    withInvocation("run `deno task verify`", inv("it's.json")),
    "run `yaota verify --config 'it'\\''s.json'`",
  );
});
