/**
 * Cross-checks what a user has before anything touches a device: the signing key,
 * its public half, the `MODULUS` in yaota8266's `config.h`, the modulus compiled into
 * `yaota8266.bin` (reference, "Keys": "is this yaota8266.bin built for my key?" is a
 * byte search) and whether a firmware image is a safe OTA image. `verifySetup` is pure;
 * `verifyFiles` reads the files and calls it.
 */
import { basename, dirname, extname, join, resolve } from "node:path";
import { FileError, KeyError } from "./errors.ts";
import { type OtaConfig } from "./config.ts";
import {
  keyFingerprint,
  modulusFromConfigH,
  parsePrivateKey,
  parsePublicKey,
  type PublicKeyInfo,
} from "./keys.ts";
import { inspectImage, summarizeProblems } from "./inspect.ts";
import { DEFAULT_APP_OFFSET, ESP_IMAGE_MAGIC } from "./image.ts";
import { green, red } from "./output.ts";
import { equalBytes, formatHex, indexOfBytes, parseSize } from "./_bytes.ts";

/** The checks, in the order they are reported. */
export const CHECK_NAMES = ["key", "public key", "config.h", "bootloader", "firmware"] as const;
export type CheckName = typeof CHECK_NAMES[number];

export interface VerifyCheck {
  name: CheckName | "inputs";
  ok: boolean;
  /** What was found, or the exact mismatch and what to do about it. */
  detail: string;
  /** Not checked because its input was not there (counts as passed). */
  skipped?: boolean;
}

export interface VerifyReport {
  /** True only if every check that ran passed. */
  ok: boolean;
  checks: VerifyCheck[];
}

export interface NamedText {
  path: string;
  text: string;
}

export interface NamedBytes {
  path: string;
  bytes: Uint8Array;
}

export interface VerifyInput {
  /** The user's key: a private key PEM, or a public key PEM (then only its modulus is used). */
  key?: NamedText;
  /** `pub.key`, expected to be the public half of `key`. */
  publicKey?: NamedText;
  configH?: NamedText;
  bootloader?: NamedBytes;
  firmware?: NamedBytes;
  /** Other key files the user has: lets a mismatch name the key a bootloader was built for. */
  otherKeys?: NamedText[];
  appOffset?: number;
  flashSize?: number;
  /** Why an input is absent, reported as a skipped check in its place. */
  skipped?: Partial<Record<CheckName, string>>;
}

interface KnownKey extends PublicKeyInfo {
  /** How to name it in a message: "keys/old.key" or "the MODULUS in config.h". */
  label: string;
  /** A key file the user could pass as --key. */
  path?: string;
}

const PUBLIC_PEM = /-----BEGIN (RSA )?PUBLIC KEY-----/;

function parseAnyKey(named: NamedText): PublicKeyInfo & { isPrivate: boolean } {
  if (PUBLIC_PEM.test(named.text)) {
    return { ...parsePublicKey(named.text, named.path), isPrivate: false };
  }
  const { modulus, bits, fingerprint } = parsePrivateKey(named.text, named.path);
  return { modulus, bits, fingerprint, isPrivate: true };
}

function tryKey(named: NamedText): PublicKeyInfo | undefined {
  try {
    return parseAnyKey(named);
  } catch {
    return undefined;
  }
}

function infoFromModulus(modulus: Uint8Array, fingerprint: string): PublicKeyInfo {
  return { modulus, bits: modulus.length * 8, fingerprint };
}

/** `#define MAIN_APP_OFFSET 0x3c000` in a config.h, if present. */
export function appOffsetFromConfigH(text: string): number | undefined {
  const m = /#define\s+MAIN_APP_OFFSET\s+(0x[0-9a-fA-F]+|\d+)/.exec(text);
  return m?.[1] === undefined ? undefined : parseSize(m[1]);
}

const REBUILD_BOOTLOADER =
  "rebuild it with 'deno task build-bootloader' and flash it over serial ('deno task flash')";

/**
 * Runs every check whose input is given; pure.
 * @param input the file contents, each with the path to name it by
 * @returns one check per input, in `CHECK_NAMES` order, and `ok` if all passed
 * @example
 * ```ts
 * import { verifySetup } from "./verify.ts";
 * const report = verifySetup({ skipped: { key: "no key" } });
 * if (report.checks[0]?.skipped !== true) throw new Error();
 * ```
 */
export function verifySetup(input: VerifyInput): VerifyReport {
  const appOffset = input.appOffset ?? DEFAULT_APP_OFFSET;
  const checks: VerifyCheck[] = [];
  const add = (name: CheckName, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const skip = (name: CheckName, detail: string) =>
    checks.push({ name, ok: true, detail, skipped: true });

  // The user's key: whatever the other files are compared with.
  let mine: (PublicKeyInfo & { path: string }) | undefined;
  if (input.key) {
    try {
      const key = parseAnyKey(input.key);
      mine = { ...key, path: input.key.path };
      add(
        "key",
        true,
        key.isPrivate
          ? `${input.key.path}: ${key.bits}-bit RSA private key, exponent 3, fingerprint ${key.fingerprint}`
          : `${input.key.path}: ${key.bits}-bit RSA public key, exponent 3, fingerprint ${key.fingerprint} ` +
            `(enough to check a bootloader; signing needs the private key)`,
      );
    } catch (e) {
      if (!(e instanceof KeyError)) throw e;
      add("key", false, e.message);
    }
  } else skip("key", input.skipped?.key ?? "no key given (--key FILE)");

  if (input.publicKey && input.publicKey.path !== input.key?.path) {
    const where = input.publicKey.path;
    try {
      const pub = parsePublicKey(input.publicKey.text, where);
      if (!mine) {
        mine = { ...pub, path: where };
        add(
          "public key",
          true,
          `${where}: fingerprint ${pub.fingerprint} (no private key to compare it with)`,
        );
      } else if (equalBytes(pub.modulus, mine.modulus)) {
        add("public key", true, `${where} is the public half of ${mine.path} (${pub.fingerprint})`);
      } else {
        add(
          "public key",
          false,
          `${where} (key ${pub.fingerprint}) is not the public half of ${mine.path} (key ${mine.fingerprint}): ` +
            `a bootloader built from it would ignore every update you sign. Write it again from the private key: ` +
            `openssl rsa -in ${mine.path} -pubout -out ${where}`,
        );
      }
    } catch (e) {
      if (!(e instanceof KeyError)) throw e;
      add("public key", false, e.message);
    }
  } else if (!input.publicKey) {
    skip("public key", input.skipped?.["public key"] ?? "no public key next to the private key");
  }

  // Keys a mismatching file may have been built for, to name them.
  const known: KnownKey[] = [];
  const remember = (info: PublicKeyInfo | undefined, label: string, path?: string) => {
    if (!info || (mine && equalBytes(info.modulus, mine.modulus))) return;
    if (known.some((k) => equalBytes(k.modulus, info.modulus))) return;
    known.push({ ...info, label, path });
  };
  if (input.publicKey) remember(tryKey(input.publicKey), input.publicKey.path);
  for (const other of input.otherKeys ?? []) remember(tryKey(other), other.path, other.path);
  const nameOf = (modulus: Uint8Array) => known.find((k) => equalBytes(k.modulus, modulus));

  if (input.configH) {
    const where = input.configH.path;
    const modulus = modulusFromConfigH(input.configH.text);
    const offset = appOffsetFromConfigH(input.configH.text);
    const problems: string[] = [];
    let found = "";
    if (!modulus || modulus.length === 0) {
      problems.push(`no '#define MODULUS "..."' in ${where}: is this yaota8266's config.h?`);
    } else {
      const other = nameOf(modulus);
      const theirs = other ?? infoFromModulus(modulus, keyFingerprint(modulus));
      remember(theirs, `the MODULUS in ${where}`);
      if (!mine) {
        found =
          `MODULUS of key ${theirs.fingerprint} (${theirs.bits} bits; no key to compare it with)`;
      } else if (equalBytes(modulus, mine.modulus)) {
        found = `MODULUS matches your key ${mine.fingerprint}`;
      } else {
        problems.push(
          `${where} has the MODULUS of key ${theirs.fingerprint}${
            other ? ` (${other.label})` : ""
          }, ` +
            `yours is ${mine.fingerprint}: a bootloader built from it would ignore your updates. ` +
            `Regenerate it with 'deno task build-bootloader' (it writes MODULUS from your key)`,
        );
      }
    }
    if (offset !== undefined && offset !== appOffset) {
      problems.push(
        `${where} sets MAIN_APP_OFFSET ${formatHex(offset)}, but the app offset here is ${
          formatHex(appOffset)
        }: set the same in both (ota.config.json 'appOffset' or --app-offset)`,
      );
    }
    add(
      "config.h",
      problems.length === 0,
      problems.length
        ? problems.join("; ")
        : `${where}: ${found}${
          offset === undefined ? "" : `, MAIN_APP_OFFSET ${formatHex(offset)}`
        }`,
    );
  } else skip("config.h", input.skipped?.["config.h"] ?? "no config.h given (--config-h FILE)");

  if (input.bootloader) {
    const { path: where, bytes } = input.bootloader;
    if (!mine) {
      skip("bootloader", `no usable key to look for in ${where}`);
    } else {
      const at = indexOfBytes(bytes, mine.modulus);
      if (at >= 0 && bytes.length > appOffset) {
        add(
          "bootloader",
          false,
          `${where} is ${bytes.length} bytes, past the app offset ${formatHex(appOffset)}: ` +
            `flashing the firmware there would overwrite it. Is it really yaota8266.bin?`,
        );
      } else if (at >= 0) {
        add(
          "bootloader",
          true,
          `${where} (${bytes.length} bytes) is built for your key ${mine.fingerprint} (modulus at ${
            formatHex(at)
          })`,
        );
      } else {
        const builtFor = known.find((k) => indexOfBytes(bytes, k.modulus) >= 0);
        const notImage = bytes[0] !== ESP_IMAGE_MAGIC
          ? ` (byte 0 is ${
            formatHex(bytes[0] ?? 0)
          }, not the ESP8266 image magic 0xe9: is it a bootloader at all?)`
          : "";
        add(
          "bootloader",
          false,
          builtFor
            ? `this bootloader was built for key ${builtFor.fingerprint} (${builtFor.label}), yours is ${mine.fingerprint}: ` +
              `${REBUILD_BOOTLOADER}, or use the key it was built with${
                builtFor.path ? ` (--key ${builtFor.path})` : ""
              }`
            : `this bootloader was built for another key: ${where} does not hold the modulus of yours (${mine.fingerprint})${notImage}. ` +
              `${capitalize(REBUILD_BOOTLOADER)}, or use the key it was built with (--key FILE)`,
        );
      }
    }
  } else skip("bootloader", input.skipped?.bootloader ?? "no bootloader given (--bootloader FILE)");

  if (input.firmware) {
    const { path: where, bytes } = input.firmware;
    const report = inspectImage(bytes, { appOffset, flashSize: input.flashSize });
    if (report.safe) {
      add(
        "firmware",
        true,
        `${where}: safe OTA image for app offset ${formatHex(appOffset)} (${bytes.length} bytes${
          report.version ? `, MicroPython ${report.version}` : ""
        })`,
      );
    } else {
      const problems = summarizeProblems(report);
      const advice = problems.includes("build-ota")
        ? ""
        : ". Rebuild it with 'deno task build-ota'";
      add(
        "firmware",
        false,
        `${where} is not a safe OTA image for app offset ${
          formatHex(appOffset)
        }: ${problems}${advice} ` +
          `('deno task inspect ${where}' shows every check)`,
      );
    }
  } else skip("firmware", input.skipped?.firmware ?? "no firmware given (--firmware FILE)");

  return { ok: checks.every((c) => c.ok), checks };
}

/** One result line for a terminal: status, check name, detail. */
export function formatCheck(check: VerifyCheck): string {
  const status = check.skipped ? "skip" : check.ok ? green("ok") : red("FAIL");
  const pad = " ".repeat(Math.max(1, 5 - (check.skipped ? 4 : check.ok ? 2 : 4)));
  return `${status}${pad}${check.name.padEnd(11)} ${check.detail}`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export const DEFAULT_KEY = "keys/priv.key";
export const DEFAULT_BOOTLOADER = "dist/yaota8266.bin";
export const DEFAULT_FIRMWARE = "dist/firmware-ota.bin";

/** Files named on the command line; absent ones fall back to the config and the defaults. */
export interface VerifyPaths {
  key?: string;
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

  const keyPath = paths.key ?? config.key ?? DEFAULT_KEY;
  const keyText = await readIfThere(
    text,
    keyPath,
    cwd,
    paths.key !== undefined || config.key !== undefined || required("key"),
    `no key at '${keyPath}'. Create one with 'deno task keygen', or name yours with --key.`,
  );
  if (keyText === undefined) {
    skipped.key =
      `no key at ${keyPath} (create one with 'deno task keygen', or name yours with --key)`;
  }
  const pubPath = join(dirname(keyPath), "pub.key");
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

  const bootloaderPath = paths.bootloader ?? DEFAULT_BOOTLOADER;
  const bootloaderBytes = await readIfThere(
    bytes,
    bootloaderPath,
    cwd,
    paths.bootloader !== undefined || required("bootloader"),
    `no bootloader at '${bootloaderPath}': build it with 'deno task build-bootloader', or name it with --bootloader`,
  );
  if (bootloaderBytes === undefined) {
    skipped.bootloader =
      `no ${bootloaderPath} (build it with 'deno task build-bootloader', or name it with --bootloader)`;
  }

  const firmwarePath = paths.firmware ?? DEFAULT_FIRMWARE;
  const firmwareBytes = await readIfThere(
    bytes,
    firmwarePath,
    cwd,
    paths.firmware !== undefined || required("firmware"),
    `no firmware at '${firmwarePath}': build it with 'deno task build-ota', or name it with --firmware`,
  );
  if (firmwareBytes === undefined) {
    skipped.firmware =
      `no ${firmwarePath} (build it with 'deno task build-ota', or name it with --firmware)`;
  }

  const keyDir = resolve(cwd, dirname(keyPath));
  const otherKeys = (await siblingKeys(keyDir, [resolve(cwd, keyPath), resolve(cwd, pubPath)]))
    .map((k) => ({ ...k, path: join(dirname(keyPath), basename(k.path)) }));

  const report = verifySetup({
    key: keyText === undefined ? undefined : { path: keyPath, text: keyText },
    publicKey: pubText === undefined ? undefined : { path: pubPath, text: pubText },
    configH: configHText === undefined ? undefined : { path: configHPath!, text: configHText },
    bootloader: bootloaderBytes === undefined
      ? undefined
      : { path: bootloaderPath, bytes: bootloaderBytes },
    firmware: firmwareBytes === undefined
      ? undefined
      : { path: firmwarePath, bytes: firmwareBytes },
    otherKeys,
    appOffset: options.appOffset ?? config.appOffset,
    flashSize: config.flashSize,
    skipped,
  });
  if (report.checks.every((c) => c.skipped)) {
    report.checks.push({
      name: "inputs",
      ok: false,
      detail: "nothing to verify: none of the files above is there. Name them with the flags.",
    });
    report.ok = false;
  }
  return report;
}
