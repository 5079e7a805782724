/**
 * The one place a key file is read from disk: a missing file or a folder named as such,
 * and, like ssh, a warning when a private key is open to other users (a key anyone on
 * the machine can read signs firmware every board built for it accepts). The warning goes
 * to the caller's `onWarning` (the task prints it); the key itself is parsed by
 * `lib/format/keys.ts`.
 */
import { KeyError } from "../errors.ts";
import {
  parsePrivateKey,
  parsePublicKey,
  type PublicKeyInfo,
  type SigningKey,
} from "../format/keys.ts";
import type { Signer } from "../format/packet.ts";
import { nativeSigner } from "../format/signer.ts";

/** Where a task hears about a key open to others (`warning: …` on stderr). */
export interface KeyFileOptions {
  onWarning?: (message: string) => void;
}

const warned = new Set<string>();

/** `0644` for a file mode. */
function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, "0");
}

/**
 * Why a private key file's mode is too open, or undefined if it is not (or the platform
 * has no modes, or `text` holds no private key). Pure.
 * @example
 * ```ts
 * import { openKeyProblem } from "./key_file.ts";
 * const pem = "-----BEGIN PRIVATE KEY-----\n...";
 * if (!openKeyProblem("k.pem", pem, 0o100644)?.startsWith("k.pem is readable by others")) {
 *   throw new Error();
 * }
 * if (openKeyProblem("k.pem", pem, 0o100600) !== undefined) throw new Error();
 * ```
 */
export function openKeyProblem(
  path: string,
  text: string,
  mode: number | null,
): string | undefined {
  if (mode === null || (mode & 0o077) === 0 || !/PRIVATE KEY-----/.test(text)) return undefined;
  const what = (mode & 0o044) !== 0 ? "readable" : "writable";
  return `${path} is ${what} by others (mode ${octal(mode)}): anyone who can read it can sign ` +
    `firmware your boards accept. Run: chmod 600 ${path}`;
}

/**
 * Warns through `onWarning` (once per file and run) when `path`, holding `text`, is a
 * private key open to other users; `shown` is how the user named it. Needs --allow-read.
 */
export async function warnIfKeyIsOpen(
  path: string,
  text: string,
  shown = path,
  options: KeyFileOptions = {},
): Promise<void> {
  if (warned.has(path) || !options.onWarning) return;
  const mode = await Deno.stat(path).then((s) => s.mode, () => null);
  const problem = openKeyProblem(shown, text, mode);
  if (problem === undefined) return;
  warned.add(path);
  options.onWarning(problem);
}

/**
 * Reads a key file for a task, warning if a private key is open to others.
 * @throws {KeyError} If it is missing, a folder or unreadable.
 */
export async function readKeyFile(path: string, options: KeyFileOptions = {}): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new KeyError(
        `no key at '${path}'. Create one with 'deno task keygen', or name yours with --key.`,
      );
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new KeyError(`'${path}' is a folder, not a key file: name the key file in it`);
    }
    throw new KeyError(`cannot read the key '${path}': ${(e as Error).message}`);
  }
  await warnIfKeyIsOpen(path, text, path, options);
  return text;
}

/**
 * Reads and checks a private key file.
 * @throws {KeyError} If it is missing, unreadable, not RSA or its exponent is not 3.
 */
export async function loadSigningKey(
  path: string,
  options: KeyFileOptions = {},
): Promise<SigningKey> {
  return { ...parsePrivateKey(await readKeyFile(path, options), path), path };
}

/**
 * Reads a public (or private) key file and returns its public part.
 * @throws {KeyError} If it is missing, unreadable, not RSA or its exponent is not 3.
 */
export async function loadPublicKey(
  path: string,
  options: KeyFileOptions = {},
): Promise<PublicKeyInfo> {
  return parsePublicKey(await readKeyFile(path, options), path);
}

/**
 * The signer of the OTA-mode question (docs/device.md, "Asking whether a device is in OTA
 * mode") from the private key at `path`, or why there is none: a key that cannot be loaded
 * only means the question is not asked.
 */
export async function questionSigner(
  path: string,
  options: KeyFileOptions = {},
): Promise<Signer | { missing: string }> {
  try {
    return nativeSigner(await loadSigningKey(path, options));
  } catch (e) {
    if (e instanceof KeyError) return { missing: e.message };
    throw e;
  }
}
