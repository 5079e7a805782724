/**
 * Where the configuration comes from (`--config`, `./ota.config.json`, the user's
 * `~/.config/yaota/config.json`), the `YAOTA_*` environment defaults between the flags
 * and the file, and `ota.config.schema.json` agreeing with the validator.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "../_assert.ts";
import { ROOT, runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import {
  configCandidates,
  configFromEnv,
  ENV_DEFAULTS,
  loadConfig,
  parseConfig,
} from "../../lib/config/config.ts";
import { ConfigError } from "../../lib/errors.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { startVirtualDevice } from "../../lib/sim/virtual_device.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
// A test-only package stays out of deno.json, so that running yaota never fetches it.
// deno-lint-ignore no-import-prefix
import { Ajv2020 } from "npm:ajv@8.20.0/dist/2020.js";

Deno.test("configCandidates(): --config alone, else YAOTA_CONFIG, else ./ota.config.json then the user's", () => {
  const env = { HOME: "/home/ada", XDG_CONFIG_HOME: "/xdg" };
  assertEquals(configCandidates("my.json", "/p", { ...env, YAOTA_CONFIG: "/e.json" }, "linux"), [
    { path: "/p/my.json", required: true, from: "--config" },
  ]);
  assertEquals(configCandidates(undefined, "/p", { ...env, YAOTA_CONFIG: "e.json" }, "linux"), [
    { path: "/p/e.json", required: true, from: "YAOTA_CONFIG" },
  ]);
  assertEquals(configCandidates(undefined, "/p", env, "linux").map((c) => c.path), [
    "/p/ota.config.json",
    "/xdg/yaota/config.json",
  ]);
  assertEquals(
    configCandidates(undefined, "/p", { HOME: "/home/ada" }, "darwin")[1]?.path,
    [
      "/home/ada/.config/yaota/config.json",
    ][0],
  );
  assertEquals(
    configCandidates(undefined, "/p", { APPDATA: "/appdata", HOME: "/h" }, "windows")[1]?.path,
    "/appdata/yaota/config.json",
  );
  assertEquals(configCandidates(undefined, "/p", {}, "linux").length, 1);
});

/** A project folder and a user config folder, each with a config file if given. */
async function setup(project?: unknown, user?: unknown) {
  const dir = await tempDir();
  await Deno.mkdir(`${dir.path}/project`);
  await Deno.mkdir(`${dir.path}/xdg/yaota`, { recursive: true });
  if (project) {
    await Deno.writeTextFile(`${dir.path}/project/ota.config.json`, JSON.stringify(project));
  }
  if (user) await Deno.writeTextFile(`${dir.path}/xdg/yaota/config.json`, JSON.stringify(user));
  return { dir, cwd: `${dir.path}/project`, env: { XDG_CONFIG_HOME: `${dir.path}/xdg` } };
}

Deno.test("loadConfig() uses ./ota.config.json if there, else the user's config, paths relative to it", async () => {
  const both = await setup({ ip: "10.0.0.1" }, { ip: "10.0.0.2", key: "k/priv.key" });
  await using _ = both.dir;
  assertEquals(await loadConfig(undefined, both.cwd, both.env), {
    ip: "10.0.0.1",
    path: `${both.cwd}/ota.config.json`,
  });
  await Deno.remove(`${both.cwd}/ota.config.json`);
  const user = `${both.dir.path}/xdg/yaota/config.json`;
  assertEquals(await loadConfig(undefined, both.cwd, both.env), {
    ip: "10.0.0.2",
    key: `${both.dir.path}/xdg/yaota/k/priv.key`,
    path: user,
  });
  await Deno.remove(user);
  assertEquals(await loadConfig(undefined, both.cwd, both.env), {});
  await assertRejects(
    () => loadConfig("missing.json", both.cwd, both.env),
    ConfigError,
    `cannot read the configuration file '${both.cwd}/missing.json'`,
  );
  await assertRejects(
    () => loadConfig(undefined, both.cwd, { YAOTA_CONFIG: "gone.json" }),
    ConfigError,
    `cannot read the configuration file '${both.cwd}/gone.json' (named by YAOTA_CONFIG)`,
  );
});

Deno.test("loadConfig() refuses a bad user config naming its file, like the project's", async () => {
  const s = await setup(undefined, { ip: "10.0.0.2", prot: 8266 });
  await using _ = s.dir;
  await assertRejects(
    () => loadConfig(undefined, s.cwd, s.env),
    ConfigError,
    `${s.dir.path}/xdg/yaota/config.json: unknown key 'prot'`,
  );
});

Deno.test("configFromEnv() reads the YAOTA_* defaults with the flags' own checks, naming the variable", () => {
  assertEquals(
    configFromEnv({
      YAOTA_IP: "192.168.1.20",
      YAOTA_PORT: "8267",
      YAOTA_KEY: "keys/k.pem",
      YAOTA_APP_OFFSET: "0x40000",
      YAOTA_FLASH_SIZE: "4M",
      OTHER: "x",
    }, "/p"),
    {
      ip: "192.168.1.20",
      port: 8267,
      key: "/p/keys/k.pem",
      appOffset: 0x40000,
      flashSize: 0x400000,
    },
  );
  assertEquals(configFromEnv({ YAOTA_IP: " ", YAOTA_PORT: "" }, "/p"), {});
  assertThrows(
    () => configFromEnv({ YAOTA_PORT: "x" }, "/p"),
    ConfigError,
    "YAOTA_PORT (environment): expected a port number from 1 to 65535, got 'x'",
  );
  assertThrows(
    () => configFromEnv({ YAOTA_APP_OFFSET: "0x3c001" }, "/p"),
    ConfigError,
    "YAOTA_APP_OFFSET (environment): expected a 4 KiB-aligned flash offset",
  );
  assertThrows(
    () => configFromEnv({ YAOTA_FLASH_SIZE: "3M" }, "/p"),
    ConfigError,
    "YAOTA_FLASH_SIZE (environment): expected a flash size of 512K, 1M, 2M, 4M, 8M or 16M, got '3M'",
  );
  assertEquals(Object.keys(ENV_DEFAULTS).sort(), [
    "YAOTA_APP_OFFSET",
    "YAOTA_FLASH_SIZE",
    "YAOTA_IP",
    "YAOTA_KEY",
    "YAOTA_PORT",
  ]);
});

Deno.test("inspect: --app-offset beats YAOTA_APP_OFFSET, which beats the config's, which beats 0x3c000", async () => {
  const s = await setup({ appOffset: "0x3c000", flashSize: "1M" });
  await using _ = s.dir;
  const image = `${s.cwd}/fw.bin`;
  await Deno.writeFile(image, makeSampleFirmware({ appOffset: 0x40000 }));
  const inspect = async (args: string[], env: Record<string, string> = {}) => {
    const r = await runTaskFile("inspect", [image, "--json", ...args], {
      cwd: s.cwd,
      env: { ...s.env, ...env },
    });
    const json = JSON.parse(r.stdout);
    return [r.code, json.appOffset, json.flashSize];
  };
  assertEquals(await inspect([]), [3, "0x3c000", 0x100000]); // config: linked for another offset
  assertEquals(await inspect([], { YAOTA_APP_OFFSET: "0x40000", YAOTA_FLASH_SIZE: "4M" }), [
    0,
    "0x40000",
    0x400000,
  ]);
  assertEquals(await inspect(["--app-offset", "0x3c000"], { YAOTA_APP_OFFSET: "0x40000" }), [
    3,
    "0x3c000",
    0x100000,
  ]);
  await Deno.remove(`${s.cwd}/ota.config.json`);
  assertEquals(await inspect([]), [3, "0x3c000", 0x100000]); // the built-in default
  const bad = await runTaskFile("inspect", [image], {
    cwd: s.cwd,
    env: { ...s.env, YAOTA_APP_OFFSET: "0x3c001" },
  });
  assertEquals(bad.code, 1);
  assert(bad.stderr.startsWith("error: YAOTA_APP_OFFSET (environment): expected"), bad.stderr);
});

Deno.test("deploy takes the device from YAOTA_IP/YAOTA_PORT/YAOTA_KEY, or from the user's config, with no flags", async () => {
  const pem = Deno.readTextFileSync(`${VECTORS}test-key-512.pem`);
  // A device boots the image it takes and leaves OTA mode: one each.
  const device = () =>
    startVirtualDevice({
      modulus: parsePrivateKey(pem).modulus,
      flash: new Uint8Array(0x100000).fill(0xff),
      profile: PROFILES.instant,
      link: { delayMs: 1 },
    });
  await using a = await device();
  await using b = await device();
  await using c = await device();
  const s = await setup();
  await using _ = s.dir;
  await Deno.writeTextFile(`${s.cwd}/priv.key`, pem, { mode: 0o600 });
  await Deno.writeFile(`${s.cwd}/fw.bin`, makeSampleFirmware({ size: 32 * 1024 }));
  const deploy = (env: Record<string, string>, ...flags: string[]) =>
    runTaskFile("deploy", ["fw.bin", "--json", "--boot-check-window", "1", ...flags], {
      cwd: s.cwd,
      env: { ...s.env, ...env },
    });
  const env = { YAOTA_IP: "127.0.0.1", YAOTA_PORT: String(a.port), YAOTA_KEY: "priv.key" };
  const fromEnv = await deploy(env);
  assertEquals(fromEnv.code, 0, fromEnv.stderr);
  assertEquals(JSON.parse(fromEnv.stdout).ok, true);

  // A flag beats the variable: YAOTA_PORT names nothing that answers, --port does.
  const flag = await deploy({ ...env, YAOTA_PORT: "9" }, "--port", String(b.port));
  assertEquals(flag.code, 0, flag.stderr);

  // The same from ~/.config/yaota/config.json; the key path is relative to that file.
  await Deno.copyFile(`${s.cwd}/priv.key`, `${s.dir.path}/xdg/yaota/priv.key`);
  await Deno.writeTextFile(
    `${s.dir.path}/xdg/yaota/config.json`,
    JSON.stringify({ ip: "127.0.0.1", port: c.port, key: "priv.key" }),
  );
  const fromUser = await deploy({});
  assertEquals(fromUser.code, 0, fromUser.stderr);
  for (const d of [a, b, c]) assert(d.events.some((e) => e.type === "boot"), "each booted it");
});

Deno.test("the README's table lists every YAOTA_* default with its config key", () => {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  for (const [variable, key] of Object.entries(ENV_DEFAULTS)) {
    assert(
      new RegExp(`^\\| \`${variable}\` +\\| \`${key}\` +\\|`, "m").test(readme),
      `${variable} → ${key}`,
    );
  }
  assert(readme.includes("| `YAOTA_CONFIG` "), "YAOTA_CONFIG");
});

// ---- the JSON Schema ---------------------------------------------------------------------

const SCHEMA = JSON.parse(Deno.readTextFileSync(`${ROOT}ota.config.schema.json`));
const ajv = new Ajv2020({ strict: true, allErrors: true });
const schemaAccepts = ajv.compile(SCHEMA);

function validatorAccepts(value: unknown): boolean {
  try {
    parseConfig(value, "/p");
    return true;
  } catch (e) {
    if (e instanceof ConfigError) return false;
    throw e;
  }
}

/** The keys the validator knows at `path`, from its own "unknown key" message. */
function validatorKeys(make: (unknownKey: Record<string, unknown>) => unknown): string[] {
  try {
    parseConfig(make({ zzz: 1 }), "/p");
  } catch (e) {
    const known = /\(known: ([^)]*)\)/.exec((e as Error).message)?.[1];
    if (known) return known.split(", ").sort();
    throw e;
  }
  throw new Error("the validator took an unknown key");
}

Deno.test("ota.config.schema.json names the validator's keys at every level, and no others", () => {
  const props = (node: { properties: Record<string, unknown> }) =>
    Object.keys(node.properties).sort();
  const p = SCHEMA.properties;
  assertEquals(props(SCHEMA), validatorKeys((x) => x));
  assertEquals(props(p.bootloader), validatorKeys((x) => ({ bootloader: x })));
  assertEquals(props(p.serial), validatorKeys((x) => ({ serial: x })));
  assertEquals(
    props(p.devices.items),
    validatorKeys((x) => ({ devices: [{ name: "a", ip: "b", ...x }] })),
  );
  assertEquals(p.devices.items.required, ["name", "ip"]);
  for (const node of [SCHEMA, p.bootloader, p.serial, p.devices.items]) {
    assertEquals(node.additionalProperties, false);
  }
});

/** The README's example configuration: the JSON block with a "$schema". */
function readmeExample(): unknown {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  const block = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!)
    .find((b) => b.includes('"$schema"'));
  assert(block, "the README shows an example with $schema");
  return JSON.parse(block);
}

const FULL = {
  $schema: "./ota.config.schema.json",
  micropython: "../micropython",
  modules: ["a.py", "lib/b.py"],
  runtime: "native",
  image: "my/sdk",
  board: "GENERIC",
  appOffset: 0x40000,
  flashSize: "4M",
  key: "keys/priv.key",
  out: "build",
  yaota8266: "../yaota8266",
  bootloader: {
    baudRate: "115200",
    pktWaitMs: 10000,
    idleRebootMs: 60000,
    gpioMask: "0xf035",
    gpioWaitMs: 0,
  },
  ip: "192.168.4.1",
  port: "8266",
  serial: { port: "COM3", baud: 921600 },
  devices: [
    { name: "a", ip: "10.0.0.2", port: 8266, key: "k.pem", passwordEnv: "A_PW", tags: ["t"] },
    { name: "b", ip: "10.0.0.3" },
  ],
};

Deno.test("the README's example and a config with every key validate by the schema and by the validator", () => {
  const example = readmeExample() as Record<string, unknown>;
  assert(String(example.$schema).endsWith("ota.config.schema.json"), "it names the schema");
  for (const [name, config] of [["README example", example], ["every key", FULL]] as const) {
    assert(schemaAccepts(config), `${name}: ${JSON.stringify(schemaAccepts.errors)}`);
    assert(validatorAccepts(config), name);
  }
});

Deno.test("the schema and the validator refuse the same mistakes", () => {
  const bad: [string, unknown][] = [
    ["unknown key", { prot: 8266 }],
    ["unknown runtime", { runtime: "lxc" }],
    ["port 0", { port: 0 }],
    ["port too high", { port: 70000 }],
    ["port as words", { port: "eighty" }],
    ["appOffset not aligned", { appOffset: 0x3c001 }],
    ["appOffset inside yaota8266", { appOffset: 0x1000 }],
    ["appOffset as words", { appOffset: "default" }],
    ["flashSize not a chip", { flashSize: 3145728 }],
    ["empty key path", { key: "" }],
    ["modules not a list", { modules: "a.py" }],
    ["bootloader key unknown", { bootloader: { baud: 9600 } }],
    ["gpioMask too wide", { bootloader: { gpioMask: 0x10000 } }],
    ["serial baud too low", { serial: { baud: 300 } }],
    ["serial unknown key", { serial: { device: "COM3" } }],
    ["device without ip", { devices: [{ name: "a" }] }],
    ["device name empty", { devices: [{ name: "", ip: "b" }] }],
    ["device name only spaces", { devices: [{ name: "  ", ip: "b" }] }],
    ["device tags not a list", { devices: [{ name: "a", ip: "b", tags: "t" }] }],
    ["devices not a list", { devices: { name: "a", ip: "b" } }],
    ["not an object", ["ip"]],
  ];
  for (const [name, config] of bad) {
    assertEquals([schemaAccepts(config), validatorAccepts(config)], [false, false], name);
  }
});
