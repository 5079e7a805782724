/**
 * Making a yaota8266 signing key pair on disk (docs/device.md, "Keys"): which sizes make
 * sense, where the files go, and writing them so that the private key is never
 * readable by others, not even for a moment, and never silently replaced.
 */
import { basename, dirname, join } from "node:path";
import { FileError, UsageError } from "../errors.ts";
import { type GeneratedKey, modulusCString, type PublicKeyInfo } from "../format/keys.ts";
import { datagramSize } from "../format/packet.ts";
import { AUTO_BLOCKS, MAX_UNFRAGMENTED } from "../transfer/packet_source.ts";
import { DEFAULT_KEY_PATH, PUBLIC_KEY_FILE } from "../config/values.ts";
import { folderProblem } from "../_fs.ts";

export const DEFAULT_KEY_BITS = 2048;
export const MIN_KEY_BITS = 512;
export const MAX_KEY_BITS = 4096;
/** Sizes in between go in these steps: whole bytes of modulus, and the usual sizes. */
export const KEY_BITS_STEP = 256;
/** The smallest block a sender uses, and the original client's only one. */
const SMALLEST_BLOCK = 256;
export const DEFAULT_KEY_DIR = dirname(DEFAULT_KEY_PATH);
export const PRIVATE_KEY_FILE = basename(DEFAULT_KEY_PATH);
export { PUBLIC_KEY_FILE };
/** Owner read/write only. */
export const PRIVATE_KEY_MODE = 0o600;

/**
 * Checks a requested key size. Pure.
 * @returns `bits` if usable.
 * @example
 * ```ts
 * import { checkKeyBits } from "./keygen.ts";
 * if (checkKeyBits(2048) !== 2048) throw new Error();
 * ```
 * @throws {UsageError} If it is outside 512–4096, not a multiple of 256, or its
 * signature would not leave room for a 256-byte block in one unfragmented datagram.
 */
export function checkKeyBits(bits: number): number {
  if (
    !Number.isInteger(bits) || bits < MIN_KEY_BITS || bits > MAX_KEY_BITS ||
    bits % KEY_BITS_STEP !== 0
  ) {
    throw new UsageError(
      `--bits expects a key size from ${MIN_KEY_BITS} to ${MAX_KEY_BITS} in steps of ` +
        `${KEY_BITS_STEP} (e.g. 512, 1024, 2048, 3072), got '${bits}'`,
    );
  }
  // The device reads only the first pbuf of a datagram, so a fragmented request never
  // verifies (docs/device.md, "Wire protocol"): the signature must leave room for a block.
  const size = datagramSize(SMALLEST_BLOCK, bits / 8);
  if (size > MAX_UNFRAGMENTED) {
    throw new UsageError(
      `--bits ${bits}: a ${bits}-bit signature makes even a ${SMALLEST_BLOCK}-byte-block ` +
        `datagram ${size} bytes, over the ${MAX_UNFRAGMENTED} bytes of one unfragmented UDP ` +
        `payload; the device reads only the first fragment, so no packet would verify. ` +
        `Use ${DEFAULT_KEY_BITS} bits.`,
    );
  }
  return bits;
}

/** The largest block size whose datagram fits unfragmented with this key; undefined if none. */
export function largestBlock(signatureLength: number): number | undefined {
  return AUTO_BLOCKS.find((b) => datagramSize(b, signatureLength) <= MAX_UNFRAGMENTED);
}

export interface KeyPaths {
  privateKey: string;
  publicKey: string;
}

/**
 * Where keygen writes: `--out DIR`, else the folder of the configured `key`, else `keys/`.
 * Pure.
 * @example
 * ```ts
 * import { keyPaths } from "./keygen.ts";
 * const { privateKey } = keyPaths(undefined, "/project/secrets/signing.pem");
 * if (privateKey !== "/project/secrets/priv.key") throw new Error();
 * ```
 */
export function keyPaths(outDir: string | undefined, configKey?: string): KeyPaths {
  const dir = outDir ?? (configKey !== undefined ? dirname(configKey) : DEFAULT_KEY_DIR);
  return { privateKey: join(dir, PRIVATE_KEY_FILE), publicKey: join(dir, PUBLIC_KEY_FILE) };
}

/** The line for yaota8266's `config.h`. Pure. */
export function modulusDefine(modulus: Uint8Array): string {
  return `#define MODULUS ${modulusCString(modulus)}`;
}

function existsError(existing: string[]): FileError {
  const which = existing.map((p) => `'${p}'`).join(" and ");
  return new FileError(
    `${which} already ${existing.length > 1 ? "exist" : "exists"}: not overwritten. ` +
      `Devices built with that key accept firmware signed by it only, so replacing it cuts ` +
      `them off from OTA updates until they are re-flashed over serial. To make a new key ` +
      `anyway, back up the old one and pass --force, or write elsewhere with --out DIR.`,
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw new FileError(`cannot check '${path}': ${(e as Error).message}`);
  }
}

/**
 * Checks, before a key is generated, that writing `paths` would not replace a key.
 * @throws {FileError} Naming the files that exist, unless `force`; or if the folder is a file.
 */
export async function checkCanWriteKeys(paths: KeyPaths, force: boolean): Promise<void> {
  const dir = dirname(paths.privateKey);
  const problem = await folderProblem(dir);
  if (problem !== undefined) {
    throw new FileError(
      `cannot write the keys into '${dir}': ${problem}. keygen writes ${PRIVATE_KEY_FILE} and ` +
        `${PUBLIC_KEY_FILE} into a folder: name one with --out DIR (it is made if missing).`,
    );
  }
  if (force) return;
  const existing: string[] = [];
  for (const p of [paths.privateKey, paths.publicKey]) if (await exists(p)) existing.push(p);
  if (existing.length) throw existsError(existing);
}

/**
 * Creates `path` with `mode` from the first byte on and writes `text` to it. Without
 * `force`, an existing file is an error (`createNew`, so a file that appeared since the
 * check is not replaced either). With `force`, the text goes to a new temporary file
 * that replaces `path` by rename: truncating the old file would keep its old mode.
 */
async function writeNew(path: string, text: string, mode: number, force: boolean): Promise<void> {
  const target = force ? `${path}.${crypto.randomUUID().slice(0, 8)}.tmp` : path;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(target, { write: true, createNew: true, mode });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) throw existsError([path]);
    throw new FileError(`cannot create '${path}': ${(e as Error).message}`);
  }
  try {
    // The umask can only take bits away; make the mode exact (never wider than `mode`).
    if (Deno.build.os !== "windows") await Deno.chmod(target, mode);
    await file.write(new TextEncoder().encode(text));
    await file.syncData();
  } catch (e) {
    await Deno.remove(target).catch(() => {});
    throw new FileError(`cannot write '${path}': ${(e as Error).message}`);
  } finally {
    file.close();
  }
  if (force) {
    try {
      await Deno.rename(target, path);
    } catch (e) {
      await Deno.remove(target).catch(() => {});
      throw new FileError(`cannot replace '${path}': ${(e as Error).message}`);
    }
  }
}

export interface WrittenKeys extends KeyPaths {
  info: PublicKeyInfo;
}

/**
 * Writes a generated key pair: `priv.key` (PKCS#8 PEM, mode 0600) first, then `pub.key`.
 * Creates the folder (mode 0700) if needed. Needs `--allow-read --allow-write`.
 * @throws {FileError} If a file exists and not `force`, or writing fails.
 */
export async function writeKeyPair(
  paths: KeyPaths,
  key: GeneratedKey,
  force: boolean,
): Promise<WrittenKeys> {
  try {
    await Deno.mkdir(dirname(paths.privateKey), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new FileError(
      `cannot create the folder '${dirname(paths.privateKey)}': ${(e as Error).message}`,
    );
  }
  await writeNew(paths.privateKey, key.privatePem, PRIVATE_KEY_MODE, force);
  await writeNew(paths.publicKey, key.publicPem, 0o644, force);
  return { ...paths, info: key.info };
}

/** Builds a suggested command: program, task, the run's carried flags, `args` (lib/cli/hint.ts). */
export type SuggestCommand = (task: string, args?: string) => string;

/**
 * What keygen prints on stdout: files, fingerprint, the `config.h` line, next steps, each
 * a command made by `command` (so it names the program and flags the user typed). Pure.
 */
export function renderKeygenReport(
  written: WrittenKeys,
  command: SuggestCommand = (task, args) => `deno task ${task}${args ? ` ${args}` : ""}`,
): string[] {
  const { info } = written;
  const block = largestBlock(info.modulus.length);
  return [
    `wrote ${written.privateKey} (private key, mode 0600: keep it secret) and ` +
    `${written.publicKey}`,
    `${info.bits}-bit RSA, exponent 3, fingerprint ${info.fingerprint}`,
    "",
    `For yaota8266's config.h ('${command("build-bootloader")}' writes it for you):`,
    modulusDefine(info.modulus),
    "",
    "Next steps:",
    `  1. Back up ${written.privateKey} somewhere private (not in git). Devices built with ` +
    "this key accept firmware signed by it only; without it they can be updated only over serial.",
    `  2. ${
      command("build-bootloader", `--key ${written.privateKey} --yaota8266 DIR`)
    }   (yaota8266.bin with this modulus)`,
    `  3. ${command("build-ota", "--micropython DIR")}   (the firmware: dist/firmware-ota.bin)`,
    `  4. ${command("flash", "--port PORT --erase")}   (once, over serial: both, checked first)`,
    `  5. ${command("deploy", `--key ${written.privateKey} --ip ADDR`)}   (every update after ` +
    "that, over Wi-Fi" +
    (block !== undefined ? `; blocks up to ${block} bytes fit one datagram with this key)` : ")"),
  ];
}
