/**
 * `deno task keygen [--out DIR] [--bits 2048] [--force] [--json]`: makes the RSA
 * signing key pair (exponent 3) yaota8266 verifies firmware with, and prints the
 * `#define MODULUS` line for its `config.h`. The private key is never printed.
 */
import { suggest } from "../lib/cli/hint.ts";
import {
  boolOpt,
  type CommandSpec,
  numberOpt,
  parseCommandArgs,
  type ParsedArgs,
  runTask,
  stringOpt,
  type TaskContext,
} from "../lib/cli/cli.ts";
import { loadConfig } from "../lib/config/config.ts";
import { UsageError } from "../lib/errors.ts";
import { generateKey } from "../lib/format/keys.ts";
import {
  checkCanWriteKeys,
  checkKeyBits,
  DEFAULT_KEY_BITS,
  keyPaths,
  modulusDefine,
  PRIVATE_KEY_FILE,
  renderKeygenReport,
  writeKeyPair,
} from "../lib/setup/keygen.ts";
import { basename } from "node:path";
import { formatSeconds, log, print, printJson, warn } from "../lib/cli/output.ts";

export const spec: CommandSpec = {
  name: "keygen",
  summary: "Make the RSA signing key pair (exponent 3) for yaota8266: priv.key and pub.key.",
  options: {
    out: {
      type: "string",
      arg: "DIR",
      help: "folder for priv.key and pub.key (default: the folder of config key, else keys)",
    },
    bits: {
      type: "string",
      arg: "N",
      help: `key size, 512 to 4096 in steps of 256 (default: ${DEFAULT_KEY_BITS})`,
    },
    force: {
      type: "boolean",
      help:
        "replace existing key files (devices built with the old key then need a serial re-flash)",
    },
    json: {
      type: "boolean",
      help: "print one JSON object {ok, privateKey, publicKey, bits, fingerprint, modulusDefine}",
    },
  },
  notes: [
    "priv.key is PEM (PKCS#8) with file mode 0600; it signs every firmware you push. Back it " +
    "up and keep it out of git: a device built with its public key accepts firmware signed " +
    "by it only. The output shows the #define MODULUS line for yaota8266's config.h " +
    "('deno task build-bootloader' writes it for you) and a short fingerprint of the key.",
    "With 256-byte blocks a request is 268 bytes plus the signature (bits / 8), so every " +
    "size here fits one unfragmented datagram; larger keys leave room for smaller blocks only.",
  ],
  examples: ["deno task keygen", "deno task keygen --bits 512 --out test-keys"],
};

export interface KeygenArgs {
  out?: string;
  bits: number;
  force: boolean;
  json: boolean;
  config?: string;
}

export function toKeygenArgs(args: ParsedArgs): KeygenArgs {
  if (args.positionals.length) {
    throw new UsageError(
      `unexpected argument '${args.positionals[0]}' (name the folder with --out DIR)`,
    );
  }
  const bits = numberOpt(args.values, "bits", Number.isInteger, "a whole number of bits");
  return {
    out: stringOpt(args.values, "out"),
    bits: checkKeyBits(bits ?? DEFAULT_KEY_BITS),
    force: boolOpt(args.values, "force"),
    json: boolOpt(args.values, "json"),
    config: stringOpt(args.values, "config"),
  };
}

/** Parses the command line. Pure. @throws {UsageError} */
export function parseKeygenArgs(argv: string[]): KeygenArgs {
  return toKeygenArgs(parseCommandArgs(spec, argv));
}

export async function main({ args, invocation }: TaskContext): Promise<number | void> {
  const options = toKeygenArgs(args);
  const config = await loadConfig(options.config);
  const paths = keyPaths(options.out, config.key);
  // Check first: a refusal should not wait for the key to be generated.
  await checkCanWriteKeys(paths, options.force);
  if (!options.json) log(`generating a ${options.bits}-bit RSA key (exponent 3)…`);
  const started = performance.now();
  const key = generateKey(options.bits);
  const seconds = (performance.now() - started) / 1000;
  const written = await writeKeyPair(paths, key, options.force);
  if (options.out === undefined && config.key && basename(config.key) !== PRIVATE_KEY_FILE) {
    warn(
      `${config.path ?? "the configuration"} names the key '${config.key}', but keygen ` +
        `writes ${PRIVATE_KEY_FILE}: point 'key' at ${written.privateKey}.`,
    );
  }
  if (options.json) {
    printJson({
      ok: true,
      privateKey: written.privateKey,
      publicKey: written.publicKey,
      bits: written.info.bits,
      fingerprint: written.info.fingerprint,
      modulusDefine: modulusDefine(written.info.modulus),
    });
    return;
  }
  log(`generated in ${formatSeconds(seconds)}`);
  const command = (task: string, more?: string) => suggest(invocation, task, more);
  for (const line of renderKeygenReport(written, command)) print(line);
}

if (import.meta.main) runTask(spec, main);
