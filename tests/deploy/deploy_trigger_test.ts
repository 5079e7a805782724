import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import {
  deployWithTrigger,
  OtaModeTimeoutError,
  type TriggeredDeployRequest,
} from "../../lib/deploy/board_trigger.ts";
import { DeviceNotBackError, UpdateNotAppliedError } from "../../lib/deploy/board_verify.ts";
import { type DeviceProfile, PROFILES } from "../../lib/sim/device_profile.ts";
import type { DeviceEvent } from "../../lib/sim/device.ts";
import { DEFAULT_BOOT_PY } from "../../lib/sim/device_shims.ts";
import {
  DeviceUnreachableError,
  KeyError,
  UnsafeImageError,
  WebReplError,
} from "../../lib/errors.ts";
import {
  buildOtaImage,
  DEFAULT_APP_OFFSET,
  findVersion,
  parseImage,
  STANDARD_IROM_BASE,
} from "../../lib/format/image.ts";
import { TriggerIgnoredError } from "../../lib/webrepl/trigger.ts";
import { indexOfBytes } from "../../lib/_bytes.ts";
import { renderOtaModule } from "../../lib/format/ota_module.ts";
import { loadPublicKey } from "../../lib/config/key_file.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { startVirtualDevice, type VirtualDevice } from "../../lib/sim/virtual_device.ts";

const KEY = VECTORS + "test-key-512.pem";
const OTHER_KEY = VECTORS + "test-key-2048.pem";
const PASSWORD = "pw-Zq7x4";
const FLASH_SIZE = 0x100000;
const OLD = "v1.19.1-old on 2022-06-18";
const NEW = "v1.20.0-new on 2022-06-18";
/** boot.py after `webrepl_setup` enabled the daemon. */
const BOOT_PY = DEFAULT_BOOT_PY.replace(
  "#import webrepl\n#webrepl.start()",
  "import webrepl\nwebrepl.start()",
);
/** A reboot slower than one probe cycle (2 tries x 3 block sizes x 300 ms) and than `timeoutMs`. */
const SLOW_REBOOT: DeviceProfile = { ...PROFILES.instant!, name: "slow-reboot", rebootMs: 2500 };

/** A board running an old valid image with WebREPL enabled, and what it printed. */
async function runningBoard(
  options: {
    key?: string;
    profile?: DeviceProfile;
    /** The image in flash (default: a valid one reporting v1.19.1-old). */
    old?: Uint8Array;
    /** boot8266 honours the RTC magic (default true; false is upstream yaota8266). */
    rtcTrigger?: boolean;
    /** Sees each event with the flash and the file system, as they are then. */
    onEvent?: (e: DeviceEvent, board: { flash: Uint8Array; files: Map<string, string> }) => void;
  } = {},
) {
  const key = await loadPublicKey(options.key ?? KEY);
  const old = options.old ?? makeSampleFirmware({ version: "v1.19.1-old", size: 96 * 1024 });
  const flash = new Uint8Array(FLASH_SIZE).fill(0xff);
  flash.set(old, DEFAULT_APP_OFFSET);
  const lines: string[] = [];
  const files = new Map([["boot.py", BOOT_PY]]);
  const device = await startVirtualDevice({
    host: "127.0.0.1",
    port: 0,
    modulus: key.modulus,
    flash,
    start: "boot",
    ...(options.profile ? { profile: options.profile } : {}),
    ...(options.rtcTrigger === undefined ? {} : { rtcTrigger: options.rtcTrigger }),
    webrepl: { password: PASSWORD, files },
    onConsole: (line) => lines.push(line),
    onEvent: (e) => options.onEvent?.(e, { flash, files }),
  });
  assertEquals(device.model.mode, "app");
  return {
    device,
    flash,
    old,
    console: lines,
    /** WebREPL sessions the board accepted (the connect probes never get that far). */
    logins: () => lines.filter((l) => l.startsWith("WebREPL connection from")).length,
    [Symbol.asyncDispose]: () => device.close(),
  };
}

/** The image without its "MicroPython … on DATE" banner (and with a right MD5 trailer). */
function withoutBanner(image: Uint8Array): Uint8Array {
  const parsed = parseImage(image);
  const irom = parsed.irom!.slice();
  const at = indexOfBytes(irom, new TextEncoder().encode("MicroPython "));
  irom.fill(0x2e, at, irom.indexOf(0, at));
  const rebuilt = buildOtaImage({ ...parsed, irom });
  assertEquals(findVersion(rebuilt), undefined);
  return rebuilt;
}

/** The new image in a temp file. */
async function newImage(options: { linkBase?: number; version?: string; banner?: boolean } = {}) {
  const dir = await tempDir();
  const { banner = true, ...sample } = options;
  const made = makeSampleFirmware({ version: "v1.20.0-new", seed: 2, ...sample });
  const image = banner ? made : withoutBanner(made);
  const file = `${dir.path}/firmware-ota.bin`;
  await Deno.writeFile(file, image);
  return { image, file, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}

/** Everything the round trip says goes into `said`, to look for the password in. */
function request(
  device: VirtualDevice,
  file: string,
  said: string[],
  overrides: Partial<TriggeredDeployRequest> = {},
): TriggeredDeployRequest {
  return {
    host: "127.0.0.1",
    port: device.port,
    file,
    keyPath: KEY,
    block: "auto",
    pace: true,
    timeoutMs: 5000,
    force: false,
    bootCheck: true,
    bootCheckMs: 3000,
    appOffset: DEFAULT_APP_OFFSET,
    flashSize: FLASH_SIZE,
    password: PASSWORD,
    otaWaitMs: 10000,
    comeBackMs: 10000,
    onStatus: (m) => said.push(`status: ${m}`),
    onWarning: (m) => said.push(`warning: ${m}`),
    ...overrides,
  };
}

const hooks = (said: string[]) => ({ onStep: (m: string) => said.push(`step: ${m}`) });

function assertNoPassword(said: string[], ...passwords: string[]): void {
  const text = said.join("\n");
  for (const p of passwords) assert(!text.includes(p), `the password leaked:\n${text}`);
}

function count<T>(list: T[], match: (x: T) => boolean): number {
  return list.filter(match).length;
}

Deno.test("deployWithTrigger() takes a running board through OTA mode to the new version", async () => {
  await using board = await runningBoard();
  await using fw = await newImage();
  const said: string[] = [];
  // A window far longer than the round trip (two silent reboots of the device included).
  const result = await deployWithTrigger(
    request(board.device, fw.file, said, { bootCheckMs: 20000 }),
    undefined,
    hooks(said),
  );
  said.push(JSON.stringify(result));

  assertEquals(result.versionBefore, OLD);
  assertEquals(result.versionAfter, NEW);
  assertEquals(result.imageVersion, NEW);
  // templates/ota.py ran: `import ota; ota.start()` wrote the RTC magic and reset.
  assertEquals(result.trigger, "ota.start()");
  assertEquals(result.bootCheck, "passed");
  assertEquals(result.recoveries, 0);
  // The boot check passed when WebREPL's port accepted, well before its 20 s window.
  assert(result.totalSeconds < 15, `boot check took ${result.totalSeconds} s`);
  assertEquals(
    board.flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + fw.image.length),
    fw.image,
  );
  const events = board.device.events;
  const boots = events.flatMap((e) => e.type === "boot" ? [`${e.boot}:${e.mode}`] : []);
  assertEquals(boots, ["ok:app", "ota-requested:ota", "ok:app"]);
  assert(!events.some((e) => e.type === "boot" && e.bootloaderOverwritten));
  assert(!events.some((e) => e.type === "flash-write" && e.belowApp));
  assertEquals(board.device.model.bootloaderOverwritten, false);
  assertEquals(board.device.model.mode, "app");
  // One login to trigger, one to read the new version.
  assertEquals(board.logins(), 2);
  const steps = said.filter((l) => l.startsWith("step: "));
  assertEquals(steps[0], `step: logged in to WebREPL at 127.0.0.1:${board.device.port}`);
  assertEquals(steps[1], `step: running MicroPython ${OLD}`);
  assertStringIncludes(said.join("\n"), "step: OTA mode requested (ota.start())");
  assertStringIncludes(said.join("\n"), "step: OTA server answered");
  assertStringIncludes(said.join("\n"), "for the app to come back");
  assertEquals(steps.at(-1), `step: running MicroPython ${NEW} (was ${OLD})`);
  assertNoPassword([...said, ...board.console], PASSWORD);
});

Deno.test("deployWithTrigger() with a wrong WebREPL password fails after one login and writes nothing", async () => {
  await using board = await runningBoard();
  await using fw = await newImage();
  const said: string[] = [];
  const wrong = "wrong-pw9";
  const e = await assertRejects(
    () =>
      deployWithTrigger(
        request(board.device, fw.file, said, { password: wrong }),
        undefined,
        hooks(said),
      ),
    WebReplError,
    `wrong WebREPL password for 127.0.0.1:${board.device.port}: the device said 'Access denied'`,
  );
  said.push(e.message);
  // Long enough for a retry to show, if there were one.
  await new Promise((r) => setTimeout(r, 300));
  assertEquals(board.logins(), 1);
  assertEquals(count(board.console, (l) => l === "WebREPL: access denied"), 1);
  assertEquals(
    count(board.device.events, (x) => x.type !== "boot"),
    0,
    "nothing reached the OTA side",
  );
  assertEquals(board.device.model.mode, "app");
  assertEquals(
    board.flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + board.old.length),
    board.old,
  );
  assertEquals(said.filter((l) => l.startsWith("step: ")), []);
  assertNoPassword([...said, ...board.console], PASSWORD, wrong);
});

Deno.test("deployWithTrigger() refuses an unsafe image or a missing key before any WebREPL connection", async () => {
  await using board = await runningBoard();
  // A standard build: its irom is linked for 0x40209000, so it would crash in a boot loop.
  await using standard = await newImage({ linkBase: STANDARD_IROM_BASE });
  await using fw = await newImage();
  const said: string[] = [];
  const unsafe = await assertRejects(
    () => deployWithTrigger(request(board.device, standard.file, said), undefined, hooks(said)),
    UnsafeImageError,
    `refusing to send '${standard.file}': it is not a safe OTA image for app offset 0x3c000`,
  );
  const noKey = await assertRejects(
    () =>
      deployWithTrigger(
        request(board.device, fw.file, said, { keyPath: `${VECTORS}no-such-key.pem` }),
        undefined,
        hooks(said),
      ),
    KeyError,
    `no key at '${VECTORS}no-such-key.pem'`,
  );
  said.push(unsafe.message, noKey.message);
  assertEquals(board.console, [], "no connection reached WebREPL");
  assertEquals(count(board.device.events, (x) => x.type !== "boot"), 0);
  assertEquals(said.filter((l) => l.startsWith("step: ")), []);
  assertNoPassword(said, PASSWORD);
});

Deno.test("deployWithTrigger() fails when the board comes back with the old version", async () => {
  // The device confirms every packet, but its flash does not keep the writes.
  await using board = await runningBoard({
    onEvent: (e, d) => {
      if (e.type === "reboot" && e.reason === "end-packet") {
        d.flash.set(
          makeSampleFirmware({ version: "v1.19.1-old", size: 96 * 1024 }),
          DEFAULT_APP_OFFSET,
        );
      }
    },
  });
  await using fw = await newImage();
  const said: string[] = [];
  const e = await assertRejects(
    () => deployWithTrigger(request(board.device, fw.file, said), undefined, hooks(said)),
    UpdateNotAppliedError,
    `the device came back with the old version ${OLD}: the update did not take (boot check: passed).`,
  );
  said.push(e.message);
  assertStringIncludes(
    e.message,
    `the one answering WebREPL at 127.0.0.1:${board.device.port} (check --ip and --device-port)`,
  );
  assertEquals(e.name, "UpdateNotAppliedError");
  assertEquals(board.logins(), 2);
  assertNoPassword([...said, ...board.console], PASSWORD);
});

Deno.test("deployWithTrigger() fails with a clear message when WebREPL does not come back", async () => {
  // The new image boots, but its file system no longer starts WebREPL.
  await using board = await runningBoard({
    onEvent: (e, d) => {
      if (e.type === "reboot" && e.reason === "end-packet") d.files.set("boot.py", DEFAULT_BOOT_PY);
    },
  });
  await using fw = await newImage();
  const said: string[] = [];
  const e = await assertRejects(
    () =>
      deployWithTrigger(
        request(board.device, fw.file, said, { bootCheckMs: 1000, comeBackMs: 1000 }),
        undefined,
        hooks(said),
      ),
    DeviceNotBackError,
    `the device took the new image but its WebREPL at 127.0.0.1:${board.device.port} did not come back within 1.0 s. ` +
      "It may run the new image without WebREPL (is webrepl.start() in its boot.py?), be back in OTA mode",
  );
  said.push(e.message);
  // It did boot the new image: only WebREPL is missing.
  assertEquals(board.device.model.mode, "app");
  assertEquals(
    board.flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + fw.image.length),
    fw.image,
  );
  assertEquals(board.logins(), 1);
  assertNoPassword([...said, ...board.console], PASSWORD);
});

Deno.test("deployWithTrigger() only warns when the image itself carries the running version", async () => {
  // A rebuild of the same tree (other frozen modules, same version string): nothing to compare.
  await using board = await runningBoard();
  await using fw = await newImage({ version: "v1.19.1-old" });
  const said: string[] = [];
  const result = await deployWithTrigger(
    request(board.device, fw.file, said),
    undefined,
    hooks(said),
  );
  assertEquals([result.versionBefore, result.versionAfter, result.imageVersion], [OLD, OLD, OLD]);
  assertEquals(
    board.flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + fw.image.length),
    fw.image,
  );
  assertEquals(said.filter((l) => l.startsWith("warning: ")), [
    `warning: the image reports the version already running (${OLD}), so the version check ` +
    "cannot tell whether it took; the device rebooted and its app answers again",
  ]);
});

Deno.test("deployWithTrigger() reports an OTA server that never answers after the trigger, and writes nothing", async () => {
  // The board's bootloader was built for another key: its OTA server drops every packet.
  await using board = await runningBoard({ key: OTHER_KEY });
  await using fw = await newImage();
  const said: string[] = [];
  const e = await assertRejects(
    () =>
      deployWithTrigger(
        request(board.device, fw.file, said, { timeoutMs: 1000, otaWaitMs: 1500 }),
        undefined,
        hooks(said),
      ),
    OtaModeTimeoutError,
    `127.0.0.1:${board.device.port} took ota.start() but no OTA server answered at ` +
      `127.0.0.1:${board.device.port} within 1.5 s: nothing was written.`,
  );
  said.push(e.message);
  assert(e instanceof DeviceUnreachableError, "retrying may succeed");
  assertStringIncludes(e.message, "'deno task verify' (this image is signed with key ");
  // Those that arrived while it rebooted into OTA mode vanished ("rebooting"); the others
  // failed the signature check.
  const packets = board.device.events.flatMap((x) =>
    x.type === "packet" && x.outcome !== "rebooting" ? [x.outcome] : []
  );
  assert(packets.length > 0 && packets.every((o) => o === "bad-signature"), packets.join());
  assertEquals(count(board.device.events, (x) => x.type === "flash-write"), 0);
  assertEquals(
    board.flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + board.old.length),
    board.old,
  );
  assertNoPassword([...said, ...board.console], PASSWORD);
});

Deno.test({
  name: "deployWithTrigger() waits out a slow reboot into OTA mode and sends without a clean-up",
  // Needs `firstAnswerMs` and `freshSession` in DeployRequest/SendOptions/TransferOptions.
  fn: async () => {
    await using board = await runningBoard({ profile: SLOW_REBOOT });
    await using fw = await newImage();
    const said: string[] = [];
    // 2.5 s to reboot: longer than timeoutMs and than a whole probe cycle.
    const result = await deployWithTrigger(
      request(board.device, fw.file, said, { timeoutMs: 1000, bootCheckMs: 4000 }),
      undefined,
      hooks(said),
    );
    assertEquals(result.versionAfter, NEW);
    // The buffer was clean (a fresh OTA mode): no clean-up end packet, no extra reboot.
    assertEquals(result.recoveries, 0);
    // The sizes that went unanswered during the reboot were probed again: the link passes 1024.
    assertEquals(result.block, 1024);
    const reboots = board.device.events.flatMap((e) => e.type === "reboot" ? [e.reason] : []);
    assertEquals(reboots, ["reset", "end-packet"]);
    assertStringIncludes(
      said.join("\n"),
      "status: no answer yet: the device is still rebooting into OTA mode; waiting",
    );
    assert(!said.some((l) => l.includes("earlier session")), said.join("\n"));
    assertEquals(
      board.flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + fw.image.length),
      fw.image,
    );
    assertNoPassword([...said, ...board.console], PASSWORD);
  },
});

Deno.test({
  name: "deno task deploy --trigger takes the password from WEBREPL_PASSWORD and never prints it",
  // Needs --trigger and --password in tasks/deploy.ts.
  fn: async () => {
    await using board = await runningBoard();
    await using fw = await newImage();
    await using dir = await tempDir();
    const config = `${dir.path}/ota.config.json`;
    await Deno.writeTextFile(config, "{}");
    const port = String(board.device.port);
    const base = ["--config", config, "--ip", "127.0.0.1", "--port", port, "--key", KEY];
    const ok = await runTaskFile("deploy", [
      ...base,
      "--trigger",
      "--boot-check-window",
      "3",
      fw.file,
    ], {
      env: { WEBREPL_PASSWORD: PASSWORD },
    });
    assertEquals(ok.code, 0, ok.stderr);
    assertStringIncludes(ok.stdout, `127.0.0.1: MicroPython ${OLD} -> ${NEW} (via ota.start())`);
    assertStringIncludes(ok.stderr, `running MicroPython ${OLD}`);
    assertNoPassword([ok.stdout, ok.stderr, ...board.console], PASSWORD);

    const wrong = "wrong-pw9";
    const denied = await runTaskFile("deploy", [...base, "--trigger", "--json", fw.file], {
      env: { WEBREPL_PASSWORD: wrong },
    });
    assertEquals(denied.code, 1, denied.stderr);
    assertEquals(JSON.parse(denied.stdout).kind, "WebReplError");
    assertStringIncludes(denied.stderr, `error: wrong WebREPL password for 127.0.0.1:${port}`);
    assertNoPassword([denied.stdout, denied.stderr], PASSWORD, wrong);
    assertEquals(board.logins(), 3);
  },
});

Deno.test("deployWithTrigger() fails at once when the board's bootloader ignores the RTC magic, and sends nothing", async () => {
  // Upstream yaota8266: ota.start() reboots the board into its app again.
  await using board = await runningBoard({ rtcTrigger: false });
  await using fw = await newImage();
  const said: string[] = [];
  const e = await assertRejects(
    () =>
      deployWithTrigger(
        // The OTA server gets its full minute: the failure must not wait for it.
        request(board.device, fw.file, said, { otaWaitMs: 60000 }),
        undefined,
        hooks(said),
      ),
    TriggerIgnoredError,
    `127.0.0.1:${board.device.port} came back in its app `,
  );
  said.push(e.message);
  assertStringIncludes(
    e.message,
    "after ota.start() instead of entering the OTA server: its bootloader most likely has no RTC " +
      "check (upstream yaota8266's boot8266 ignores the 'yaotaota' magic; 'deno task verify' tells " +
      "whether a yaota8266.bin has it). Nothing was sent. To update this board, press its BOOT " +
      "button within 3 s of a reset and run 'deno task deploy --ip 127.0.0.1' without --trigger; " +
      "or flash it once over serial with a bootloader built by 'deno task build-bootloader', which " +
      "adds the check.",
  );
  const boots = board.device.events.flatMap((x) =>
    x.type === "boot" ? [`${x.boot}:${x.mode}`] : []
  );
  assertEquals(boots, ["ok:app", "ok:app"]);
  assertEquals(count(board.device.events, (x) => x.type === "flash-write"), 0);
  assertEquals(
    board.flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + board.old.length),
    board.old,
  );
  assertEquals(board.device.model.mode, "app");
  assertNoPassword([...said, ...board.console], PASSWORD);
});

Deno.test("deployWithTrigger() of an image without a version banner cannot be 'not taken' by version: it succeeds with a warning", async () => {
  // Neither image names its version, so the board reports the same thing before and after.
  const old = withoutBanner(makeSampleFirmware({ version: "v1.19.1-old", size: 96 * 1024 }));
  await using board = await runningBoard({ old });
  await using fw = await newImage({ banner: false });
  const said: string[] = [];
  const result = await deployWithTrigger(
    request(board.device, fw.file, said),
    undefined,
    hooks(said),
  );
  assertEquals(result.bootCheck, "passed");
  assertEquals(result.versionAfter, result.versionBefore);
  assertEquals(result.imageVersion, undefined);
  assertEquals(
    board.flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + fw.image.length),
    fw.image,
  );
  assertEquals(said.filter((l) => l.startsWith("warning: ")), [
    "warning: the image carries no version banner, so whether it took cannot be told from the " +
    `version (the device still reports ${result.versionBefore}); the boot check passed and its app ` +
    "answers again",
  ]);
});

Deno.test("deployWithTrigger() --force of a standard build ends knowing the board will boot-loop, without waiting for its app", async () => {
  await using board = await runningBoard();
  await using standard = await newImage({ linkBase: STANDARD_IROM_BASE });
  const said: string[] = [];
  const result = await deployWithTrigger(
    request(board.device, standard.file, said, { force: true }),
    undefined,
    hooks(said),
  );
  assertStringIncludes(result.bootLoop ?? "", "irom linked at 0x40209000");
  assertEquals(result.versionAfter, "");
  assertEquals(
    board.flash.subarray(DEFAULT_APP_OFFSET, DEFAULT_APP_OFFSET + standard.image.length),
    standard.image,
  );
  assertEquals(said.filter((l) => l.includes("for the app to come back")), []);
  assertStringIncludes(
    said.join("\n"),
    "step: sent with --force: not waiting for an app that cannot start",
  );
  // One login only: nothing logged in again to read a version.
  assertEquals(board.logins(), 1);
});

Deno.test("deployWithTrigger() refuses an image that would move the board's filesystem unless told so", async () => {
  await using board = await runningBoard();
  await using dir = await tempDir();
  const template = await Deno.readTextFile(new URL("../../templates/ota.py", import.meta.url));
  const ota = renderOtaModule(template, { build: "0123456789ab" });
  const fw = {
    file: `${dir.path}/firmware-ota.bin`,
    image: makeSampleFirmware({
      version: "v1.20.0-new",
      seed: 2,
      frozen: [{ name: "ota.py", source: ota }],
    }),
  };
  await Deno.writeFile(fw.file, fw.image);
  const before = board.flash.slice();
  // The board reports esp.flash_user_start() 0xd4000; this build was linked with a larger irom.
  const image = {
    id: "0123456789ab",
    builtAt: "2026-01-01T00:00:00.000Z",
    flashUserStart: 0xd5000,
  };
  const said: string[] = [];
  const refused = await assertRejects(
    () =>
      deployWithTrigger({ ...request(board.device, fw.file, said), image }, undefined, hooks(said)),
    UnsafeImageError,
  );
  assertStringIncludes(
    refused.message,
    "the new image would move the board's filesystem: it runs an image whose flash_user_start " +
      "is 0xd4000, the new one's is 0xd5000",
  );
  assertStringIncludes(refused.message, "--allow-filesystem-move");
  assertEquals(board.flash, before, "nothing was written");
  assertEquals(board.device.model.mode, "app", "the board was not reset");

  const allowed = await deployWithTrigger(
    {
      ...request(board.device, fw.file, said, { bootCheckMs: 20000 }),
      image,
      allowFilesystemMove: true,
    },
    undefined,
    hooks(said),
  );
  assertEquals(allowed.versionAfter, NEW);
});
