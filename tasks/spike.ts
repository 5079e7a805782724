/**
 * `deno task spike monitor|enable-webrepl`: prints a program to paste into the LEGO
 * SPIKE app, for an ESP8266 on a hub port driven through UartRemote.
 */
import {
  type CommandSpec,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { log, print, warn } from "../lib/cli/output.ts";
import {
  checkHubPort,
  checkWebreplPassword,
  enableWebreplProgram,
  type HubPort,
  monitorProgram,
} from "../lib/setup/spike.ts";

export const PASSWORD_ENV = "WEBREPL_PASSWORD";
const PROGRAMS = ["monitor", "enable-webrepl"] as const;
type ProgramName = typeof PROGRAMS[number];

export const spec: CommandSpec = {
  name: "spike",
  summary: "Print a program for the LEGO SPIKE app that reaches the ESP8266 on a hub port.",
  positionals: "monitor|enable-webrepl",
  options: {
    "hub-port": {
      type: "string",
      arg: "PORT",
      help: "hub port of the ESP8266 board, A to F (default: E)",
    },
    password: {
      type: "string",
      arg: "P",
      help:
        `WebREPL password for enable-webrepl, 4 to 9 bytes. Prefer ${PASSWORD_ENV}: a flag is ` +
        "visible to other users (ps) and 'deno task' echoes it",
    },
  },
  notes: [
    "monitor: shows what the ESP8266 prints on its serial port (its IP address, errors).",
    "enable-webrepl: runs the WebREPL setup in the ESP8266's REPL through UartRemote: " +
    "starts the daemon from boot.py, writes webrepl_cfg.py with the password, resets the board.",
    `The password is taken from --password, else from ${PASSWORD_ENV}. The printed program ` +
    "contains it (that is what you paste); nothing else shows it.",
  ],
  examples: [
    "deno task spike monitor --hub-port A",
    `${PASSWORD_ENV}=s3cret deno task spike enable-webrepl > enable_webrepl.py`,
  ],
};

export interface SpikeArgs {
  program: ProgramName;
  hubPort: HubPort;
  /** Only for enable-webrepl; already checked against WebREPL's limits. */
  password?: string;
  /** Where the password came from, for the note about `--password`. */
  passwordSource?: "flag" | "env";
}

/**
 * Validates the parsed flags; pure (the environment is passed in).
 * @throws {UsageError} On a missing or unknown program, a bad hub port, or a password
 * WebREPL cannot take (the message never shows the password).
 */
export function toSpikeArgs(
  args: ParsedArgs,
  env: Record<string, string | undefined> = {},
): SpikeArgs {
  const [name, ...extra] = args.positionals;
  if (name === undefined) {
    throw new UsageError(`say which program: ${PROGRAMS.join(" or ")}`);
  }
  const program = PROGRAMS.find((p) => p === name);
  if (!program) {
    throw new UsageError(`unknown program '${name}': expected ${PROGRAMS.join(" or ")}`);
  }
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const hubPort = checkHubPort(stringOpt(args.values, "hub-port") ?? "E");
  const flag = stringOpt(args.values, "password");
  if (program === "monitor") {
    if (flag !== undefined) throw new UsageError("--password is only for enable-webrepl");
    return { program, hubPort };
  }
  const fromEnv = env[PASSWORD_ENV];
  const password = flag ?? (fromEnv === "" ? undefined : fromEnv);
  if (password === undefined) {
    throw new UsageError(
      `enable-webrepl needs the WebREPL password (4 to 9 bytes): set ${PASSWORD_ENV}, or pass ` +
        "--password (visible to other users in ps, and 'deno task' echoes it)",
    );
  }
  checkWebreplPassword(password);
  return { program, hubPort, password, passwordSource: flag !== undefined ? "flag" : "env" };
}

/** Parses `deno task spike` arguments; pure. @throws {UsageError} */
export function parseSpikeArgs(
  argv: string[],
  env: Record<string, string | undefined> = {},
): SpikeArgs {
  return toSpikeArgs(parseCommandArgs(spec, argv), env);
}

// Printing only, but the same shape as every task's main.
// deno-lint-ignore require-await
export async function main(ctx: TaskContext): Promise<number | void> {
  const args = toSpikeArgs(ctx.args, { [PASSWORD_ENV]: Deno.env.get(PASSWORD_ENV) });
  if (args.program === "monitor") {
    print(monitorProgram(args.hubPort));
    log(
      `Paste the printed program into a Python project in the SPIKE app, with the ESP8266 on hub ` +
        `port ${args.hubPort}, and run it; stop it to end.`,
    );
  } else {
    if (args.passwordSource === "flag") {
      warn(
        `--password is visible to other users (ps) and in 'deno task' output; ${PASSWORD_ENV} is safer`,
      );
    }
    print(enableWebreplProgram(args.hubPort, args.password!));
    log(
      `Paste the printed program into a Python project in the SPIKE app, with the ESP8266 on hub ` +
        `port ${args.hubPort}, and run it. It contains the WebREPL password: don't share it. ` +
        "The ESP8266 restarts with WebREPL on ws://ITS-IP:8266/ ('deno task spike monitor' shows its IP).",
    );
  }
}

if (import.meta.main) runTask(spec, main);
