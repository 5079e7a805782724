import { assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { runTaskFile, tempDir, vectorText } from "../_helpers.ts";
import { makeFakeYaotaTree } from "../fixtures/fake_trees.ts";
import { KeyError } from "../../lib/errors.ts";
import { openKeyProblem } from "../../lib/config/key_file.ts";
import { foreignKeyKind, parsePrivateKey, parsePublicKey } from "../../lib/format/keys.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";

const NEEDS_RSA = "yaota8266 needs an RSA key with exponent 3: make one with 'deno task keygen'.";
const EMPTY = "is empty (no key in it): make a key pair with 'deno task keygen' (--force " +
  "replaces an empty file), or name your key with --key.";

function pem(type: "ec" | "ed25519", part: "privateKey" | "publicKey"): string {
  const pair = type === "ec"
    ? generateKeyPairSync("ec", {
      namedCurve: "prime256v1",
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    })
    : generateKeyPairSync("ed25519", {
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
  return pair[part] as string;
}

const sec1 = generateKeyPairSync("ec", {
  namedCurve: "secp384r1",
  privateKeyEncoding: { type: "sec1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
}).privateKey as string;

Deno.test("foreignKeyKind() names EC, Ed25519 and OpenSSH keys, and nothing for RSA", () => {
  assertEquals(foreignKeyKind(pem("ec", "privateKey")), "an EC key (curve prime256v1)");
  assertEquals(foreignKeyKind(pem("ec", "publicKey")), "an EC key (curve prime256v1)");
  assertEquals(foreignKeyKind(sec1), "an EC key (curve secp384r1)");
  assertEquals(foreignKeyKind(pem("ed25519", "privateKey")), "an Ed25519 key");
  assertEquals(
    foreignKeyKind("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ me@host\n"),
    "an OpenSSH key (ssh-ed25519)",
  );
  const body = btoa("openssh-key-v1\0\0\0\0\x04none\0\0\0\x0bssh-ed25519");
  assertEquals(
    foreignKeyKind(
      `-----BEGIN OPENSSH PRIVATE KEY-----\n${body}\n-----END OPENSSH PRIVATE KEY-----\n`,
    ),
    "an OpenSSH key (ssh-ed25519)",
  );
  assertEquals(foreignKeyKind(vectorText("test-key-512.pem")), undefined);
  assertEquals(foreignKeyKind("not a key"), undefined);
});

Deno.test("parsePrivateKey() and parsePublicKey() name an EC key and an empty file as such", () => {
  for (const key of [pem("ec", "privateKey"), pem("ec", "publicKey"), sec1]) {
    const curve = key === sec1 ? "secp384r1" : "prime256v1";
    for (const parse of [parsePrivateKey, parsePublicKey]) {
      assertThrows(
        () => parse(key, "keys/ec.pem"),
        KeyError,
        `keys/ec.pem is an EC key (curve ${curve}), but ${NEEDS_RSA}`,
      );
    }
  }
  for (const text of ["", "\n  \n"]) {
    assertThrows(() => parsePrivateKey(text, "keys/priv.key"), KeyError, `keys/priv.key ${EMPTY}`);
    assertThrows(() => parsePublicKey(text, "keys/pub.key"), KeyError, `keys/pub.key ${EMPTY}`);
  }
});

Deno.test("openKeyProblem() flags a private key open to group or others, like ssh", () => {
  const key = vectorText("test-key-512.pem");
  assertEquals(
    openKeyProblem("keys/priv.key", key, 0o100644),
    "keys/priv.key is readable by others (mode 0644): anyone who can read it can sign firmware " +
      "your boards accept. Run: chmod 600 keys/priv.key",
  );
  assertStringIncludes(openKeyProblem("k", key, 0o100640)!, "k is readable by others (mode 0640)");
  assertStringIncludes(openKeyProblem("k", key, 0o100620)!, "k is writable by others (mode 0620)");
  assertEquals(openKeyProblem("k", key, 0o100600), undefined);
  assertEquals(openKeyProblem("k", key, 0o100400), undefined);
  assertEquals(openKeyProblem("k", key, null), undefined, "no modes (Windows)");
  assertEquals(openKeyProblem("pub.key", "-----BEGIN PUBLIC KEY-----\n", 0o100644), undefined);
});

/** A project: a safe image, the 512-bit key at keys/priv.key with `mode`, a fake yaota8266. */
async function project(mode = 0o600) {
  const dir = await tempDir();
  await Deno.mkdir(join(dir.path, "keys"));
  const key = join(dir.path, "keys", "priv.key");
  await Deno.writeTextFile(key, vectorText("test-key-512.pem"));
  if (Deno.build.os !== "windows") await Deno.chmod(key, mode);
  await Deno.writeFile(join(dir.path, "fw.bin"), makeSampleFirmware());
  await makeFakeYaotaTree(dir.path);
  return dir;
}

const OPEN_WARNING = "warning: keys/priv.key is readable by others (mode 0644): anyone who can " +
  "read it can sign firmware your boards accept. Run: chmod 600 keys/priv.key\n";

Deno.test("sign, deploy, verify, flash and build-bootloader warn once about a private key readable by others", async () => {
  if (Deno.build.os === "windows") return;
  await using dir = await project(0o644);
  const runs: [string, string[], number][] = [
    ["sign", ["fw.bin", "--out", "fw.ota"], 0],
    ["verify", ["--firmware", "fw.bin"], 0],
    ["build_bootloader", ["--yaota8266", "yaota8266", "--dry-run"], 0],
    // No bootloader built: flash stops at its check, after reading the key.
    ["flash", ["--serial", "/dev/null", "--firmware", "fw.bin", "--dry-run"], 1],
    // Nothing listens: deploy fails after its preflight, which loaded the key.
    ["deploy", ["--ip", "127.0.0.1", "--port", "9", "--timeout", "0.3", "fw.bin"], 4],
  ];
  for (const [task, args, code] of runs) {
    const r = await runTaskFile(task, args, { cwd: dir.path });
    assertEquals(r.code, code, `${task}: ${r.stderr}`);
    // build-bootloader names its files by their full paths.
    const warning = task === "build_bootloader"
      ? OPEN_WARNING.replaceAll("keys/priv.key", join(dir.path, "keys/priv.key"))
      : OPEN_WARNING;
    assertStringIncludes(r.stderr, warning, task);
    assertEquals(r.stderr.split(warning).length, 2, `${task} warns once`);
  }
  await Deno.chmod(join(dir.path, "keys", "priv.key"), 0o600);
  const quiet = await runTaskFile("sign", ["fw.bin", "--out", "fw.ota"], { cwd: dir.path });
  assertEquals(quiet.code, 0, quiet.stderr);
  assertEquals(quiet.stderr.includes("warning"), false, quiet.stderr);
});

Deno.test("an EC or Ed25519 key is named with the remedy by build-bootloader, sign, deploy and verify", async () => {
  await using dir = await project();
  await Deno.writeTextFile(join(dir.path, "ec.pem"), pem("ec", "privateKey"), { mode: 0o600 });
  await Deno.writeTextFile(join(dir.path, "ed.pub"), pem("ed25519", "publicKey"));
  const ec = `ec.pem is an EC key (curve prime256v1), but ${NEEDS_RSA}`;
  const ed = `ed.pub is an Ed25519 key, but ${NEEDS_RSA}`;
  const runs: [string, string[], string][] = [
    [
      "build_bootloader",
      ["--yaota8266", "yaota8266", "--key", "ec.pem", "--dry-run"],
      join(dir.path, ec),
    ],
    [
      "build_bootloader",
      ["--yaota8266", "yaota8266", "--key", "ed.pub", "--dry-run"],
      join(dir.path, ed),
    ],
    ["sign", ["fw.bin", "--key", "ec.pem"], ec],
    ["deploy", ["--ip", "127.0.0.1", "--key", "ec.pem", "fw.bin"], ec],
  ];
  for (const [task, args, message] of runs) {
    const r = await runTaskFile(task, args, { cwd: dir.path });
    assertEquals(r.code, 1, `${task}: ${r.stderr}`);
    assertEquals(r.stderr, `error: ${message}\n`, task);
  }
  const verify = await runTaskFile("verify", ["--key", "ec.pem"], { cwd: dir.path });
  assertEquals(verify.code, 1);
  assertStringIncludes(verify.stdout, `FAIL key         ${ec}\n`);
});

Deno.test("an empty key file is called empty by sign, deploy, verify and build-bootloader", async () => {
  await using dir = await project();
  await Deno.writeTextFile(join(dir.path, "keys", "priv.key"), "");
  const message = `keys/priv.key ${EMPTY}`;
  for (
    const [task, args] of [
      ["sign", ["fw.bin"]],
      ["deploy", ["--ip", "127.0.0.1", "fw.bin"]],
    ] as const
  ) {
    const r = await runTaskFile(task, [...args], { cwd: dir.path });
    assertEquals(r.code, 1, `${task}: ${r.stderr}`);
    assertEquals(r.stderr, `error: ${message}\n`, task);
  }
  const bootloader = await runTaskFile(
    "build_bootloader",
    ["--yaota8266", "yaota8266", "--dry-run"],
    { cwd: dir.path },
  );
  assertEquals(bootloader.code, 1);
  assertEquals(bootloader.stderr, `error: ${join(dir.path, message)}\n`);
  const verify = await runTaskFile("verify", [], { cwd: dir.path });
  assertEquals(verify.code, 1);
  assertStringIncludes(verify.stdout, `FAIL key         ${message}\n`);
});

Deno.test("keygen --out naming a file, and sign --out naming a folder, say so in one line", async () => {
  await using dir = await project();
  await Deno.writeTextFile(join(dir.path, "notes.txt"), "mine\n");
  await Deno.mkdir(join(dir.path, "out"));
  const runs: [string, string[], string][] = [
    [
      "keygen",
      ["--out", "notes.txt", "--bits", "512"],
      "cannot write the keys into 'notes.txt': 'notes.txt' is a file, not a folder. keygen " +
      "writes priv.key and pub.key into a folder: name one with --out DIR (it is made if missing).",
    ],
    [
      "keygen",
      ["--out", "notes.txt/keys", "--bits", "512", "--force"],
      "cannot write the keys into 'notes.txt/keys': 'notes.txt' in it is a file, not a folder. " +
      "keygen writes priv.key and pub.key into a folder: name one with --out DIR (it is made if missing).",
    ],
    [
      "sign",
      ["fw.bin", "--out", "out"],
      "--out 'out' is a folder: name the .ota file to write, e.g. --out out/fw.ota",
    ],
    [
      "sign",
      ["fw.bin", "--out", "notes.txt/fw.ota"],
      "cannot write 'notes.txt/fw.ota': 'notes.txt' is a file, not a folder",
    ],
  ];
  for (const [task, args, message] of runs) {
    const r = await runTaskFile(task, args, { cwd: dir.path });
    assertEquals(r.code, 1, `${task}: ${r.stderr}`);
    assertEquals(r.stderr, `error: ${message}\n`, `${task} ${args.join(" ")}`);
  }
  assertEquals(await Deno.readTextFile(join(dir.path, "notes.txt")), "mine\n");
  assertEquals([...Deno.readDirSync(join(dir.path, "out"))], []);
});
