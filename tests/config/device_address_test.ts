/**
 * One check of a board's address, wherever it comes from: `--ip`, the config's `ip` and
 * `devices[].ip`, a host name's lookup; and the send errors that follow from one.
 */
import { assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../_assert.ts";
import { deviceAddressProblem } from "../../lib/config/device_address.ts";
import { resolveDeviceAddress } from "../../lib/transfer/resolve_device.ts";
import { sendError } from "../../lib/transfer/send_error.ts";
import { AddressError, ConfigError, DeviceUnreachableError } from "../../lib/errors.ts";
import { parseConfig } from "../../lib/config/config.ts";
import { runTaskFile } from "../_helpers.ts";

Deno.test("deviceAddressProblem() accepts one host's IPv4 address or a host name", () => {
  for (
    const ok of [
      "192.168.1.20",
      "127.0.0.1",
      "10.0.1.255", // a host in a /23: only the netmask could tell
      "169.254.7.1",
      "localhost",
      "esp-kitchen",
      "kitchen.local",
      "board_7.lan.",
    ]
  ) {
    assertEquals(deviceAddressProblem(ok), undefined, ok);
  }
});

Deno.test("deviceAddressProblem() names what each other address is", () => {
  const cases: [string, string][] = [
    ["999.1.1.1", "'999.1.1.1' is not an IPv4 address: it takes four numbers from 0 to 255"],
    ["1.2.3", "'1.2.3' is not an IPv4 address"],
    ["010.1.1.1", "(no leading zeros)"],
    ["1.2.3.4.5", "'1.2.3.4.5' is not an IPv4 address"],
    ["255.255.255.255", "'255.255.255.255' is the broadcast address, not one board"],
    ["0.0.0.0", "'0.0.0.0' is the unspecified address"],
    ["0.1.2.3", "'0.1.2.3' is in 0.0.0.0/8"],
    ["224.0.0.1", "'224.0.0.1' is a multicast address, not one board"],
    ["239.255.255.250", "is a multicast address"],
    ["240.0.0.1", "is in the reserved range 240.0.0.0/4"],
    ["::1", "'::1' is an IPv6 address: yaota8266 listens on IPv4 only"],
    ["fe80::1", "is an IPv6 address"],
    [
      "192.168.1.20:8266",
      "carries a port: give the address alone ('192.168.1.20') and the port with --device-port",
    ],
    ["http://192.168.1.20/", "is a URL"],
    ["", "is empty"],
    ["my board", "contains spaces"],
    ["bad!host", "is neither an IPv4 address nor a host name"],
    ["-leading.dash", "is neither an IPv4 address nor a host name"],
  ];
  for (const [text, expected] of cases) {
    const problem = deviceAddressProblem(text);
    assertStringIncludes(problem ?? "(accepted)", expected, text);
  }
  assertStringIncludes(deviceAddressProblem("224.0.0.1")!, "give the board's own address");
});

Deno.test("resolveDeviceAddress() returns an IPv4 address as it is and looks up a name", async () => {
  assertEquals(await resolveDeviceAddress("127.0.0.1"), "127.0.0.1");
  assertEquals(await resolveDeviceAddress("localhost"), "127.0.0.1");
});

Deno.test("resolveDeviceAddress() fails at once, naming the name, when it does not resolve", async () => {
  // .invalid never resolves (RFC 6761); without a name server the lookup fails too.
  const e = await assertRejects(
    () => resolveDeviceAddress("no-such-board.invalid"),
    AddressError,
    "cannot resolve 'no-such-board.invalid'",
  );
  assertStringIncludes(e.message, "IPv4 address");
  await assertRejects(
    () => resolveDeviceAddress("255.255.255.255"),
    AddressError,
    "the device address '255.255.255.255' is the broadcast address",
  );
});

Deno.test("sendError() ends the transfer for a refused or unroutable send, not for a passing one", () => {
  const refused = sendError({ code: "EACCES" }, "10.0.0.255", 8266);
  assertEquals(refused instanceof AddressError, true);
  assertStringIncludes(
    refused!.message,
    "cannot send to 10.0.0.255:8266: the system refused (EACCES",
  );
  const noRoute = sendError({ code: "ENETUNREACH" }, "172.31.0.9", 8266);
  assertEquals(noRoute instanceof DeviceUnreachableError, true);
  assertStringIncludes(noRoute!.message, "no route from this machine");
  for (const code of ["EHOSTUNREACH", "ENOBUFS", "EAGAIN", "ECONNREFUSED"]) {
    assertEquals(sendError({ code }, "10.0.0.2", 8266), undefined, code);
  }
});

Deno.test("parseConfig() checks the ip of the config and of each device as --ip is checked", () => {
  assertThrows(
    () => parseConfig({ ip: "999.1.1.1" }, "/tmp", "ota.config.json"),
    ConfigError,
    "ota.config.json: ip: '999.1.1.1' is not an IPv4 address",
  );
  assertThrows(
    () =>
      parseConfig(
        { devices: [{ name: "a", ip: "10.0.0.2" }, { name: "b", ip: "255.255.255.255" }] },
        "/tmp",
        "ota.config.json",
      ),
    ConfigError,
    "ota.config.json: devices[1].ip: '255.255.255.255' is the broadcast address",
  );
  assertEquals(
    parseConfig({ devices: [{ name: "a", ip: "kitchen.local" }] }, "/tmp").devices?.[0]?.ip,
    "kitchen.local",
  );
});

Deno.test("trigger refuses an --ip that is not one board's, as deploy does (exit 2)", async () => {
  const r = await runTaskFile("trigger", ["--ip", "255.255.255.255", "--password", "x"]);
  assertEquals(r.code, 2, r.stderr);
  assertStringIncludes(r.stderr, "--ip '255.255.255.255' is the broadcast address, not one board");
});
