/**
 * The configuration: project defaults so that `deno task build-ota` and `deno task deploy
 * --ip X` need no long flags. The file is `--config FILE`, else `./ota.config.json`, else
 * the user's `$XDG_CONFIG_HOME/yaota/config.json` (the first that exists; its JSON Schema
 * is `ota.config.schema.json`). `YAOTA_*` environment variables override it, flags
 * override both. An unknown key or a bad value is a `ConfigError` that names it. Paths
 * are relative to the file (an environment variable's to the working directory).
 */
import { didYouMean } from "../_suggest.ts";
import { dirname, join, resolve } from "node:path";
import { ConfigError } from "../errors.ts";
import { parseSize } from "../_bytes.ts";
import { deviceAddressProblem } from "./device_address.ts";
import { findDuplicateKey } from "./json_duplicates.ts";
import {
  invalidValue,
  parseAppOffset,
  parseBaud,
  parseFlashSize,
  parsePort,
  type Source,
} from "./values.ts";
import { trace } from "../trace.ts";

/**
 * One entry of the config's "devices". Fields are named as in the file: `ip` is the
 * device's address (`host` in the library's request types), `key` the path of its private
 * key file.
 */
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

/** `flash`'s serial settings (esptool's --port and --baud). */
export interface SerialConfig {
  port?: string;
  baud?: number;
}

/**
 * The configuration, its fields named as the file's keys: `key` is the path of the private
 * key file, `ip` the device's address (`host` in the library's request types).
 */
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
  serial?: SerialConfig;
  devices?: DeviceEntry[];
}

export const DEFAULT_CONFIG_FILE = "ota.config.json";
/** The file name in the user's config folder (`~/.config/yaota/config.json`). */
export const USER_CONFIG_FILE = "config.json";

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
  if (typeof v !== "string") {
    throw new ConfigError(
      `${named(at)}: expected a string, got ${
        v === null ? "null" : Array.isArray(v) ? "a list" : typeof v
      }`,
    );
  }
  if (v.trim() === "") {
    throw new ConfigError(`${named(at)}: must not be empty${v === "" ? "" : " (only spaces)"}`);
  }
  return v;
};
const path: Check = (v, at) => resolve(at.base, str(v, at) as string);
/** One board's address: the same check as `--ip` (lib/device_address.ts). */
const address: Check = (v, at) => {
  const text = str(v, at) as string;
  const problem = deviceAddressProblem(text);
  if (problem) throw new ConfigError(`${named(at)}: ${problem}`);
  return text;
};
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
        `${named(at)}: unknown key '${key}'${didYouMean(key, Object.keys(fields))} (known: ${
          Object.keys(fields).join(", ")
        })`,
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
  ip: address,
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
  ip: address,
  port,
  serial: object({ port: str, baud: (v, at) => parseBaud(v, at) }),
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

/** One place a configuration file may be: required ones (`--config`) must exist. */
export interface ConfigCandidate {
  path: string;
  required: boolean;
  /** Why it is looked at, for messages: "--config", "YAOTA_CONFIG", "./ota.config.json", … */
  from: string;
}

/** Environment variables the lookup and the defaults read. */
export type Env = Record<string, string | undefined>;

/**
 * Where to look, in order: `--config FILE` (or `YAOTA_CONFIG`), alone and required; else
 * `./ota.config.json`, then the user's config: `$XDG_CONFIG_HOME/yaota/config.json`,
 * default `~/.config/yaota/config.json` (on Windows `%APPDATA%\yaota\config.json`).
 * Pure.
 * @example
 * ```ts
 * import { configCandidates } from "./config.ts";
 * const found = configCandidates(undefined, "/p", { HOME: "/home/a" }, "linux");
 * if (found[1]?.path !== "/home/a/.config/yaota/config.json") throw new Error();
 * ```
 */
export function configCandidates(
  explicitPath: string | undefined,
  cwd: string,
  env: Env,
  os: string = Deno.build.os,
): ConfigCandidate[] {
  if (explicitPath !== undefined) {
    return [{ path: resolve(cwd, explicitPath), required: true, from: "--config" }];
  }
  if (env.YAOTA_CONFIG) {
    return [{ path: resolve(cwd, env.YAOTA_CONFIG), required: true, from: "YAOTA_CONFIG" }];
  }
  const local = {
    path: resolve(cwd, DEFAULT_CONFIG_FILE),
    required: false,
    from: `../${DEFAULT_CONFIG_FILE}`,
  };
  const base = env.XDG_CONFIG_HOME ||
    (os === "windows" ? env.APPDATA : env.HOME ? join(env.HOME, ".config") : undefined);
  return base
    ? [local, { path: join(base, "yaota", USER_CONFIG_FILE), required: false, from: "user" }]
    : [local];
}

/**
 * The environment defaults: variable → config key. They sit between the flags and the
 * file: `--ip` beats `YAOTA_IP`, which beats "ip" in the file.
 */
export const ENV_DEFAULTS = {
  YAOTA_IP: "ip",
  YAOTA_PORT: "port",
  YAOTA_KEY: "key",
  YAOTA_APP_OFFSET: "appOffset",
  YAOTA_FLASH_SIZE: "flashSize",
} as const satisfies Record<string, keyof OtaConfig>;

/**
 * The config keys the environment sets, each checked as the file's would be; paths
 * relative to `cwd`. Pure.
 * @throws {ConfigError} If a variable holds a bad value (naming the variable).
 */
export function configFromEnv(env: Env, cwd: string): Partial<OtaConfig> {
  const out: Partial<OtaConfig> = {};
  const text = (name: keyof typeof ENV_DEFAULTS): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const at = (name: string): Source => ({ env: name });
  const ip = text("YAOTA_IP");
  if (ip !== undefined) out.ip = ip;
  const port = text("YAOTA_PORT");
  if (port !== undefined) out.port = parsePort(port, at("YAOTA_PORT"));
  const key = text("YAOTA_KEY");
  if (key !== undefined) out.key = resolve(cwd, key);
  const appOffset = text("YAOTA_APP_OFFSET");
  if (appOffset !== undefined) out.appOffset = parseAppOffset(appOffset, at("YAOTA_APP_OFFSET"));
  const flashSize = text("YAOTA_FLASH_SIZE");
  if (flashSize !== undefined) out.flashSize = parseFlashSize(flashSize, at("YAOTA_FLASH_SIZE"));
  return out;
}

/** Reads and validates one file. @throws {ConfigError} */
async function readConfigFile(file: string): Promise<OtaConfig> {
  // A byte order mark (some Windows editors write one) is not part of the JSON.
  const text = (await Deno.readTextFile(file)).replace(/^\uFEFF/, "");
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

/**
 * The configuration: the first file of `configCandidates` that exists (none: an empty
 * one), with the `YAOTA_*` environment defaults over it (`configFromEnv`).
 * @param explicitPath `--config FILE`: must exist.
 * @throws {ConfigError} If a named file is missing, a file is not JSON, a key or value
 *   is wrong, or an environment variable holds a bad value.
 */
export async function loadConfig(
  explicitPath?: string,
  cwd = Deno.cwd(),
  env: Env = Deno.env.toObject(),
): Promise<OtaConfig> {
  let config: OtaConfig = {};
  for (const candidate of configCandidates(explicitPath, cwd, env)) {
    try {
      config = await readConfigFile(candidate.path);
      break;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound && !candidate.required) {
        trace("config", `no ${candidate.path}`);
        continue;
      }
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(
        `cannot read the configuration file '${candidate.path}'` +
          (candidate.from === "YAOTA_CONFIG" ? " (named by YAOTA_CONFIG)" : "") +
          `: ${(e as Error).message}`,
      );
    }
  }
  return { ...config, ...configFromEnv(env, cwd) };
}
