/**
 * One meaning per name (issue 22, point 9): `--port`/`-p` is a serial device (flash, as in
 * esptool and mpremote); the network ports have their own names, the old spelling still
 * works with one warning; verify says what it skipped; offsets are hex in `--json`.
 */
import { TASKS } from "../../yaota.ts";
import { parseCommandArgs, renderHelp } from "../../lib/cli/cli.ts";
import { UsageError } from "../../lib/errors.ts";
import { hexOffsets } from "../../lib/cli/json_report.ts";
import { verifySummary } from "../../lib/cli/verify_report.ts";
import { parseVerifyArgs } from "../../tasks/verify.ts";
import { parseDeployArgs } from "../../tasks/deploy.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { runTaskFile, VECTORS } from "../_helpers.ts";

const specs = await Promise.all(
  Object.entries(TASKS).map(async ([name, load]) => [name, (await load()).spec] as const),
);

Deno.test("--port and -p name a serial device: only flash has them", () => {
  for (const [name, spec] of specs) {
    const hasPort = "port" in spec.options;
    const hasP = Object.values(spec.options).some((o) => o.short === "p");
    assertEquals([name, hasPort, hasP], [name, name === "flash", name === "flash"]);
  }
});

Deno.test("the network ports have one name each: --device-port, --listen-port, --http-port", () => {
  const portOf = (name: string) =>
    Object.keys(specs.find(([n]) => n === name)![1].options).filter((o) => o.endsWith("port"));
  for (const name of ["deploy", "status", "trigger", "repl", "exec", "put", "get", "ls", "rm"]) {
    assertEquals([name, portOf(name)], [name, ["device-port"]]);
  }
  assertEquals(portOf("sim"), ["listen-port"]);
  assertEquals(portOf("dashboard"), ["http-port"]);
  assertEquals(portOf("demo"), ["http-port"]);
});

Deno.test("the old --port still works where it named a network port, with one warning", () => {
  const deploy = specs.find(([n]) => n === "deploy")![1];
  const parsed = parseCommandArgs(deploy, ["--ip", "127.0.0.1", "--port", "9000"]);
  assertEquals(parsed.values["device-port"], "9000");
  assertEquals(parsed.values.port, undefined);
  assertEquals(parsed.warnings?.length, 1);
  assertStringIncludes(parsed.warnings![0]!, "--port is now --device-port in deploy");
  assertEquals(parseDeployArgs(["--ip", "127.0.0.1", "--port", "9000"]).port, 9000);
  assertEquals(parseCommandArgs(deploy, ["--device-port", "9000"]).warnings, undefined);
  assertThrows(
    () => parseCommandArgs(deploy, ["--port", "1", "--device-port", "2"]),
    UsageError,
    "--port is the old name of --device-port: give --device-port only",
  );
  assertStringIncludes(renderHelp(deploy), "--port (now --device-port)");
});

Deno.test("a task run with the old name warns once on stderr and still runs", async () => {
  const r = await runTaskFile("sim", ["--port", "70000"]);
  assertEquals(r.code, 2);
  const warnings = r.stderr.split("\n").filter((l) => l.includes("warning:"));
  assertEquals(warnings.length, 1, r.stderr);
  assertStringIncludes(warnings[0]!, "--port is now --listen-port in sim");
  assertStringIncludes(r.stderr, "--listen-port expects a port number");
});

Deno.test("verify never says 'all passed' over skipped checks", () => {
  const line = verifySummary([
    { name: "key", result: "passed", detail: "" },
    { name: "public key", result: "skipped", detail: "" },
    { name: "firmware", result: "skipped", detail: "" },
  ]);
  assertEquals(
    line,
    "1 of 3 checks passed, 2 skipped (public key, firmware: not there, not checked)",
  );
  assert(!line.startsWith("all"));
  assertEquals(
    verifySummary([{ name: "key", result: "passed", detail: "" }]),
    "the one check passed",
  );
});

Deno.test("verify FILE takes the firmware as inspect FILE does", () => {
  assertEquals(parseVerifyArgs(["fw.bin"]).paths.firmware, "fw.bin");
  assertThrows(() => parseVerifyArgs(["a.bin", "b.bin"]), UsageError, "one FIRMWARE only");
  assertThrows(
    () => parseVerifyArgs(["a.bin", "--firmware", "b.bin"]),
    UsageError,
    "give one",
  );
});

Deno.test("verify --json: each check has a result, no 'ok: true, skipped: true'", async () => {
  const r = await runTaskFile("verify", [
    "--key",
    `${VECTORS}test-key-512.pem`,
    "--json",
    `${VECTORS}fw-10000.bin`,
  ]);
  const json = JSON.parse(r.stdout);
  for (const c of json.checks) {
    assertEquals([c.ok, c.skipped], [undefined, undefined], JSON.stringify(c));
    assert(["passed", "failed", "skipped"].includes(c.result), JSON.stringify(c));
  }
  assertEquals(
    json.counts.passed + json.counts.failed + json.counts.skipped,
    json.checks.length,
  );
});

Deno.test("offsets are hex strings in --json", () => {
  assertEquals(
    hexOffsets({ appOffset: 0x3c000, checks: [{ bootloader: { otaServerAt: 4096 } }], size: 5 }),
    { appOffset: "0x3c000", checks: [{ bootloader: { otaServerAt: "0x1000" } }], size: 5 },
  );
});
