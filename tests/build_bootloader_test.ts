import { assertEquals, assertStringIncludes, assertThrows } from "./_assert.ts";
import { ROOT, runTaskFile, tempDir, VECTORS, vectorText } from "./_helpers.ts";
import {
  buildEnv,
  dockerCalls,
  makeFakeYaotaTree,
  userArg,
  YAOTA_CONFIG_EXAMPLE,
} from "./fixtures/fake_trees.ts";
import {
  BOOTLOADER_DEFAULTS,
  renderConfigH,
  resolveBootloaderOptions,
} from "../lib/bootloader_build.ts";
import { UsageError } from "../lib/errors.ts";
import { modulusCString, modulusFromConfigH, parsePublicKey } from "../lib/keys.ts";
import { indexOfBytes } from "../lib/_bytes.ts";
import { parseBuildBootloaderArgs } from "../tasks/build_bootloader.ts";
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
      key: "k.pem",
      runtime: "native",
      image: undefined,
      appOffset: 0x40000,
      out: undefined,
      dryRun: false,
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
  assertEquals(resolveBootloaderOptions(flags, {}, dir.path).key, join(dir.path, "keys/priv.key"));
  await Deno.mkdir(join(dir.path, "keys"));
  await Deno.writeTextFile(join(dir.path, "keys/pub.key"), "x");
  assertEquals(resolveBootloaderOptions(flags, {}, dir.path).key, join(dir.path, "keys/pub.key"));
  assertEquals(
    resolveBootloaderOptions(flags, { key: "/k/priv.key" }, dir.path).key,
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
  const run = [
    "run",
    "--rm",
    "-v",
    `${tree.root}:${tree.root}`,
    "-w",
    tree.root,
    "-u",
    userArg(),
    IMAGE,
  ];
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
