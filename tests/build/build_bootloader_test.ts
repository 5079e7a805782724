import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { ROOT, runTaskFile, tempDir, VECTORS, vectorText } from "../_helpers.ts";
import {
  buildEnv,
  dockerCalls,
  dockerRunArgs,
  makeFakeYaotaTree,
  userArg,
  YAOTA_CONFIG_EXAMPLE,
} from "../fixtures/fake_trees.ts";
import {
  BOOTLOADER_DEFAULTS,
  renderConfigH,
  resolveBootloaderOptions,
} from "../../lib/build/bootloader_build.ts";
import { UsageError } from "../../lib/errors.ts";
import { modulusCString, modulusFromConfigH, parsePublicKey } from "../../lib/format/keys.ts";
import { indexOfBytes } from "../../lib/_bytes.ts";
import { parseBuildBootloaderArgs } from "../../tasks/build_bootloader.ts";
import { hasRtcTrigger, planRtcTrigger } from "../../lib/build/rtc_trigger_edit.ts";
import { planAxtlsAr, planEtshal, planOtaLd } from "../../lib/build/yaota_build_fixes.ts";
import forge from "node-forge";
import { join } from "node:path";

const KEY_FILE = join(VECTORS, "test-key-512.pem");
const KEY = parsePublicKey(vectorText("test-key-512.pem"));
const IMAGE = "larsks/esp-open-sdk";
const CONFIG_TEMPLATE = Deno.readTextFileSync(join(ROOT, "templates", "config.h"));

Deno.test("renderConfigH() writes the modulus as a C string and every setting", () => {
  const text = renderConfigH(CONFIG_TEMPLATE, {
    appOffset: 0x3c000,
    key: KEY,
    settings: { ...BOOTLOADER_DEFAULTS, baudRate: 74880 },
  });
  assertStringIncludes(text, `\n#define MODULUS ${modulusCString(KEY.modulus)}\n`);
  assertStringIncludes(text, "\n#define MAIN_APP_OFFSET 0x3c000\n");
  assertStringIncludes(text, "\n#define BAUD_RATE 74880\n");
  assertStringIncludes(text, "\n#define PKT_WAIT_MS 10000\n");
  assertStringIncludes(text, "\n#define IDLE_REBOOT_MS 60000\n");
  assertStringIncludes(text, "\n#define GPIO_MASK 0xf035\n");
  assertStringIncludes(text, "\n#define GPIO_WAIT_MS 3000\n");
  assertEquals(modulusFromConfigH(text), KEY.modulus);
});

Deno.test("parseBuildBootloaderArgs() types the flags and refuses bad ones", () => {
  assertEquals(
    parseBuildBootloaderArgs(["--key", "k.pem", "--runtime", "native", "--app-offset", "0x40000"]),
    {
      yaota8266: undefined,
      keyPath: "k.pem",
      runtime: "native",
      image: undefined,
      appOffset: 0x40000,
      out: undefined,
      dryRun: false,
      rtcTrigger: true,
      quietLog: false,
      config: undefined,
    },
  );
  assertThrows(
    () => parseBuildBootloaderArgs(["--runtime", "vm"]),
    UsageError,
    "--runtime expects one of",
  );
  assertThrows(() => parseBuildBootloaderArgs(["--app-offset", "x"]), UsageError, "got 'x'");
});

Deno.test("resolveBootloaderOptions() takes keys/pub.key when there is no keys/priv.key", async () => {
  await using dir = await tempDir();
  const flags = { dryRun: false };
  assertEquals(
    resolveBootloaderOptions(flags, {}, dir.path).keyPath,
    join(dir.path, "keys/priv.key"),
  );
  await Deno.mkdir(join(dir.path, "keys"));
  await Deno.writeTextFile(join(dir.path, "keys/pub.key"), "x");
  assertEquals(
    resolveBootloaderOptions(flags, {}, dir.path).keyPath,
    join(dir.path, "keys/pub.key"),
  );
  assertEquals(
    resolveBootloaderOptions(flags, { key: "/k/priv.key" }, dir.path).keyPath,
    "/k/priv.key",
  );
});

Deno.test("build-bootloader writes config.h for the key, builds in docker and collects yaota8266.bin", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const dockerLog = join(dir.path, "docker.log");
  const r = await runTaskFile("build_bootloader", ["--yaota8266", "yaota8266", "--key", KEY_FILE], {
    cwd: dir.path,
    env: buildEnv(dockerLog),
  });
  assertEquals(r.code, 0, r.stderr);
  const run = dockerRunArgs(tree.root, tree.root, IMAGE);
  assertEquals(await dockerCalls(dockerLog), [
    ["image", "inspect", "--format", "{{.Id}}", IMAGE],
    // config.h changed, and yaota8266's Makefiles do not know the objects depend on it.
    [...run, "make", "clean"],
    [...run, "make"],
  ]);
  const configH = await Deno.readTextFile(tree.configH);
  assertEquals(
    configH,
    renderConfigH(CONFIG_TEMPLATE, { appOffset: 0x3c000, key: KEY, settings: BOOTLOADER_DEFAULTS }),
  );
  assertEquals(await Deno.readTextFile(`${tree.configH}.orig`), YAOTA_CONFIG_EXAMPLE);
  const binary = await Deno.readFile(join(dir.path, "dist", "yaota8266.bin"));
  assertEquals(binary, await Deno.readFile(tree.output));
  assertEquals(indexOfBytes(binary, KEY.modulus), 0x5123);
  assertStringIncludes(
    r.stdout,
    `holds the modulus of ${KEY_FILE} (${KEY.fingerprint}) at 0x5123; MAIN_APP_OFFSET 0x3c000`,
  );
  assertStringIncludes(r.stderr, '- #define MODULUS "\\xce\\x4a');
  assertStringIncludes(r.stderr, "  kept the original as config.h.orig");
  assertStringIncludes(
    await Deno.readTextFile(join(dir.path, "dist", "bootloader-build.log")),
    "Create yaota8266.bin",
  );
});

Deno.test("build-bootloader --runtime native takes the settings and the public key from ota.config.json, idempotently", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path, false);
  await Deno.mkdir(join(dir.path, "keys"));
  const pem = forge.pki.publicKeyToPem(forge.pki.privateKeyFromPem(vectorText("test-key-512.pem")));
  await Deno.writeTextFile(join(dir.path, "keys", "pub.key"), pem);
  await Deno.writeTextFile(
    join(dir.path, "ota.config.json"),
    JSON.stringify({
      yaota8266: "yaota8266",
      runtime: "native",
      appOffset: "0x40000",
      bootloader: {
        baudRate: 74880,
        pktWaitMs: 5000,
        idleRebootMs: 120000,
        gpioMask: 0x10,
        gpioWaitMs: 1000,
      },
    }),
  );
  const dockerLog = join(dir.path, "docker.log");
  const first = await runTaskFile("build_bootloader", [], {
    cwd: dir.path,
    env: buildEnv(dockerLog),
  });
  assertEquals(first.code, 0, first.stderr);
  assertEquals(await dockerCalls(dockerLog), []);
  const configH = await Deno.readTextFile(tree.configH);
  for (
    const line of [
      "#define MAIN_APP_OFFSET 0x40000",
      "#define BAUD_RATE 74880",
      `#define MODULUS ${modulusCString(KEY.modulus)}`,
      "#define PKT_WAIT_MS 5000",
      "#define IDLE_REBOOT_MS 120000",
      "#define GPIO_MASK 0x10",
      "#define GPIO_WAIT_MS 1000",
    ]
  ) assertStringIncludes(configH, `\n${line}\n`);
  // There was no config.h, so there is no original to keep.
  assertEquals(await Deno.stat(`${tree.configH}.orig`).catch(() => "absent"), "absent");
  assertStringIncludes(
    first.stderr,
    `key ${join(dir.path, "keys", "pub.key")} (512-bit, ${KEY.fingerprint})`,
  );
  const mtime = (await Deno.stat(tree.configH)).mtime;
  const second = await runTaskFile("build_bootloader", [], {
    cwd: dir.path,
    env: buildEnv(dockerLog),
  });
  assertEquals(second.code, 0, second.stderr);
  assertStringIncludes(second.stderr, "config.h: up to date");
  assertStringIncludes(first.stderr, "$ make clean\n");
  assertEquals(second.stderr.includes("make clean"), false, "config.h did not change");
  assertEquals((await Deno.stat(tree.configH)).mtime, mtime);
  assertEquals(await Deno.readTextFile(tree.configH), configH);
});

Deno.test("build-bootloader keeps config.h.orig once: a second key does not overwrite it", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const env = buildEnv(join(dir.path, "docker.log"));
  const args = ["--yaota8266", tree.root, "--runtime", "native"];
  assertEquals(
    (await runTaskFile("build_bootloader", [...args, "--key", KEY_FILE], { cwd: dir.path, env }))
      .code,
    0,
  );
  const other = await runTaskFile("build_bootloader", [
    ...args,
    "--key",
    join(VECTORS, "test-key-2048.pem"),
  ], { cwd: dir.path, env });
  assertEquals(other.code, 0, other.stderr);
  assertEquals(await Deno.readTextFile(`${tree.configH}.orig`), YAOTA_CONFIG_EXAMPLE);
  const key2048 = parsePublicKey(vectorText("test-key-2048.pem"));
  assertEquals(modulusFromConfigH(await Deno.readTextFile(tree.configH)), key2048.modulus);
});

Deno.test("build-bootloader refuses a yaota8266.bin that lacks the key's modulus", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const dist = join(dir.path, "dist");
  await Deno.mkdir(dist);
  await Deno.writeTextFile(join(dist, "yaota8266.bin"), "an older build");
  const r = await runTaskFile("build_bootloader", [
    "--yaota8266",
    tree.root,
    "--key",
    KEY_FILE,
    "--runtime",
    "native",
  ], {
    cwd: dir.path,
    env: buildEnv(join(dir.path, "docker.log"), { FAKE_YAOTA_WRONG_KEY: "1" }),
  });
  assertEquals(r.code, 3); // an image refused (lib/exit_codes.ts)
  assertStringIncludes(
    r.stderr,
    `error: ${tree.output} is not safe to flash: it does not contain the modulus of ${KEY_FILE} (${KEY.fingerprint}): it was built for another key`,
  );
  assertEquals(await Deno.stat(join(dist, "yaota8266.bin")).catch(() => "absent"), "absent");
});

Deno.test("build-bootloader --dry-run prints the change and the command and changes nothing", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const dockerLog = join(dir.path, "docker.log");
  const r = await runTaskFile("build_bootloader", [
    "--yaota8266",
    tree.root,
    "--key",
    KEY_FILE,
    "--dry-run",
  ], {
    cwd: dir.path,
    env: buildEnv(dockerLog),
  });
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "would write config.h\n");
  assertStringIncludes(
    r.stdout,
    `    + #define MODULUS ${modulusCString(KEY.modulus).slice(0, 60)}`,
  );
  assertStringIncludes(r.stdout, "  would keep the original as config.h.orig\n");
  assertStringIncludes(
    r.stdout,
    `would run: docker run --rm -v ${tree.root}:${tree.root} -w ${tree.root} -u ${userArg()} ${IMAGE} make clean\n` +
      `would run: docker run --rm -v ${tree.root}:${tree.root} -w ${tree.root} -u ${userArg()} ${IMAGE} make\n`,
  );
  assertEquals(await dockerCalls(dockerLog), []);
  assertEquals(await Deno.readTextFile(tree.configH), YAOTA_CONFIG_EXAMPLE);
  assertEquals(await Deno.stat(join(dir.path, "dist")).catch(() => "absent"), "absent");
});

Deno.test("build-bootloader names a missing tree, a missing key, a stopped daemon and a make failure", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const dockerLog = join(dir.path, "docker.log");
  const noTree = await runTaskFile("build_bootloader", [
    "--yaota8266",
    "nowhere",
    "--key",
    KEY_FILE,
  ], { cwd: dir.path, env: buildEnv(dockerLog) });
  assertEquals(noTree.code, 1);
  assertStringIncludes(
    noTree.stderr,
    `error: no yaota8266 tree at '${join(dir.path, "nowhere")}'. Clone it`,
  );
  const notTree = await runTaskFile("build_bootloader", ["--yaota8266", ".", "--key", KEY_FILE], {
    cwd: dir.path,
    env: buildEnv(dockerLog),
  });
  assertEquals(notTree.code, 1);
  assertStringIncludes(
    notTree.stderr,
    `error: '${dir.path}' is not a yaota8266 tree: it needs a Makefile and boot8266/`,
  );
  const noKey = await runTaskFile("build_bootloader", ["--yaota8266", tree.root], {
    cwd: dir.path,
    env: buildEnv(dockerLog),
  });
  assertEquals(noKey.code, 1);
  assertStringIncludes(
    noKey.stderr,
    `error: no key at '${join(dir.path, "keys", "priv.key")}'. Create one with 'deno task keygen'`,
  );
  const down = await runTaskFile(
    "build_bootloader",
    ["--yaota8266", tree.root, "--key", KEY_FILE],
    {
      cwd: dir.path,
      env: buildEnv(dockerLog, { DOCKER_STANDIN_DAEMON: "down" }),
    },
  );
  assertEquals(down.code, 1);
  assertStringIncludes(down.stderr, "error: the docker daemon is not running");
  assertEquals(
    await Deno.readTextFile(tree.configH),
    YAOTA_CONFIG_EXAMPLE,
    "checked before changing anything",
  );
  const broken = await runTaskFile("build_bootloader", [
    "--yaota8266",
    tree.root,
    "--key",
    KEY_FILE,
  ], {
    cwd: dir.path,
    env: buildEnv(dockerLog, { FAKE_MAKE_FAIL: "1" }),
  });
  assertEquals(broken.code, 1);
  assertStringIncludes(
    broken.stderr,
    `error: 'make' failed with exit code 2 in docker image ${IMAGE}.\nIts last 30 lines:\n`,
  );
  assertStringIncludes(
    broken.stderr,
    `The full output is in ${join(dir.path, "dist", "bootloader-build.log")}.`,
  );
});

// ---- the software trigger and the build fixes (issue 17) ----

const RTC_MAGIC = new TextEncoder().encode("yaotaota");
const RTC_LOG = new TextEncoder().encode("magic word in RTC memory");
const CHANGED_FILES = [
  "boot8266/boot8266.c",
  "boot8266/etshal.h",
  "ota-server/Makefile",
  "ota-server/ota.ld",
];

async function readTree(root: string, names: string[]): Promise<Record<string, string>> {
  return Object.fromEntries(
    await Promise.all(names.map(async (n) => [n, await Deno.readTextFile(join(root, n))])),
  );
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

function buildNative(root: string, cwd: string, extra: string[] = [], env = {}) {
  return runTaskFile(
    "build_bootloader",
    ["--yaota8266", root, "--key", KEY_FILE, "--runtime", "native", ...extra],
    { cwd, env: buildEnv(join(cwd, "docker.log"), env) },
  );
}

Deno.test("planRtcTrigger() adds the check before the GPIO check, finds any check, and takes ours out again", async () => {
  await using dir = await tempDir();
  const upstream = await makeFakeYaotaTree(dir.path, true, { shape: "upstream" });
  const source = upstream.original["boot8266/boot8266.c"]!;
  const template = Deno.readTextFileSync(join(ROOT, "templates", "rtc_trigger.c"));
  const added = planRtcTrigger(source, template, true);
  assert(added.status === "add");
  assertStringIncludes(added.text, "bool ota = check_rtc_trigger() || check_buttons();");
  assert(
    added.text.indexOf("static bool check_rtc_trigger(void)") < added.text.indexOf("void start()"),
  );
  assertEquals(hasRtcTrigger(source), false);
  assertEquals(hasRtcTrigger(added.text), true);
  assertEquals(planRtcTrigger(added.text, template, true), { status: "present", ours: true });
  const removed = planRtcTrigger(added.text, template, false);
  assert(removed.status === "remove");
  assertEquals(removed.text, source);
  // A check someone else wrote (upper-case constants, its own names) counts as one.
  await using other = await tempDir();
  const patched = await makeFakeYaotaTree(other.path);
  const theirs = patched.original["boot8266/boot8266.c"]!;
  assertEquals(planRtcTrigger(theirs, template, true), { status: "present", ours: false });
  assertEquals(planRtcTrigger(theirs, template, false), { status: "present", ours: false });
  // Commented out, it is no check.
  assertEquals(hasRtcTrigger(`// if (w == 0x746f6179 && v == 0x61746f61)\n${source}`), false);
  assertEquals(
    planRtcTrigger(source.replace("bool ota = check_buttons();", "int ota = 0;"), template, true),
    {
      status: "unrecognised",
      missing: "the mode check 'bool ota = check_buttons();'",
    },
  );
});

Deno.test("build-bootloader --dry-run on an upstream-shaped tree lists the RTC edit and every build fix, and changes nothing", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path, true, { shape: "upstream" });
  const r = await runTaskFile("build_bootloader", [
    "--yaota8266",
    tree.root,
    "--key",
    KEY_FILE,
    "--dry-run",
  ], { cwd: dir.path, env: buildEnv(join(dir.path, "docker.log")) });
  assertEquals(r.code, 0, r.stderr);
  for (
    const line of [
      "would write boot8266/boot8266.c: adds the RTC trigger: OTA mode when RTC memory holds 'yaotaota' (ota.start())\n",
      "    - bool ota = check_buttons();\n    + bool ota = check_rtc_trigger() || check_buttons();\n",
      "  would keep the original as boot8266/boot8266.c.orig\n",
      "would write boot8266/etshal.h: declares uart_div_modify() without parameters, " +
      "which the vendor SDK 2.x headers declare with them (gcc: conflicting types): prototypes that match\n",
      "would write ota-server/Makefile: axTLS is archived with $(AR), which it leaves at make's default " +
      "'ar' (the host's): use xtensa-lx106-elf-ar\n    + AR = xtensa-lx106-elf-ar\n",
      "would write ota-server/ota.ld: libnet80211.a and libwpa.a of vendor SDKs from 2.1 on overflow IRAM",
      "    + *libnet80211.a:(.literal.* .text.*)\n    + *libwpa.a:(.literal.* .text.*)\n",
      "software trigger: boot8266 enters OTA mode when RTC memory holds 'yaotaota'",
    ]
  ) assertStringIncludes(r.stdout, line);
  assertEquals(await readTree(tree.root, CHANGED_FILES), pick(tree.original, CHANGED_FILES));
  for (const name of [...CHANGED_FILES, "config.h"]) {
    assertEquals(await exists(join(tree.root, `${name}.orig`)), false, name);
  }
});

function pick(all: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, all[n]!]));
}

Deno.test("build-bootloader --dry-run on a tree that has the trigger and the fixes lists no edit of them", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const r = await runTaskFile("build_bootloader", [
    "--yaota8266",
    tree.root,
    "--key",
    KEY_FILE,
    "--dry-run",
  ], { cwd: dir.path, env: buildEnv(join(dir.path, "docker.log")) });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.match(/^would write .*$/gm), ["would write config.h"]);
  for (
    const line of [
      "boot8266/boot8266.c: has the RTC trigger\n",
      "boot8266/etshal.h: prototypes match the vendor SDK's\n",
      "ota-server/Makefile: sets AR for axTLS\n",
      "ota-server/ota.ld: puts the vendor SDK's Wi-Fi libraries in irom\n",
    ]
  ) assertStringIncludes(r.stdout, line);
});

Deno.test("build-bootloader on an upstream-shaped tree builds the trigger in, keeps each original once, and a second run changes nothing", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path, true, { shape: "upstream" });
  // As the tree is, its build fails the way a current toolchain does.
  const unfixed = await new Deno.Command("make", {
    cwd: tree.root,
    env: buildEnv(join(dir.path, "docker.log")),
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(unfixed.code, 2);
  assertStringIncludes(
    new TextDecoder().decode(unfixed.stderr),
    "boot8266/etshal.h: error: conflicting types for 'uart_div_modify'",
  );

  const first = await buildNative(tree.root, dir.path);
  assertEquals(first.code, 0, first.stderr);
  const binary = await Deno.readFile(join(dir.path, "dist", "yaota8266.bin"));
  // The compiled check: its two words side by side in boot8266's sector, and its log line.
  const magicAt = indexOfBytes(binary, RTC_MAGIC);
  assert(magicAt > 0 && magicAt < 0x1000, `yaotaota at ${magicAt}`);
  assert(indexOfBytes(binary.subarray(0, 0x1000), RTC_LOG) > 0, "the log line");
  assertEquals(indexOfBytes(binary, KEY.modulus), 0x5123);
  assertStringIncludes(first.stdout, "software trigger: boot8266 enters OTA mode when RTC memory");
  for (const name of CHANGED_FILES) {
    assertStringIncludes(first.stderr, `  kept the original as ${name}.orig\n`);
    assertEquals(await Deno.readTextFile(join(tree.root, `${name}.orig`)), tree.original[name]);
  }
  const after = await readTree(tree.root, [...CHANGED_FILES, "config.h"]);
  assertStringIncludes(
    after["ota-server/Makefile"]!,
    "\nLD = xtensa-lx106-elf-ld\nAR = xtensa-lx106-elf-ar\n",
  );

  const second = await buildNative(tree.root, dir.path);
  assertEquals(second.code, 0, second.stderr);
  assertEquals(second.stderr.match(/^wrote .*$/gm), null, second.stderr);
  assertStringIncludes(
    second.stderr,
    "boot8266/boot8266.c: has the RTC trigger (added by build-bootloader)\n",
  );
  assertEquals(second.stderr.includes("make clean"), false, "nothing changed");
  assertEquals(await readTree(tree.root, [...CHANGED_FILES, "config.h"]), after);
  for (const name of CHANGED_FILES) {
    assertEquals(await Deno.readTextFile(join(tree.root, `${name}.orig`)), tree.original[name]);
  }
  assertEquals(await Deno.readFile(join(dir.path, "dist", "yaota8266.bin")), binary);
});

Deno.test("build-bootloader --no-rtc-trigger builds upstream's behaviour, takes its own check out, and refuses to take out another", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path, true, { shape: "upstream" });
  const plain = await buildNative(tree.root, dir.path, ["--no-rtc-trigger"]);
  assertEquals(plain.code, 0, plain.stderr);
  const output = join(dir.path, "dist", "yaota8266.bin");
  assertEquals(indexOfBytes(await Deno.readFile(output), RTC_MAGIC), -1);
  assertEquals(indexOfBytes(await Deno.readFile(output), RTC_LOG), -1);
  assertStringIncludes(
    plain.stdout,
    "no software trigger (--no-rtc-trigger): OTA mode only with the BOOT button within 3 s of reset; " +
      "'trigger' and 'deploy --trigger' will not work on a board flashed with it\n",
  );
  assertEquals(await Deno.readTextFile(tree.boot8266C), tree.original["boot8266/boot8266.c"]);
  assertEquals(await exists(`${tree.boot8266C}.orig`), false);
  // The fixes are made all the same.
  assertEquals(await exists(join(tree.root, "boot8266/etshal.h.orig")), true);

  assertEquals((await buildNative(tree.root, dir.path)).code, 0);
  assert(indexOfBytes(await Deno.readFile(output), RTC_MAGIC) > 0);
  const again = await buildNative(tree.root, dir.path, ["--no-rtc-trigger"]);
  assertEquals(again.code, 0, again.stderr);
  assertStringIncludes(
    again.stderr,
    "wrote boot8266/boot8266.c: takes out the RTC trigger build-bootloader added (--no-rtc-trigger)\n",
  );
  assertEquals(await Deno.readTextFile(tree.boot8266C), tree.original["boot8266/boot8266.c"]);
  assertEquals(indexOfBytes(await Deno.readFile(output), RTC_MAGIC), -1);

  await using other = await tempDir();
  const patched = await makeFakeYaotaTree(other.path);
  const refused = await buildNative(patched.root, other.path, ["--no-rtc-trigger"]);
  assertEquals(refused.code, 1);
  assertStringIncludes(
    refused.stderr,
    `error: --no-rtc-trigger: boot8266/boot8266.c in ${patched.root} already enters OTA mode on the ` +
      "RTC magic, with a check this tool did not add, so it cannot take it out.",
  );
  assertEquals(await Deno.readTextFile(patched.configH), YAOTA_CONFIG_EXAMPLE, "nothing changed");
});

Deno.test("build-bootloader names what a tree lacks, and a missing axTLS submodule with its git line, before any change", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path, true, { shape: "upstream", axtls: false });
  const noAxtls = await buildNative(tree.root, dir.path);
  assertEquals(noAxtls.code, 1);
  assertStringIncludes(
    noAxtls.stderr,
    `error: ota-server/lib/axtls in ${tree.root} is empty: the axTLS submodule the OTA server is ` +
      `built with was not checked out. Run: git -C ${tree.root} submodule update --init ota-server/lib/axtls\n`,
  );
  await Deno.writeTextFile(join(tree.root, "ota-server/lib/axtls/Makefile"), "# fake axTLS\n");
  await Deno.writeTextFile(
    tree.boot8266C,
    tree.original["boot8266/boot8266.c"]!.replace(
      "bool ota = check_buttons();",
      "bool ota = false;",
    ),
  );
  await Deno.writeTextFile(join(tree.root, "ota-server/ota.ld"), "MEMORY\n{\n}\n");
  const odd = await buildNative(tree.root, dir.path);
  assertEquals(odd.code, 1);
  assertStringIncludes(
    odd.stderr,
    `error: ${tree.root} differs from the yaota8266 tree build-bootloader knows how to prepare: ` +
      "boot8266/boot8266.c has no RTC trigger and lacks the mode check 'bool ota = check_buttons();', " +
      "where the check goes: add it by hand (templates/rtc_trigger.c holds it), or pass " +
      "--no-rtc-trigger to build without the software trigger; ota-server/ota.ld lacks the " +
      "'*(.irom0.literal …)' line of its .irom0.text section, in front of which libnet80211.a and " +
      "libwpa.a go to irom. Nothing was changed.",
  );
  assertEquals(await Deno.readTextFile(tree.configH), YAOTA_CONFIG_EXAMPLE);
  for (const name of [...CHANGED_FILES, "config.h"]) {
    assertEquals(await exists(join(tree.root, `${name}.orig`)), false, name);
  }
});

Deno.test("build-bootloader refuses an app offset inside yaota8266 before touching the tree", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path, true, { shape: "upstream" });
  const dockerLog = join(dir.path, "docker.log");
  await Deno.writeTextFile(
    join(dir.path, "ota.config.json"),
    JSON.stringify({ appOffset: "0x1000" }),
  );
  const low = await runTaskFile("build_bootloader", ["--yaota8266", tree.root, "--key", KEY_FILE], {
    cwd: dir.path,
    env: buildEnv(dockerLog),
  });
  assertEquals(low.code, 1);
  assertStringIncludes(
    low.stderr,
    `error: ${
      join(dir.path, "ota.config.json")
    }: appOffset: expected a 4 KiB-aligned flash offset from 0x10000 to 0xbb000, ` +
      'such as 0x3c000, got "0x1000" (below 0x10000, where yaota8266 itself lies)',
  );
  await Deno.remove(join(dir.path, "ota.config.json"));
  const flag = await runTaskFile("build_bootloader", [
    "--yaota8266",
    tree.root,
    "--key",
    KEY_FILE,
    "--app-offset",
    "0x20000",
  ], { cwd: dir.path, env: buildEnv(dockerLog) });
  assertEquals(flag.code, 2);
  assertStringIncludes(
    flag.stderr,
    "--app-offset: MAIN_APP_OFFSET 0x20000 is inside yaota8266 itself: ota-server/ota.ld links the " +
      "OTA server's code at 0x9000–0x3c000, so the firmware would overwrite it. Use 0x3c000 or more",
  );
  assertEquals(await dockerCalls(dockerLog), []);
  assertEquals(await Deno.readTextFile(tree.configH), YAOTA_CONFIG_EXAMPLE);
  assertEquals(await readTree(tree.root, CHANGED_FILES), pick(tree.original, CHANGED_FILES));
});

Deno.test("planAxtlsAr(), planEtshal() and planOtaLd() fix what is missing, leave what is there, and name what they cannot find", async () => {
  await using dir = await tempDir();
  const upstream = (await makeFakeYaotaTree(dir.path, true, { shape: "upstream" })).original;
  const template = Deno.readTextFileSync(join(ROOT, "templates", "etshal.h"));
  const ar = planAxtlsAr(upstream["ota-server/Makefile"]);
  assert(ar.status === "fix");
  assertEquals(planAxtlsAr(ar.text), { status: "ok", note: "sets AR for axTLS" });
  assertEquals(planAxtlsAr("CC = gcc\nall:\n\tcc x.c\n"), {
    status: "ok",
    note: "does not pass AR to axTLS",
  });
  assertEquals(planAxtlsAr('all:\n\tmake AR="$(AR)"\n').status, "unrecognised");
  assertEquals(planAxtlsAr(undefined), { status: "unrecognised", missing: "" });

  const etshal = planEtshal(upstream["boot8266/etshal.h"], template);
  assert(etshal.status === "fix");
  assertEquals(etshal.text, template);
  assertEquals(planEtshal(template, template).status, "ok");
  // Missing altogether: boot8266.c and the OTA server include it, so it is written.
  assertEquals(planEtshal(undefined, template).status, "fix");

  const ld = planOtaLd(upstream["ota-server/ota.ld"]);
  assert(ld.status === "fix");
  assert(
    ld.text.indexOf("*libnet80211.a:(.literal.* .text.*)") < ld.text.indexOf("*(.irom0.literal"),
  );
  assertEquals(planOtaLd(ld.text).status, "ok");
  assertEquals(planOtaLd("SECTIONS { }\n").status, "unrecognised");
});

Deno.test("build-bootloader gives the OTA server its own ROM script without uart_div_modify, so that binutils 2.40 links it", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path, true, { shape: "upstream" });
  const dry = await buildNative(tree.root, dir.path, ["--dry-run"]);
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(
    dry.stdout,
    "dangerous relocation: call0: call target out of range): its own copy, " +
      "ota-server/eagle.rom.addr.v6.ld, without that line",
  );
  assertStringIncludes(dry.stdout, "would write ota-server/eagle.rom.addr.v6.ld");
  assertEquals(await exists(join(tree.root, "ota-server", "eagle.rom.addr.v6.ld")), false);

  const first = await buildNative(tree.root, dir.path);
  assertEquals(first.code, 0, first.stderr);
  const own = await Deno.readTextFile(join(tree.root, "ota-server", "eagle.rom.addr.v6.ld"));
  assertEquals(/PROVIDE \( uart_div_modify/.test(own), false);
  assertStringIncludes(own, "PROVIDE ( SPIRead = 0x40004b1c );\n");
  const ld = await Deno.readTextFile(join(tree.root, "ota-server", "ota.ld"));
  assertStringIncludes(ld, '\nINCLUDE "eagle.rom.addr.v6.ld"\n');
  assertEquals(
    await Deno.readTextFile(join(tree.root, "boot8266", "eagle.rom.addr.v6.ld")),
    tree.original["boot8266/eagle.rom.addr.v6.ld"],
    "boot8266 keeps its own script",
  );
  assertEquals(
    await Deno.readTextFile(join(tree.root, "ota-server", "ota.ld.orig")),
    tree.original["ota-server/ota.ld"],
  );

  const second = await buildNative(tree.root, dir.path);
  assertEquals(second.code, 0, second.stderr);
  assertStringIncludes(second.stderr, "ota-server/ota.ld: links with its own ROM address script\n");
  assertEquals(second.stderr.match(/^wrote .*$/gm), null, second.stderr);
});
