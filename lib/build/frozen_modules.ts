/**
 * The Python modules frozen into the OTA firmware: the user's (`--module`, e.g. the
 * seed's `uartremote.py`) plus `templates/ota.py` (docs/device.md, "Entering OTA mode").
 * Each is compiled by MicroPython itself first, so a syntax error shows in seconds, not
 * after a long build; a name that would shadow one of MicroPython's own modules is
 * refused unless forced. What was copied is recorded in the tree, so a second run
 * knows its own files, replaces them and removes those no longer asked for.
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { assetName, readAssetBytes } from "../_fs.ts";
import { FileError, UsageError } from "../errors.ts";
import { compileCheck, startMicroPython } from "../micropython/vm.ts";

export const OTA_MODULE_TEMPLATE = new URL("../../templates/ota.py", import.meta.url);
/**
 * Records, in `ports/esp8266/` beside `modules/`, which files this tool put there. Not in
 * `modules/` itself: MicroPython warns about every file there it cannot freeze. Earlier
 * versions kept it there as `LEGACY_RECORD_FILE`; a build moves it.
 */
export const RECORD_FILE = ".yaota-frozen.json";
export const LEGACY_RECORD_FILE = ".ota-frozen.json";

/** Where the record of `modulesDir` is, and where earlier versions kept it. Pure. */
export function recordPaths(modulesDir: string): { record: string; legacy: string } {
  return {
    record: join(dirname(modulesDir), RECORD_FILE),
    legacy: join(modulesDir, LEGACY_RECORD_FILE),
  };
}

/** Modules the ESP8266 port has built in or freezes itself (with their old `u` names). */
export const MICROPYTHON_MODULES: ReadonlySet<string> = new Set([
  ...[
    "array",
    "binascii",
    "collections",
    "errno",
    "hashlib",
    "heapq",
    "io",
    "json",
    "os",
    "random",
    "re",
    "select",
    "socket",
    "ssl",
    "struct",
    "sys",
    "time",
    "zlib",
    "asyncio",
    "websocket",
  ].flatMap((n) => [n, `u${n}`]),
  "builtins",
  "micropython",
  "gc",
  "machine",
  "network",
  "esp",
  "espnow",
  "math",
  "cmath",
  "deflate",
  "framebuf",
  "btree",
  "uctypes",
  "onewire",
  "_onewire",
  "ds18x20",
  "dht",
  "neopixel",
  "apa102",
  "_asyncio",
  "_boot",
  "flashbdev",
  "inisetup",
  "port_diag",
  "webrepl",
  "webrepl_setup",
  "_webrepl",
  "ntptime",
  "upip",
  "upip_utarfile",
  "mip",
  "requests",
  "urequests",
  "umqtt",
  "vfs",
  "lwip",
  "platform",
]);

export interface FrozenModule {
  /** File name as frozen, e.g. "uartremote.py". */
  name: string;
  /** Where it is read from, absolute. */
  source: string;
  bytes: Uint8Array;
  sha256: string;
}

export interface ModuleCopy {
  module: FrozenModule;
  dest: string;
  state: "new" | "changed" | "unchanged";
  /** Set when a forced copy replaces the tree's own file: it is kept here, once. */
  backup?: string;
}

export interface StaleModule {
  path: string;
  /** The tree's own file this tool replaced (with --force), put back on removal. */
  restoreFrom?: string;
}

export interface ModulePlan {
  copies: ModuleCopy[];
  /** Files an earlier run froze that are no longer asked for. */
  stale: StaleModule[];
  recordPath: string;
  recordText: string;
  /** The record where earlier versions kept it, to remove. */
  legacyRecord?: string;
  /** True if applying the plan changes any file. */
  changed: boolean;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function readBytes(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * Reads the user's modules and the `ota.py` template.
 * @throws {FileError} If a module file is missing.
 * @throws {UsageError} If a name is not an importable `.py` name or is given twice.
 */
export async function readModules(
  paths: readonly string[],
  cwd = Deno.cwd(),
): Promise<FrozenModule[]> {
  const modules: FrozenModule[] = [];
  const seen = new Map<string, string>([["ota.py", "the OTA trigger module the build adds"]]);
  for (const given of paths) {
    const source = resolve(cwd, given);
    const name = basename(source);
    if (!/^[A-Za-z_][A-Za-z0-9_]*\.py$/.test(name)) {
      throw new UsageError(
        `--module '${given}': a frozen module must be a .py file whose name is a Python ` +
          `identifier (it is imported by that name)`,
      );
    }
    const other = seen.get(name);
    if (other) {
      throw new UsageError(
        `--module '${given}': the name '${name}' is already taken by ${other}; rename it`,
      );
    }
    const bytes = await readBytes(source);
    if (!bytes) throw new FileError(`no module file at '${source}' (from --module '${given}')`);
    seen.set(name, `'${given}'`);
    modules.push({ name, source, bytes, sha256: sha256(bytes) });
  }
  const template = await readAssetBytes(OTA_MODULE_TEMPLATE);
  modules.push({
    name: "ota.py",
    source: assetName(OTA_MODULE_TEMPLATE),
    bytes: template,
    sha256: sha256(template),
  });
  return modules;
}

/**
 * Compiles every module with MicroPython (one VM for all of them).
 * @throws {FileError} Naming each module that does not compile, with file and line.
 */
export async function compileModules(modules: readonly FrozenModule[]): Promise<void> {
  using vm = await startMicroPython();
  const problems: string[] = [];
  for (const m of modules) {
    const error = await compileCheck(new TextDecoder().decode(m.bytes), m.source, vm);
    if (error) problems.push(error);
  }
  if (problems.length) {
    throw new FileError(
      `${problems.length === 1 ? "a module does" : "modules do"} not compile, nothing was built: ` +
        `${problems.join("; ")}. Fix ${problems.length === 1 ? "it" : "them"} and run again.`,
    );
  }
}

/** The names of the modules an earlier build-ota put into `modulesDir` (from its record). */
export async function readFrozenRecord(modulesDir: string): Promise<Set<string>> {
  const { record, legacy } = recordPaths(modulesDir);
  const found = await readRecord(record);
  return found.size ? found : await readRecord(legacy);
}

async function readRecord(path: string): Promise<Set<string>> {
  const bytes = await readBytes(path);
  if (!bytes) return new Set();
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes));
    return new Set(Array.isArray(value?.modules) ? value.modules.map(String) : []);
  } catch {
    return new Set();
  }
}

/**
 * Plans the copies into `modulesDir`. Reads only.
 * @throws {UsageError} If a name shadows one of MicroPython's modules, or a different
 * file of that name is already in the tree, unless `force`.
 */
export async function planFrozenModules(
  modules: readonly FrozenModule[],
  modulesDir: string,
  force = false,
): Promise<ModulePlan> {
  const { record: recordPath, legacy } = recordPaths(modulesDir);
  const ours = await readFrozenRecord(modulesDir);
  const legacyRecord = await readBytes(legacy) === undefined ? undefined : legacy;
  const copies: ModuleCopy[] = [];
  for (const module of modules) {
    const dest = join(modulesDir, module.name);
    const existing = await readBytes(dest);
    const same = existing !== undefined && sha256(existing) === module.sha256;
    if (!force && !same) {
      const stem = module.name.slice(0, -3);
      if (MICROPYTHON_MODULES.has(stem)) {
        throw new UsageError(
          `the module '${module.name}' would shadow MicroPython's own '${stem}' module; ` +
            `rename it, or pass --force if you mean to replace it`,
        );
      }
      if (existing !== undefined && !ours.has(module.name)) {
        throw new UsageError(
          `'${dest}' is already in the tree and differs from '${module.source}': one of ` +
            `MicroPython's modules, or a copy made by hand? Rename yours, or pass --force to ` +
            `replace it`,
        );
      }
    }
    const replacesTheTrees = existing !== undefined && !same && !ours.has(module.name) &&
      await readBytes(`${dest}.orig`) === undefined;
    copies.push({
      module,
      dest,
      state: existing === undefined ? "new" : same ? "unchanged" : "changed",
      ...(replacesTheTrees ? { backup: `${dest}.orig` } : {}),
    });
  }
  const names = new Set(modules.map((m) => m.name));
  const stale: StaleModule[] = [];
  for (const name of ours) {
    const path = join(modulesDir, name);
    if (!names.has(name) && await readBytes(path)) {
      const original = await readBytes(`${path}.orig`);
      stale.push(original ? { path, restoreFrom: `${path}.orig` } : { path });
    }
  }
  const recordText = JSON.stringify(
    {
      note: "written by 'deno task build-ota': the modules it froze into the OTA build",
      modules: [...names].sort(),
    },
    null,
    2,
  ) + "\n";
  const recordBefore = await readBytes(recordPath);
  const changed = copies.some((c) => c.state !== "unchanged") || stale.length > 0 ||
    recordBefore === undefined || new TextDecoder().decode(recordBefore) !== recordText ||
    legacyRecord !== undefined;
  return {
    copies,
    stale,
    recordPath,
    recordText,
    changed,
    ...(legacyRecord ? { legacyRecord } : {}),
  };
}

/**
 * Copies the modules (keeping a file of the tree's own that a forced copy replaces as
 * `NAME.orig`), removes stale ones (putting such an original back) and updates the record.
 */
export async function applyFrozenModules(plan: ModulePlan): Promise<void> {
  if (!plan.changed) return;
  await Deno.mkdir(dirname(plan.recordPath), { recursive: true });
  for (const c of plan.copies) {
    if (c.backup) await Deno.copyFile(c.dest, c.backup);
    if (c.state !== "unchanged") await Deno.writeFile(c.dest, c.module.bytes);
  }
  for (const s of plan.stale) {
    if (s.restoreFrom) await Deno.rename(s.restoreFrom, s.path);
    else await Deno.remove(s.path);
  }
  await Deno.writeTextFile(plan.recordPath, plan.recordText);
  if (plan.legacyRecord) await Deno.remove(plan.legacyRecord).catch(() => {});
}
