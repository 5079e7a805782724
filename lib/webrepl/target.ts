/**
 * Which board a WebREPL task talks to: `--ip` (else "ip" in ota.config.json) and
 * `--device-port` (else "port", else 8266). The flags themselves are read by
 * lib/cli/webrepl_target.ts.
 */
import type { OtaConfig } from "../config/config.ts";
import { UsageError } from "../errors.ts";
import { resolvePort } from "../config/values.ts";

/**
 * Where to connect, before the password is known: the flag's address and port over the
 * config's. Pure.
 * @throws {UsageError} If neither names an address (`missing` says how to name one).
 * @example
 * ```ts
 * import { resolveAddress } from "./target.ts";
 * const { host, port } = resolveAddress({}, { ip: "192.168.4.1" });
 * if (host !== "192.168.4.1" || port !== 8266) throw new Error();
 * ```
 */
export function resolveAddress(
  flags: { ip?: string; port?: number },
  config: Pick<OtaConfig, "ip" | "port">,
  missing = '--ip is required (or set "ip" in ota.config.json)',
): { host: string; port: number } {
  const host = flags.ip ?? config.ip;
  if (!host) throw new UsageError(missing);
  return { host, port: resolvePort(flags.port, config) };
}
