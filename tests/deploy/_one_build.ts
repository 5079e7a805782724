/**
 * One build as build-ota leaves it (dist/manifest.json, the image, its kept release) and
 * virtual boards that run it or an older image, for the status, scan and report tests.
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import { VECTORS, vectorText } from "../_helpers.ts";
import { DEFAULT_APP_OFFSET } from "../../lib/format/image.ts";
import { DEFAULT_BOOT_PY } from "../../lib/sim/device_shims.ts";
import { PROFILES } from "../../lib/sim/device_profile.ts";
import { parsePrivateKey } from "../../lib/format/keys.ts";
import { renderOtaModule } from "../../lib/format/ota_module.ts";
import { makeSampleFirmware } from "../../lib/sim/sample_firmware.ts";
import { startVirtualDevice, type VirtualDevice } from "../../lib/sim/virtual_device.ts";
import { ROOT } from "../_helpers.ts";

export const KEY = VECTORS + "test-key-512.pem";
export const key = parsePrivateKey(vectorText("test-key-512.pem"));
export const PASSWORD = "pw-stat1";
export const BUILD = { id: "dddd00000004", version: "2.0", builtAt: "2024-04-01T10:00:00.000Z" };
const TEMPLATE = Deno.readTextFileSync(join(ROOT, "templates", "ota.py"));
const BOOT_PY = DEFAULT_BOOT_PY.replace(
  "#import webrepl\n#webrepl.start()",
  "import webrepl\nwebrepl.start()",
);

/** The build's image: its ota.py frozen in, as build-ota stamps it. */
export function buildImage(): Uint8Array {
  return makeSampleFirmware({
    size: 40 * 1024,
    seed: 21,
    frozen: [{
      name: "ota.py",
      source: renderOtaModule(TEMPLATE, { build: BUILD.id, version: BUILD.version }),
    }],
  });
}

/** `dir/dist/` with the build as the current one and as a kept release. */
export async function writeDist(dir: string): Promise<string> {
  const dist = join(dir, "dist");
  const image = buildImage();
  const manifest = JSON.stringify({
    firmware: "firmware-ota.bin",
    builtAt: BUILD.builtAt,
    build: BUILD,
    image: {
      size: image.length,
      sha256: createHash("sha256").update(image).digest("hex"),
      appOffset: "0x3c000",
    },
  });
  for (const folder of [dist, join(dist, "releases", BUILD.id)]) {
    await Deno.mkdir(folder, { recursive: true });
    await Deno.writeFile(join(folder, "firmware-ota.bin"), image);
    await Deno.writeTextFile(join(folder, "manifest.json"), manifest);
  }
  return dist;
}

/**
 * A virtual board with WebREPL: "current" runs the build, "legacy" an image without a
 * build id; `mode: "ota"` waits in OTA mode instead.
 */
export async function startBoard(
  options: { image: "current" | "legacy"; mode?: "app" | "ota"; host?: string; port?: number },
): Promise<VirtualDevice> {
  const flash = new Uint8Array(0x100000).fill(0xff);
  flash.set(
    options.image === "current" ? buildImage() : makeSampleFirmware({ size: 40 * 1024, seed: 10 }),
    DEFAULT_APP_OFFSET,
  );
  return await startVirtualDevice({
    ...(options.host ? { host: options.host } : {}),
    port: options.port ?? 0,
    modulus: key.modulus,
    flash,
    profile: PROFILES.instant,
    start: options.mode === "ota" ? "ota" : "boot",
    webrepl: { password: PASSWORD, files: new Map([["boot.py", BOOT_PY]]) },
  });
}

/** A TCP port that accepts and then says nothing (a hung app, or not WebREPL at all). */
export function silentPeer(host = "127.0.0.1", port = 0): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: host, port });
  const held: Deno.Conn[] = [];
  const loop = (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch { /* closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of held) {
        try {
          c.close();
        } catch { /* gone */ }
      }
      await loop;
    },
  };
}

/** A port nothing listens on (TCP or UDP) on 127.0.0.1. */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
