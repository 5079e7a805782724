/**
 * `build-bootloader --quiet-log` on the fake yaota8266 tree (whose fake compiler keeps
 * only the printf strings that survive the preprocessor), the edit of ota-server/ota.c
 * on its own, and how `verify` tells a quiet bootloader from a logging one.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import { buildEnv, FAKE_OTA_C, makeFakeYaotaTree } from "../fixtures/fake_trees.ts";
import { indexOfBytes } from "../../lib/_bytes.ts";
import {
  OTA_SERVER_MARKERS,
  packetLogOf,
  PER_PACKET_LOG_FORMATS,
} from "../../lib/format/bootloader_image.ts";
import { hasQuietLogGate, planQuietLog } from "../../lib/build/quiet_log_edit.ts";
import { join } from "node:path";

const KEY_FILE = join(VECTORS, "test-key-512.pem");
const encode = (text: string) => new TextEncoder().encode(text);
const holds = (binary: Uint8Array, text: string) => indexOfBytes(binary, encode(text)) >= 0;

function buildNative(root: string, cwd: string, extra: string[] = []) {
  return runTaskFile(
    "build_bootloader",
    ["--yaota8266", root, "--key", KEY_FILE, "--runtime", "native", ...extra],
    { cwd, env: buildEnv(join(cwd, "docker.log")) },
  );
}

Deno.test("build-bootloader --quiet-log builds an OTA server without the per-packet log lines, keeps its error lines, and is idempotent", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const output = join(dir.path, "dist", "yaota8266.bin");

  // As the tree is: all five lines per packet are compiled in (and not the #if 0 one).
  const standard = await buildNative(tree.root, dir.path);
  assertEquals(standard.code, 0, standard.stderr);
  const logging = await Deno.readFile(output);
  for (const f of PER_PACKET_LOG_FORMATS) assert(holds(logging, f), `standard build lacks ${f}`);
  assert(!holds(logging, "Would write"), "a line under #if 0 was compiled in");
  assertEquals(packetLogOf(logging).state, "on");
  assertStringIncludes(
    standard.stdout,
    "the OTA server logs every packet on its serial port (~13 ms per packet at 115200 baud); " +
      "--quiet-log builds it without, for faster updates\n",
  );

  const quiet = await buildNative(tree.root, dir.path, ["--quiet-log"]);
  assertEquals(quiet.code, 0, quiet.stderr);
  const binary = await Deno.readFile(output);
  for (const f of PER_PACKET_LOG_FORMATS) assert(!holds(binary, f), `quiet build holds ${f}`);
  for (const m of OTA_SERVER_MARKERS) assert(holds(binary, m), `quiet build lacks ${m}`);
  assert(holds(binary, "Writing %d bytes of buf to %x\n"), "the sector-write line went too");
  assert(holds(binary, "Packet too short\n") && holds(binary, "\nStarting OTA server\n"));
  assertEquals(packetLogOf(binary), { state: "off", found: [] });
  // config.h switches the log off; ota.c routes exactly the five lines through the macro.
  assertStringIncludes(await Deno.readTextFile(tree.configH), "\n#define OTA_PACKET_LOG 0\n");
  const otaC = await Deno.readTextFile(join(tree.root, "ota-server/ota.c"));
  assertEquals(await Deno.readTextFile(join(tree.root, "ota-server/ota.c.orig")), FAKE_OTA_C);
  assertEquals(otaC.match(/\bPKT_LOG\("/g)?.length, 5);
  assertEquals(otaC.match(/\bprintf\("/g)?.length, FAKE_OTA_C.match(/\bprintf\("/g)!.length - 5);
  assertStringIncludes(
    quiet.stderr,
    "wrote ota-server/ota.c: puts its 5 per-packet log lines behind a macro that config.h's " +
      "OTA_PACKET_LOG 0 turns off (--quiet-log); error lines stay\n",
  );
  assertStringIncludes(quiet.stderr, "    + #define OTA_PACKET_LOG 0\n");
  assertStringIncludes(quiet.stderr, "  kept the original as ota-server/ota.c.orig\n");
  assertStringIncludes(quiet.stderr, "$ make clean\n");
  assertStringIncludes(
    quiet.stdout,
    "quiet: the OTA server prints no line per packet (--quiet-log): transfers are no longer held " +
      "to the serial log's ~13 ms per packet; only errors show on the serial console\n",
  );

  // Again: nothing to change, the same binary.
  const again = await buildNative(tree.root, dir.path, ["--quiet-log"]);
  assertEquals(again.code, 0, again.stderr);
  assertEquals(again.stderr.match(/^wrote .*$/gm), null, again.stderr);
  assertStringIncludes(
    again.stderr,
    "ota-server/ota.c: per-packet log lines behind OTA_PACKET_LOG (added by build-bootloader)\n",
  );
  assertEquals(await Deno.readTextFile(join(tree.root, "ota-server/ota.c")), otaC);
  assertEquals(await Deno.readFile(output), binary);

  // Without --quiet-log: config.h turns the log back on, ota.c stays as it is.
  const back = await buildNative(tree.root, dir.path);
  assertEquals(back.code, 0, back.stderr);
  assertStringIncludes(await Deno.readTextFile(tree.configH), "\n#define OTA_PACKET_LOG 1\n");
  assertEquals(await Deno.readTextFile(join(tree.root, "ota-server/ota.c")), otaC);
  assertEquals(packetLogOf(await Deno.readFile(output)).state, "on");
  assertStringIncludes(
    back.stderr,
    "ota-server/ota.c: per-packet log lines behind OTA_PACKET_LOG, which config.h turns on (no --quiet-log)\n",
  );
});

Deno.test("verify says whether a yaota8266.bin logs every packet or is quiet", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const verify = () =>
    runTaskFile("verify", ["--key", KEY_FILE, "--bootloader", "dist/yaota8266.bin"], {
      cwd: dir.path,
    });
  assertEquals((await buildNative(tree.root, dir.path)).code, 0);
  const logging = await verify();
  assertStringIncludes(
    logging.stdout,
    "; app offset: not found; logs every packet on its serial port (~150 characters, about 13 ms per " +
      "packet at 115200 baud: the ceiling of every transfer; 'build-bootloader --quiet-log' builds " +
      "one without)\n",
  );
  assertEquals((await buildNative(tree.root, dir.path, ["--quiet-log"])).code, 0);
  const quiet = await verify();
  assertStringIncludes(
    quiet.stdout,
    "; app offset: not found; quiet: no per-packet serial log (built with --quiet-log), error lines kept\n",
  );
});

Deno.test("build-bootloader --quiet-log --dry-run lists the ota.c and config.h changes and changes nothing", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const r = await buildNative(tree.root, dir.path, ["--quiet-log", "--dry-run"]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "would write ota-server/ota.c: puts its 5 per-packet log lines");
  assertStringIncludes(
    r.stdout,
    '    - printf("UDP incoming from: …") → PKT_LOG("UDP incoming from: …")\n',
  );
  assertStringIncludes(r.stdout, "    + #define OTA_PACKET_LOG 0\n");
  assertStringIncludes(r.stdout, "quiet: the OTA server prints no line per packet");
  assertEquals(await Deno.readTextFile(join(tree.root, "ota-server/ota.c")), FAKE_OTA_C);
  assertEquals(await Deno.stat(join(tree.root, "ota-server/ota.c.orig")).catch(() => null), null);
});

Deno.test("build-bootloader --quiet-log names what an ota.c without the per-packet lines lacks, before any change", async () => {
  await using dir = await tempDir();
  const tree = await makeFakeYaotaTree(dir.path);
  const otaC = join(tree.root, "ota-server/ota.c");
  await Deno.writeTextFile(otaC, '#include "../config.h"\nvoid ota_start(void) {}\n');
  const config = await Deno.readTextFile(tree.configH);
  const r = await buildNative(tree.root, dir.path, ["--quiet-log"]);
  assertEquals(r.code, 1);
  assertStringIncludes(
    r.stderr,
    "ota-server/ota.c lacks the per-packet printf lines of ota_udp_incoming " +
      '("UDP incoming from: …", "Pkt id: …", "offset: …", "Proc1 time: …", "Full time: …"): ' +
      "build without --quiet-log, or put its per-packet printf lines behind a macro by hand. " +
      "Nothing was changed.",
  );
  assertEquals(await Deno.readTextFile(tree.configH), config);
});

Deno.test("planQuietLog() gates the five per-packet lines after the config.h include, once", () => {
  const plan = planQuietLog(FAKE_OTA_C);
  assert(plan.status === "add");
  assertEquals(plan.lines, 5);
  assert(hasQuietLogGate(plan.text));
  assert(!hasQuietLogGate(FAKE_OTA_C));
  const gate = plan.text.indexOf("#define PKT_LOG printf");
  assert(gate > plan.text.indexOf('#include "../config.h"'), "the gate must follow config.h");
  assertEquals(planQuietLog(plan.text), { status: "present" });
  // Only the per-packet calls changed: the rest of the file is as it was.
  assertEquals(
    plan.text.replace(/\/\* >>> per-packet log[\s\S]*?<<< per-packet log \*\/\n\n/, "")
      .replaceAll('PKT_LOG("', 'printf("'),
    FAKE_OTA_C,
  );
  assertEquals(planQuietLog('printf("Pkt id: %x\\n", seq);\n'), {
    status: "unrecognised",
    missing: "the line '#include \"../config.h\"' the macro goes after",
  });
});

Deno.test("packetLogOf() tells a logging, a quiet, a partly quiet and an unknown binary apart", () => {
  const binary = (...texts: string[]) => encode(`\xe9junk\0${texts.join("\0")}\0more`);
  assertEquals(packetLogOf(binary(...PER_PACKET_LOG_FORMATS, ...OTA_SERVER_MARKERS)).state, "on");
  assertEquals(packetLogOf(binary(...OTA_SERVER_MARKERS)), { state: "off", found: [] });
  assertEquals(packetLogOf(binary("Pkt id: %x\n", "Unexpected offset\n")), {
    state: "partial",
    found: ["Pkt id: %x\n"],
  });
  assertEquals(packetLogOf(binary("MicroPython")), { state: "unknown", found: [] });
});
