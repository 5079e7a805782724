/**
 * Every command a message suggests ("run 'deno task trigger --ip …'", a next step, a
 * retry) is built here: with the program the user typed (`deno task` or `yaota`) and the
 * flags that chose the project, the key and the board's port in this run, so that it runs
 * as printed.
 *
 * Library code cannot know how it was started: its messages name commands as
 * `'deno task NAME ARGS'` (or in backticks), and `withInvocation` rewrites them at the
 * edge, where the task prints.
 */

/** How the user started the task, for the commands messages suggest. */
export type Program = "deno task" | "yaota";

/** How this run was started: the program and the arguments after the task name. */
export interface Invocation {
  program: Program;
  /** The task that runs; its old flag names count only if they were its own. */
  task?: string;
  argv: readonly string[];
}

/** `deno task`, no flags: what library code assumes. */
export const PLAIN: Invocation = { program: "deno task", argv: [] };

/** The flags carried into a suggested command, each with the tasks that take it. */
const CARRIED: Record<string, { old?: string; tasks: readonly string[] | "all" }> = {
  config: { tasks: "all" },
  key: {
    tasks: [
      "build-bootloader",
      "sign",
      "inspect",
      "verify",
      "flash",
      "deploy",
      "status",
      "dashboard",
      "sim",
    ],
  },
  "device-port": {
    old: "port",
    tasks: ["deploy", "status", "trigger", "repl", "exec", "put", "get", "ls", "rm"],
  },
};

/** The tasks that take each carried flag (for a test that checks them against the specs). */
export function carriedFlags(): Record<string, readonly string[] | "all"> {
  return Object.fromEntries(Object.entries(CARRIED).map(([k, v]) => [k, v.tasks]));
}

/** The value of `--name` (or its old spelling) in `argv`, the last one if repeated. Pure. */
function flagValue(argv: readonly string[], names: string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") break;
    for (const name of names) {
      if (token === `--${name}` && i + 1 < argv.length) value = argv[i + 1];
      else if (token.startsWith(`--${name}=`)) value = token.slice(name.length + 3);
    }
  }
  return value;
}

/**
 * How a word that needs quoting is quoted: in single quotes (the default), or in double
 * quotes, so that a command printed inside '…' holds no single quote. Double quotes leave
 * `!` to an interactive shell's history expansion: a word with one keeps single quotes.
 */
export type WordQuoting = "single" | "double";

/** A word for a shell: quoted when it holds anything a shell would read. Pure. */
function shellWord(word: string, quoting: WordQuoting = "single"): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word;
  if (quoting === "double" && !word.includes("!")) {
    return `"${word.replace(/[$`"\\]/g, "\\$&")}"`;
  }
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command for `task` with `args` (already shell words), as this run would type it.
 * @example
 * ```ts
 * const inv = { program: "yaota" as const, argv: ["--ip", "h", "--device-port", "9000"] };
 * if (suggest(inv, "deploy", "--ip h") !== "yaota deploy --device-port 9000 --ip h") {
 *   throw new Error();
 * }
 * ```
 */
export function suggest(
  inv: Invocation,
  task: string,
  args = "",
  quoting: WordQuoting = "single",
): string {
  const carried: string[] = [];
  // A task's --help needs none of this run's flags (and a bad value would only confuse).
  const help = /(^|\s)--help(\s|$)/.test(args);
  for (const [name, { old, tasks }] of Object.entries(CARRIED)) {
    if (help) break;
    if (tasks !== "all" && !tasks.includes(task)) continue;
    if (new RegExp(`(^|\\s)--(${name}${old ? `|${old}` : ""})(=|\\s|$)`).test(args)) continue;
    const own = old !== undefined && tasks !== "all" && tasks.includes(inv.task ?? "");
    const value = flagValue(inv.argv, own ? [name, old] : [name]);
    if (value !== undefined) carried.push(`--${name}`, shellWord(value, quoting));
  }
  return [inv.program, task, ...carried, args.trim()].filter((w) => w !== "").join(" ");
}

const QUOTED_COMMAND = /(['`])deno task ([a-z][a-z-]*)((?:(?!\1)[^\n])*)\1/g;

/**
 * `message` with each quoted `'deno task NAME ARGS'` (or `` `…` ``) made the command this
 * run would type (see `suggest`). A carried value the shell must read quoted (a config
 * path with a space or a quote) is quoted so that the command holds no mark of its own
 * delimiter: in double quotes inside '…', or with the other delimiter (a single quote in
 * the value). Pure.
 * @example
 * ```ts
 * const text = withInvocation("run 'deno task verify'", { program: "yaota", argv: [] });
 * if (text !== "run 'yaota verify'") throw new Error(text);
 * ```
 */
export function withInvocation(message: string, inv: Invocation): string {
  return message.replace(
    QUOTED_COMMAND,
    (_all, quote: string, task: string, args: string) => {
      const other = quote === "'" ? "`" : "'";
      const tries = [[quote, "single"], [quote, "double"], [other, "double"], [other, "single"]];
      for (const [delimiter, quoting] of tries as [string, WordQuoting][]) {
        const command = suggest(inv, task, args, quoting);
        if (!command.includes(delimiter)) return `${delimiter}${command}${delimiter}`;
      }
      return `${quote}${suggest(inv, task, args)}${quote}`;
    },
  );
}

/** Every quoted command in `message`: its task and arguments as one string. Pure. */
export function quotedCommands(message: string): { task: string; args: string }[] {
  return [...message.matchAll(QUOTED_COMMAND)].map((m) => ({ task: m[2]!, args: m[3]!.trim() }));
}
