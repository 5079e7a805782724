/**
 * The file-reading edge of `verify`: finds the key, its `pub.key`, config.h, the
 * bootloader and the firmware (as named by the flags, ota.config.json or the defaults),
 * reads them, and hands them to the pure checks of `verify.ts`.
 */
import { basename, dirname, extname, join, resolve } from "node:path";
import { FileError } from "../errors.ts";
import { type OtaConfig } from "../config/config.ts";
import { PUBLIC_KEY_FILE, resolveAppOffset, resolveKeyPath } from "../config/values.ts";
import { warnIfKeyIsOpen } from "../config/key_file.ts";
import { DEFAULT_BUILD_DIR, FIRMWARE_FILE, STALE_DIR } from "../build/build_outputs.ts";
import {
  type CheckName,
  type NamedBytes,
  type NamedText,
  verdict,
  type VerifyReport,
  verifySetup,
} from "./verify.ts";

export const DEFAULT_BOOTLOADER = "dist/yaota8266.bin";
export const DEFAULT_FIRMWARE = join(DEFAULT_BUILD_DIR, FIRMWARE_FILE);

/** Files named on the command line; absent ones fall back to the config and the defaults. */
export interface VerifyPaths {
  keyPath?: string;
  configH?: string;
  bootloader?: string;
  firmware?: string;
}

export interface VerifyFilesOptions {
  config?: OtaConfig;
  /** Relative paths are read from here (default: the current directory). */
  cwd?: string;
  appOffset?: number;
  /** Inputs that must exist even at their default path (flash needs key, bootloader, firmware). */
  require?: CheckName[];
  /** Hears that the private key is open to other users (`chmod 600` it). */
  onWarning?: (message: string) => void;
}

const KEY_EXTENSIONS = [".key", ".pem", ".pub"];
const MAX_OTHER_KEYS = 32;

async function readIfThere<T>(
  read: (path: string) => Promise<T>,
  path: string,
  cwd: string,
  mustExist: boolean,
  missing: string,
): Promise<T | undefined> {
  try {
    return await read(resolve(cwd, path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && !mustExist) return undefined;
    if (e instanceof Deno.errors.NotFound) throw new FileError(missing);
    throw new FileError(`cannot read '${path}': ${(e as Error).message}`);
  }
}

/** The other key files beside the user's key, to name the key a bootloader was built for. */
async function siblingKeys(dir: string, exclude: string[]): Promise<NamedText[]> {
  const out: NamedText[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (!entry.isFile || !KEY_EXTENSIONS.includes(extname(entry.name))) continue;
      if (exclude.some((x) => resolve(x) === resolve(path))) continue;
      if ((await Deno.stat(path)).size > 64 * 1024) continue;
      out.push({ path, text: await Deno.readTextFile(path) });
      if (out.length >= MAX_OTHER_KEYS) break;
    }
  } catch {
    // An unreadable folder only costs us the name of the other key.
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Reads the files `verifySetup` compares and runs it. A file named explicitly (flag or
 * config) must exist; a default one that is absent is reported as a skipped check.
 * @throws {FileError} If a file named explicitly (or listed in `require`) is missing.
 * Needs --allow-read.
 */
export async function verifyFiles(
  paths: VerifyPaths,
  options: VerifyFilesOptions = {},
): Promise<VerifyReport> {
  const cwd = options.cwd ?? Deno.cwd();
  const config = options.config ?? {};
  const required = (name: CheckName) => options.require?.includes(name) ?? false;
  const text = (p: string) => Deno.readTextFile(p);
  const bytes = (p: string) => Deno.readFile(p);
  const skipped: Partial<Record<CheckName, string>> = {};

  const keyPath = resolveKeyPath(paths.keyPath, config);
  const keyText = await readIfThere(
    text,
    keyPath,
    cwd,
    paths.keyPath !== undefined || config.key !== undefined || required("key"),
    `no key at '${keyPath}'. Create one with 'deno task keygen', or name yours with --key.`,
  );
  if (keyText !== undefined) {
    await warnIfKeyIsOpen(resolve(cwd, keyPath), keyText, keyPath, {
      onWarning: options.onWarning,
    });
  }
  if (keyText === undefined) {
    skipped.key =
      `no key at ${keyPath} (create one with 'deno task keygen', or name yours with --key)`;
  }
  const pubPath = join(dirname(keyPath), PUBLIC_KEY_FILE);
  const samePath = resolve(cwd, pubPath) === resolve(cwd, keyPath);
  const pubText = samePath ? undefined : await readIfThere(text, pubPath, cwd, false, "");
  if (pubText === undefined) {
    skipped["public key"] = samePath
      ? `${keyPath} is the public key itself`
      : `no ${pubPath} next to the key`;
  }

  const configHPath = paths.configH ??
    (config.yaota8266 ? join(config.yaota8266, "config.h") : undefined);
  const configHText = configHPath === undefined ? undefined : await readIfThere(
    text,
    configHPath,
    cwd,
    paths.configH !== undefined || required("config.h"),
    `no config.h at '${configHPath}'`,
  );
  if (configHText === undefined) {
    skipped["config.h"] = configHPath === undefined
      ? "no config.h given (--config-h FILE, or 'yaota8266' in ota.config.json)"
      : `no ${configHPath} (name one with --config-h)`;
  }

  // The two build products: read if there, else skipped with how to make or name them.
  const product = async (
    check: "bootloader" | "firmware",
    defaultPath: string,
    task: string,
  ): Promise<NamedBytes | undefined> => {
    const explicit = paths[check] !== undefined;
    const path = paths[check] ?? defaultPath;
    const stale = join(dirname(path), STALE_DIR, basename(path));
    const failedBuild = check === "firmware" && !explicit &&
      await Deno.stat(resolve(cwd, stale)).then(() => true, () => false);
    const hint = failedBuild
      ? `the last 'deno task ${task}' did not succeed and the build before it is in ${stale}: ` +
        `fix the build, or name that one with --${check}`
      : `build it with 'deno task ${task}', or name it with --${check}`;
    const read = await readIfThere(
      bytes,
      path,
      cwd,
      explicit || required(check),
      `no ${check} at '${path}': ${hint}`,
    );
    if (read === undefined) skipped[check] = `no ${path} (${hint})`;
    return read === undefined ? undefined : { path, bytes: read };
  };
  const bootloader = await product("bootloader", DEFAULT_BOOTLOADER, "build-bootloader");
  const firmware = await product("firmware", DEFAULT_FIRMWARE, "build-ota");

  const keyDir = resolve(cwd, dirname(keyPath));
  const otherKeys = (await siblingKeys(keyDir, [resolve(cwd, keyPath), resolve(cwd, pubPath)]))
    .map((k) => ({ ...k, path: join(dirname(keyPath), basename(k.path)) }));

  const report = verifySetup({
    key: keyText === undefined ? undefined : { path: keyPath, text: keyText },
    publicKey: pubText === undefined ? undefined : { path: pubPath, text: pubText },
    configH: configHText === undefined ? undefined : { path: configHPath!, text: configHText },
    bootloader,
    firmware,
    otherKeys,
    appOffset: resolveAppOffset(options.appOffset, config),
    flashSize: config.flashSize,
    skipped,
  });
  if (report.checks.every((c) => c.result === "skipped")) {
    report.checks.push({
      name: "inputs",
      result: "failed",
      detail: "nothing to verify: none of the files above is there. Name them with the flags.",
    });
    return { ...report, ...verdict(report.checks) };
  }
  return report;
}
