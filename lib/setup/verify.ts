/**
 * Cross-checks what a user has before anything touches a device: the signing key,
 * its public half, the `MODULUS` in yaota8266's `config.h`, the modulus compiled into
 * `yaota8266.bin` (docs/device.md, "Keys": "is this yaota8266.bin built for my key?" is a
 * byte search) and whether a firmware image is a safe OTA image. `verifySetup` is pure;
 * `verifyFiles` (`verify_files.ts`) reads the files and calls it.
 */
import { ConfigError, KeyError } from "../errors.ts";
import { parseAppOffset } from "../config/values.ts";
import {
  keyFingerprint,
  modulusFromConfigH,
  parsePrivateKey,
  parsePublicKey,
  type PublicKeyInfo,
} from "../format/keys.ts";
import { inspectImage, summarizeProblems } from "../format/inspect.ts";
import { DEFAULT_APP_OFFSET, ESP_IMAGE_MAGIC } from "../format/image.ts";
import {
  analyseBootloader,
  type BootloaderFacts,
  describeBootloader,
  describePacketLog,
  NO_TRIGGER_CONSEQUENCE,
} from "../format/bootloader_image.ts";
import { isAppImage, swappedMessage, wrongBootloaderFile } from "./verify_bootloader.ts";
import { equalBytes, formatHex, indexOfBytes, parseSize } from "../_bytes.ts";

/** The checks, in the order they are reported. */
export const CHECK_NAMES = ["key", "public key", "config.h", "bootloader", "firmware"] as const;
export type CheckName = typeof CHECK_NAMES[number];

/** "skipped": not checked, its input was not there (neither passed nor failed). */
export type CheckResult = "passed" | "failed" | "skipped";

export interface VerifyCheck {
  name: CheckName | "inputs";
  result: CheckResult;
  /** What was found, or the exact mismatch and what to do about it. */
  detail: string;
  /** Passed, but with a limit the user should know of (a bootloader without the software trigger). */
  warning?: string;
  /** What kind of failure: decides the error `flash` stops with. */
  problem?: VerifyProblem;
}

/** A failed check is about a key, a file that is not what it should be, or the app offset. */
export type VerifyProblem = "key" | "file" | "app offset";

export interface VerifyReport {
  /** True when no check failed (skipped ones neither pass nor fail: see `counts`). */
  ok: boolean;
  counts: Record<CheckResult, number>;
  checks: VerifyCheck[];
  /** What the bootloader can do (software trigger, button, app offset, key), if one was read. */
  bootloader?: BootloaderFacts;
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
const NO_TRIGGER_ADVICE = `${NO_TRIGGER_CONSEQUENCE}. ${
  capitalize(REBUILD_BOOTLOADER)
} to get the software trigger`;

/**
 * Runs every check whose input is given; pure.
 * @param input the file contents, each with the path to name it by
 * @returns one check per input, in `CHECK_NAMES` order, and `ok` if all passed
 * @example
 * ```ts
 * import { verifySetup } from "./verify.ts";
 * const report = verifySetup({ skipped: { key: "no key" } });
 * if (report.checks[0]?.result !== "skipped") throw new Error();
 * ```
 */
export function verifySetup(input: VerifyInput): VerifyReport {
  const appOffset = input.appOffset ?? DEFAULT_APP_OFFSET;
  const checks: VerifyCheck[] = [];
  const add = (name: CheckName, ok: boolean, detail: string, problem?: VerifyProblem) =>
    checks.push({
      name,
      result: ok ? "passed" : "failed",
      detail,
      ...(problem && !ok ? { problem } : {}),
    });
  const skip = (name: CheckName, detail: string) =>
    checks.push({ name, result: "skipped", detail });

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
    const invalidOffset = offset === undefined ? undefined : (() => {
      try {
        parseAppOffset(formatHex(offset), { file: where, key: "MAIN_APP_OFFSET" });
      } catch (e) {
        if (e instanceof ConfigError) return e.message;
        throw e;
      }
    })();
    if (invalidOffset !== undefined) {
      problems.push(`${invalidOffset}; write it again with 'deno task build-bootloader'`);
    } else if (offset !== undefined && offset !== appOffset) {
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

  let bootloaderFacts: BootloaderFacts | undefined;
  if (input.bootloader) {
    const { path: where, bytes } = input.bootloader;
    const wrongFile = wrongBootloaderFile(input.bootloader, input.firmware);
    if (wrongFile) {
      add("bootloader", false, wrongFile, "file");
    } else {
      const keys = [
        ...(mine ? [{ label: `your key ${mine.fingerprint}`, modulus: mine.modulus }] : []),
        ...known.map((k) => ({ label: `key ${k.fingerprint} (${k.label})`, modulus: k.modulus })),
      ];
      const facts = analyseBootloader(bytes, keys);
      bootloaderFacts = facts;
      const can = describeBootloader(facts);
      const warning = facts.softwareTrigger
        ? undefined
        : `no software trigger: ${NO_TRIGGER_ADVICE}`;
      const at = mine ? indexOfBytes(bytes, mine.modulus) : -1;
      if (facts.appOffset !== undefined && facts.appOffset !== appOffset) {
        add(
          "bootloader",
          false,
          `${where} is built for app offset ${formatHex(facts.appOffset)} (its MAIN_APP_OFFSET), ` +
            `but the app offset here is ${formatHex(appOffset)}: boot8266 would look for the ` +
            `firmware at ${formatHex(facts.appOffset)}. Set the same in both (ota.config.json ` +
            `'appOffset' or --app-offset ${formatHex(facts.appOffset)}), or ${REBUILD_BOOTLOADER}`,
          "app offset",
        );
      } else if (!mine) {
        checks.push({
          name: "bootloader",
          result: "skipped",
          detail: `no usable key to look for in ${where}; ${can}`,
          warning,
        });
      } else if (at >= 0 && bytes.length > appOffset) {
        add(
          "bootloader",
          false,
          `${where} is ${bytes.length} bytes, past the app offset ${formatHex(appOffset)}: ` +
            `flashing the firmware there would overwrite it. Is it really yaota8266.bin?`,
          "file",
        );
      } else if (at >= 0) {
        const log = describePacketLog(facts.packetLog);
        checks.push({
          name: "bootloader",
          result: "passed",
          detail: `${where} (${bytes.length} bytes) is built for your key ${mine.fingerprint} ` +
            `(modulus at ${formatHex(at)}); ${can}${log ? `; ${log}` : ""}`,
          warning,
        });
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
          "key",
        );
        // What else it can do still matters when choosing between rebuilding and another key.
        checks.at(-1)!.warning = warning;
      }
    }
  } else skip("bootloader", input.skipped?.bootloader ?? "no bootloader given (--bootloader FILE)");

  if (input.firmware) {
    const { path: where, bytes } = input.firmware;
    const report = inspectImage(bytes, { appOffset, flashSize: input.flashSize });
    if (
      report.fileKind.id === "yaota8266" && input.bootloader && isAppImage(input.bootloader.bytes)
    ) {
      add("firmware", false, swappedMessage(input.bootloader.path, where), "file");
    } else if (report.safe) {
      add(
        "firmware",
        true,
        `${where}: safe OTA image for app offset ${formatHex(appOffset)} (${bytes.length} bytes${
          report.version ? `, MicroPython ${report.version}` : ""
        })`,
      );
    } else {
      const problems = summarizeProblems(report);
      const advice = problems.includes("build-ota") || report.fileKind.id !== "esp8266"
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

  return { ...verdict(checks), checks, bootloader: bootloaderFacts };
}

/** `ok` (no check failed) and how many checks passed, failed and were skipped. Pure. */
export function verdict(checks: VerifyCheck[]): Pick<VerifyReport, "ok" | "counts"> {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const c of checks) counts[c.result]++;
  return { ok: counts.failed === 0, counts };
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
