/**
 * `deno task compile [--target T] [--out FILE]`: one `yaota` binary with no Deno needed
 * to run it (`deno compile`), the git commit written in so that `--version` names it.
 * The release workflow runs it once per target.
 */
import { join, resolve } from "node:path";
import {
  type CommandSpec,
  noPositionals,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { ContainerRuntimeError, UsageError } from "../lib/errors.ts";
import { log, print } from "../lib/cli/output.ts";
import { fromFileUrl } from "../lib/_paths.ts";
import { checkoutCommit, VERSION } from "../lib/cli/version.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));

/** `deno compile --target` values: the platforms Deno ships a runtime (denort) for. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

/**
 * Files the binary reads beside its code: the dashboard's page (HTML, CSS, JavaScript) and
 * the templates the builds write into the user's trees (and the virtual device runs).
 */
const ASSETS = ["lib/dashboard/static", "templates"];

/** Modules the binary loads as workers: `deno compile` only sees static imports. */
const WORKERS = ["lib/transfer/_sign_worker.ts", "lib/micropython/_worker.ts"];

export const spec: CommandSpec = {
  name: "compile",
  summary: "Build a standalone yaota binary with deno compile (what the release workflow ships).",
  repositoryOnly: true,
  options: {
    target: {
      type: "string",
      arg: "TARGET",
      help: `platform to build for (default: this one): ${TARGETS.join(", ")}`,
    },
    out: { type: "string", arg: "FILE", help: "where to write it (default: dist/yaota-TARGET)" },
  },
  notes: [
    "deno compile joins the program to denort, Deno's runtime without its tools, which it " +
    "downloads (once per version and target) from Deno's release site. Without network access, " +
    "point DENORT_BIN at a denort binary of the same Deno version and target.",
  ],
  examples: ["deno task compile", "deno task compile --target aarch64-apple-darwin"],
};

/** The arguments of `deno compile`; pure. */
export function compileArgs(entry: string, out: string, target?: string): string[] {
  return [
    "compile",
    "--allow-all",
    "--config",
    join(ROOT, "deno.json"),
    ...WORKERS.flatMap((w) => ["--include", join(ROOT, w)]),
    ...ASSETS.flatMap((a) => ["--include", join(ROOT, a)]),
    ...(target ? ["--target", target] : []),
    "--output",
    out,
    entry,
  ];
}

/** The program `deno compile` builds: yaota's `main` with what the build knows. */
function entrySource(commit: string | undefined): string {
  const url = new URL("../yaota.ts", import.meta.url).href;
  return `import { main } from ${JSON.stringify(url)};\n` +
    `await main(Deno.args, ${JSON.stringify(commit ? { commit } : {})});\n`;
}

export async function main({ args }: TaskContext): Promise<number | void> {
  noPositionals(args);
  const target = stringOpt(args.values, "target");
  if (target !== undefined && !TARGETS.includes(target)) {
    throw new UsageError(`--target expects one of ${TARGETS.join(", ")}, got '${target}'`);
  }
  const name = `yaota-${target ?? Deno.build.target}`;
  const out = resolve(
    stringOpt(args.values, "out") ??
      join(ROOT, "dist", (target ?? Deno.build.target).includes("windows") ? `${name}.exe` : name),
  );
  const commit = await checkoutCommit(import.meta.url);
  const dir = await Deno.makeTempDir({ prefix: "yaota-compile-" });
  try {
    const entry = join(dir, "yaota_main.ts");
    await Deno.writeTextFile(entry, entrySource(commit));
    log(`compiling yaota ${VERSION}${commit ? ` (commit ${commit})` : ""} for ${name.slice(6)}`);
    const result = await new Deno.Command(Deno.execPath(), {
      args: compileArgs(entry, out, target),
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "inherit",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(result.stderr);
    const tail = stderr.split("\n").map((l) => l.trimEnd())
      .filter((l) => l !== "" && !/^Stack backtrace|^\s+\d+: <unknown>/.test(l));
    if (!result.success) {
      const denort = /denort|dns error|download/i.test(stderr);
      throw new ContainerRuntimeError(
        `deno compile failed (exit code ${result.code})` +
          (tail.length ? `:\n  ${tail.slice(-6).join("\n  ")}` : "") +
          (denort
            ? "\nIt needs denort for this target: with no network access, set DENORT_BIN to a " +
              `denort binary of Deno ${Deno.version.deno}.`
            : ""),
        result.code,
        tail.slice(-12),
      );
    }
    print(out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) runTask(spec, main);
