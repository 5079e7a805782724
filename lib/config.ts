/**
 * `ota.config.json`: project defaults so that `deno task build-ota` and
 * `deno task deploy --ip X` need no long flags. Flags override it. An unknown key
 * or a bad value is a `ConfigError` that names it. Paths are relative to the file.
 */
import { dirname, resolve } from "node:path";
import { ConfigError } from "./errors.ts";
import { parseSize } from "./_bytes.ts";
import { findDuplicateKey } from "./json_duplicates.ts";
import { invalidValue, parseAppOffset, parseFlashSize, parsePort } from "./values.ts";
import { trace } from "./trace.ts";

export interface DeviceEntry {
  name: string;
  ip: string;
  port?: number;
  key?: string;
  passwordEnv?: string;
  tags?: string[];
}

export interface BootloaderSettings {
  baudRate?: number;
  pktWaitMs?: number;
  idleRebootMs?: number;
  gpioMask?: number;
  gpioWaitMs?: number;
}

export interface OtaConfig {
  /** Where the file was read from, if any. */
  path?: string;
  micropython?: string;
  modules?: string[];
  runtime?: "docker" | "podman" | "native";
  image?: string;
  board?: string;
  appOffset?: number;
  flashSize?: number;
  key?: string;
  out?: string;
  yaota8266?: string;
  bootloader?: BootloaderSettings;
  ip?: string;
  port?: number;
  devices?: DeviceEntry[];
}

export const DEFAULT_CONFIG_FILE = "ota.config.json";

/** Where a value sits: the file, the key's path in it (`devices[0].port`), paths' base. */
interface Place {
  file: string;
  key: string;
  base: string;
}
type Check = (value: unknown, at: Place) => unknown;

/** `file: key` as messages name a value; the file alone for the top object. */
const named = (at: Place) => at.key ? `${at.file}: ${at.key}` : at.file;
const inside = (at: Place, key: string): Place => ({
  ...at,
  key: at.key ? `${at.key}${key.startsWith("[") ? "" : "."}${key}` : key,
});

const str: Check = (v, at) => {
  if (typeof v !== "string" || v === "") throw new ConfigError(`${named(at)}: expected a string`);
  return v;
};
const path: Check = (v, at) => resolve(at.base, str(v, at) as string);
const int = (min: number, max: number): Check => (v, at) => {
  const n = typeof v === "string" ? parseSize(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw invalidValue(at, `a whole number from ${min} to ${max}`, v);
  }
  return n;
};
const oneOf = (...choices: string[]): Check => (v, at) => {
  if (typeof v !== "string" || !choices.includes(v)) {
    throw invalidValue(at, `one of ${choices.join(", ")}`, v);
  }
  return v;
};
const list = (item: Check): Check => (v, at) => {
  if (!Array.isArray(v)) throw new ConfigError(`${named(at)}: expected a list`);
  return v.map((x, i) => item(x, inside(at, `[${i}]`)));
};
const object = (fields: Record<string, Check>, required: string[] = []): Check => (v, at) => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ConfigError(`${named(at)}: expected an object`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(v)) {
    const check = fields[key];
    if (!check) {
      throw new ConfigError(
        `${named(at)}: unknown key '${key}' (known: ${Object.keys(fields).join(", ")})`,
      );
    }
    out[key] = check(value, inside(at, key));
  }
  for (const key of required) {
    if (!(key in out)) throw new ConfigError(`${named(at)}: missing '${key}'`);
  }
  return out;
};
// The same checks as the flags' (values.ts), so a value means the same wherever it is.
const appOffset: Check = (v, at) => parseAppOffset(v, at);
const port: Check = (v, at) => parsePort(v, at);

const device = object({
  name: str,
  ip: str,
  port,
  key: path,
  passwordEnv: str,
  tags: list(str),
}, ["name", "ip"]);

const schema = object({
  "$schema": str,
  micropython: path,
  modules: list(path),
  runtime: oneOf("docker", "podman", "native"),
  image: str,
  board: str,
  appOffset,
  flashSize: (v, at) => parseFlashSize(v, at),
  key: path,
  out: path,
  yaota8266: path,
  bootloader: object({
    baudRate: int(300, 4000000),
    pktWaitMs: int(100, 600000),
    idleRebootMs: int(1000, 3600000),
    gpioMask: int(0, 0xffff),
    gpioWaitMs: int(0, 60000),
  }),
  ip: str,
  port,
  devices: list(device),
});

/** Validates parsed JSON; `base` is the folder relative paths are resolved against. */
export function parseConfig(value: unknown, base: string, where = "ota.config.json"): OtaConfig {
  const config = schema(value, { file: where, key: "", base }) as OtaConfig & {
    $schema?: string;
  };
  delete config.$schema;
  const names = new Set<string>();
  for (const d of config.devices ?? []) {
    if (names.has(d.name)) {
      throw new ConfigError(`${where}: devices: the name '${d.name}' is used twice`);
    }
    names.add(d.name);
  }
  return config;
}

/**
 * Reads `explicitPath`, or `./ota.config.json` if it exists; an absent default file
 * gives an empty config, an absent explicit one is an error.
 * @throws {ConfigError} If the file is not JSON or a key or value is wrong.
 */
export async function loadConfig(explicitPath?: string, cwd = Deno.cwd()): Promise<OtaConfig> {
  const file = resolve(cwd, explicitPath ?? DEFAULT_CONFIG_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && explicitPath === undefined) {
      trace("config", `no ${file}: flags and defaults only`);
      return {};
    }
    throw new ConfigError(`cannot read the configuration file '${file}': ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`'${file}' is not valid JSON: ${(e as Error).message}`);
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate) {
    throw new ConfigError(
      `${file}: the key '${duplicate.path}' is set twice (lines ${duplicate.firstLine} and ${duplicate.line}); ` +
        "JSON would silently keep the second: remove one",
    );
  }
  const config = { ...parseConfig(json, dirname(file), file), path: file };
  trace("config", () => `read ${file}: ${Object.keys(json as object).join(", ") || "empty"}`);
  return config;
}
