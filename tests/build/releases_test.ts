/**
 * `deploy --release` and dist/manifest.json as a user meets them when something is off:
 * a short or empty release name is a usage error (exit 2), a release whose image is
 * another build is refused before a single datagram, and a corrupt manifest is called
 * corrupt, naming the file and the parse error.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTaskFile, tempDir, VECTORS } from "../_helpers.ts";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { createSocket } from "node:dgram";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { renderOtaModule } from "../../lib/format/ota_module.ts";
import { imageCarriesBuild } from "../../lib/build/releases.ts";

const KEY = `${VECTORS}test-key-512.pem`;
const TEMPLATE = await Deno.readTextFile(new URL("../../templates/ota.py", import.meta.url));

function imageOfBuild(id: string): Uint8Array {
  return makeSampleFirmware({
    size: 40 * 1024,
    seed: 7,
    frozen: [{ name: "ota.py", source: renderOtaModule(TEMPLATE, { build: id }) }],
  });
}

/** A UDP socket on 127.0.0.1 standing for the board: counts what reaches it. */
async function udpBoard(): Promise<{ port: number; received: () => number } & AsyncDisposable> {
  const socket = createSocket("udp4");
  let count = 0;
  socket.on("message", () => count++);
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    port: socket.address().port,
    received: () => count,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

Deno.test("deploy --release: too short or empty is a usage error (exit 2) saying what it takes", async () => {
  await using dir = await tempDir();
  for (
    const [value, message] of [
      ["1dc", "--release '1dc' has 3 digits: give at least 4 digits of a build id, or 'previous'"],
      ["", "--release is empty: give a build id (at least 4 of its hex digits) or 'previous'"],
    ]
  ) {
    const r = await runTaskFile("deploy", ["--ip", "127.0.0.1", "--release", value!], {
      cwd: dir.path,
    });
    assertEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, message!);
  }
});

Deno.test("deploy --release whose image is another build than its manifest names: refused before the first datagram", async () => {
  await using dir = await tempDir();
  await using board = await udpBoard();
  const named = "aaaa00000001";
  const image = imageOfBuild("bbbb00000002");
  assert(!imageCarriesBuild(image, named) && imageCarriesBuild(image, "bbbb00000002"));
  const release = join(dir.path, "dist", "releases", named);
  await Deno.mkdir(release, { recursive: true });
  await Deno.writeFile(join(release, "firmware-ota.bin"), image);
  await Deno.writeTextFile(
    join(release, "manifest.json"),
    JSON.stringify({
      build: { id: named, builtAt: "2024-01-01T00:00:00.000Z" },
      image: {
        size: image.length,
        sha256: createHash("sha256").update(image).digest("hex"),
        appOffset: "0x3c000",
      },
    }),
  );
  const r = await runTaskFile("deploy", [
    "--ip",
    "127.0.0.1",
    "--port",
    String(board.port),
    "--key",
    KEY,
    "--release",
    "aaaa",
  ], { cwd: dir.path });
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(
    r.stderr,
    `${join("dist", "releases", named, "firmware-ota.bin")} does not carry the build id ${named} ` +
      `that ${join("dist", "releases", named, "manifest.json")} names: the image is another ` +
      "build's (or the manifest was edited). Nothing was sent.",
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  assertEquals(board.received(), 0, "a datagram reached the board");
});

Deno.test("status with a corrupt dist/manifest.json says it is corrupt, naming the file and the parse error", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, "dist"));
  await Deno.writeTextFile(join(dir.path, "dist", "manifest.json"), '{"build": {"id": "aaaa0');
  const r = await runTaskFile("status", ["--ip", "127.0.0.1", "--port", "9", "--timeout", "1"], {
    cwd: dir.path,
    env: { WEBREPL_PASSWORD: "hostile1" },
  });
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, `'${join("dist", "manifest.json")}' is corrupt (`);
  assertStringIncludes(r.stderr, "JSON");
  assert(!r.stderr.includes("names no build id"), r.stderr);
});
