/**
 * The flags every WebREPL tool shares (`repl`, `exec`, `put`, `get`, `ls`, `rm`), read
 * the way `deno task trigger` reads them: `--ip` (else "ip" in ota.config.json),
 * `--device-port` (else "port", else 8266), `--password` (else WEBREPL_PASSWORD, else a
 * prompt), `--timeout` per step. The password is never printed.
 */
import {
  boolOpt,
  type OptionSpec,
  type ParsedValues,
  portOpt,
  secondsOpt,
  stringOpt,
} from "./cli.ts";
import type { OtaConfig } from "../config/config.ts";
import { DEFAULT_DEVICE_PORT, MAX_TIMEOUT_S } from "../config/values.ts";
import { PASSWORD_ENV, PASSWORD_FLAG_HELP } from "../webrepl/password.ts";
import { DEFAULT_TIMEOUT_MS, type WebReplOptions } from "../webrepl/client.ts";
import { resolveAddress } from "../webrepl/target.ts";
import { askPassword } from "./prompt.ts";

/** `--ip`, `--device-port`, `--password`, `--timeout` for a task's spec. */
export const TARGET_OPTIONS = {
  ip: { type: "string", arg: "ADDR", help: 'the board\'s address (default: "ip" in the config)' },
  "device-port": {
    type: "string",
    arg: "PORT",
    help:
      `the board's WebREPL (TCP) port (default: "port" in the config, else ${DEFAULT_DEVICE_PORT})`,
  },
  password: { type: "string", arg: "P", help: PASSWORD_FLAG_HELP },
  timeout: {
    type: "string",
    arg: "SECONDS",
    help: `time allowed for each step (default ${DEFAULT_TIMEOUT_MS / 1000})`,
  },
} satisfies Record<string, OptionSpec>;

export const JSON_OPTION: Record<string, OptionSpec> = {
  json: { type: "boolean", help: "print the result as one JSON object on stdout" },
};

/** The `--help` note on where the password comes from. */
export const PASSWORD_NOTE =
  `Password: --password, else the ${PASSWORD_ENV} environment variable, else a prompt ` +
  "without echo. A --password value is visible to other users in `ps`, and `deno task` " +
  `echoes the arguments on stderr (\`deno task -q\` does not): prefer ${PASSWORD_ENV} or the prompt.`;

export interface TargetArgs {
  ip?: string;
  port?: number;
  password?: string;
  timeoutMs: number;
  json: boolean;
  config?: string;
}

/**
 * The shared flags from parsed values. Pure.
 * @throws {UsageError} On a bad port or timeout.
 */
export function targetArgsFrom(values: ParsedValues): TargetArgs {
  const port = portOpt(values, "device-port");
  const timeoutMs = secondsOpt(values, "timeout", MAX_TIMEOUT_S);
  const ip = stringOpt(values, "ip");
  const password = stringOpt(values, "password");
  const config = stringOpt(values, "config");
  return {
    ...(ip === undefined ? {} : { ip }),
    ...(port === undefined ? {} : { port }),
    ...(password === undefined ? {} : { password }),
    ...(config === undefined ? {} : { config }),
    timeoutMs: timeoutMs ?? DEFAULT_TIMEOUT_MS,
    json: boolOpt(values, "json"),
  };
}

/**
 * The connection options: address, password (flag, environment, or a prompt on this
 * terminal), timeout.
 * @throws {UsageError} With no address, or no usable password.
 */
export async function resolveTarget(
  args: TargetArgs,
  config: OtaConfig,
): Promise<WebReplOptions & { port: number; timeoutMs: number }> {
  const { host, port } = resolveAddress(args, config);
  const password = await askPassword(args.password, `${host}:${port}`);
  return { host, port, password, timeoutMs: args.timeoutMs };
}
