/**
 * `yaota TASK [options]`: every task of `deno task TASK` as one command, with the same
 * flags and the same `--help`. Install it with
 * `deno install -g -A -n yaota ./yaota.ts` (from a checkout), or use a compiled binary.
 *
 * Adding a task: one line in `TASKS` (its file exports `spec` and `main`, see
 * `TaskModule` in lib/cli.ts) and its line in deno.json; a test checks the two agree.
 */
import { renderTaskList, runTask, type TaskModule } from "./lib/cli/cli.ts";
import { EXIT } from "./lib/exit_codes.ts";
import { didYouMean } from "./lib/_suggest.ts";
import { fail, log, print } from "./lib/cli/output.ts";
import { type BuildInfo, checkoutCommit, versionLine } from "./lib/cli/version.ts";

/** Task name → its module, loaded only when run (the literal imports let `deno compile` see them). */
export const TASKS: Record<string, () => Promise<TaskModule>> = {
  "keygen": () => import("./tasks/keygen.ts"),
  "build-bootloader": () => import("./tasks/build_bootloader.ts"),
  "build-ota": () => import("./tasks/build_ota.ts"),
  "sign": () => import("./tasks/sign.ts"),
  "inspect": () => import("./tasks/inspect.ts"),
  "verify": () => import("./tasks/verify.ts"),
  "flash": () => import("./tasks/flash.ts"),
  "deploy": () => import("./tasks/deploy.ts"),
  "status": () => import("./tasks/status.ts"),
  "scan": () => import("./tasks/scan.ts"),
  "report": () => import("./tasks/report.ts"),
  "trigger": () => import("./tasks/trigger.ts"),
  "repl": () => import("./tasks/repl.ts"),
  "exec": () => import("./tasks/exec.ts"),
  "put": () => import("./tasks/put.ts"),
  "get": () => import("./tasks/get.ts"),
  "ls": () => import("./tasks/ls.ts"),
  "rm": () => import("./tasks/rm.ts"),
  "dashboard": () => import("./tasks/dashboard.ts"),
  "spike": () => import("./tasks/spike.ts"),
  "sim": () => import("./tasks/sim.ts"),
  "demo": () => import("./tasks/demo.ts"),
  "bench": () => import("./tasks/bench.ts"),
};

/** deno.json tasks that are the repository's own tooling, not commands of `yaota`. */
export const REPOSITORY_TASKS = ["test", "compile"];

async function taskList(): Promise<string> {
  const modules = await Promise.all(Object.values(TASKS).map((load) => load()));
  return renderTaskList(modules.map((m) => m.spec));
}

/**
 * Runs `yaota` with `argv` (the arguments after the program name) and exits.
 * `build` is what a compiled binary knows about itself (its commit).
 */
export async function main(argv: string[], build?: BuildInfo): Promise<never> {
  const [first, ...rest] = argv;
  if (first === "help" && rest[0] !== undefined) return await main([rest[0], "--help"], build);
  if (first === undefined || first === "help" || first === "--help" || first === "-h") {
    print(await taskList());
    Deno.exit(EXIT.ok);
  }
  if (first === "--version" || first === "-V" || first === "version") {
    const info = build ?? { commit: await checkoutCommit(import.meta.url) };
    print(versionLine(info, Deno.version.deno, Deno.build.target));
    Deno.exit(EXIT.ok);
  }
  const load = TASKS[first];
  if (load === undefined) {
    fail(
      first.startsWith("-")
        ? `unknown option '${first}': name a task first`
        : `unknown task '${first}'${didYouMean(first, Object.keys(TASKS))}`,
    );
    log(await taskList());
    Deno.exit(EXIT.usage);
  }
  const task = await load();
  return await runTask(task.spec, task.main, rest, { program: "yaota" });
}

if (import.meta.main) await main(Deno.args);
