/**
 * A fleet of virtual boards for the dashboard's demo mode and its tests: each a virtual
 * yaota8266 (`virtual_device.ts`) running an app with WebREPL whose frozen `ota.py` names its build
 * (`ota.BUILD`, as build-ota stamps it), most of them an older build and the last one the
 * current build, plus one board that is offline; a throwaway key; and a build folder like
 * `build-ota` leaves it (`firmware-ota.bin`, its manifest, and two kept releases). Demo
 * code: production modules never import it.
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { OtaConfig } from "../config/config.ts";
import { generateKey } from "../format/keys.ts";
import { DEFAULT_APP_OFFSET } from "../format/image.ts";
import { renderOtaModule } from "../format/ota_module.ts";
import type { BuildStamp } from "../build/build_id.ts";
import { FIRMWARE_FILE, MANIFEST_FILE } from "../build/build_outputs.ts";
import type { DeviceProfile } from "./device_profile.ts";
import { readOtaTemplate } from "./device_shims.ts";
import { makeSampleFirmware } from "./sample_firmware.ts";
import { startVirtualDevice, type VirtualDevice } from "./virtual_device.ts";

/** The demo's WebREPL password (every virtual board has it). */
export const DEMO_PASSWORD = "demo-pw1";
export const DEMO_PASSWORD_ENV = "YAOTA_DEMO_PW";

/** Board names and tags: the last one is offline. */
const BOARDS: { name: string; tags: string[] }[] = [
  { name: "kitchen", tags: ["sensor"] },
  { name: "garage", tags: ["sensor", "door"] },
  { name: "hall", tags: ["display"] },
  { name: "attic", tags: ["sensor"] },
  { name: "porch", tags: ["door"] },
  { name: "cellar", tags: ["sensor"] },
];

export interface DemoFleetOptions {
  profile: DeviceProfile;
  /** Boards that run (default 3); one more is offline. */
  boards?: number;
  /** How many of them (the last ones) run the current build already (default 1). */
  upToDate?: number;
  /** Image size in bytes (default 160 KiB). */
  imageSize?: number;
  /** Key size (default 1024). */
  bits?: number;
  /**
   * A board could not switch modes (its OTA port would not open, ...) and stays silent:
   * "name: message", as kept in `errors`.
   */
  onBoardError?: (problem: string) => void;
}

/** One of the demo's two builds, as build-ota would have made it. */
export interface DemoBuild extends BuildStamp {
  version: string;
  /** What `os.uname().version` says on a board running it. */
  micropython: string;
  image: Uint8Array;
}

export interface DemoFleet extends AsyncDisposable {
  dir: string;
  config: OtaConfig;
  keyPath: string;
  /** The password variables, as the port reads them. */
  env: (name: string) => string | undefined;
  devices: VirtualDevice[];
  /** The name of the board with nothing behind its address. */
  offline: string;
  /** The build most boards run (a kept release), and the current build. */
  builds: { old: DemoBuild; current: DemoBuild };
  /** The build each running board was started with, by name. */
  runs: Map<string, DemoBuild>;
  /** What went wrong on a board, as "name: message" (also given to `onBoardError`). */
  errors: string[];
  close(): Promise<void>;
}

const sha256Hex = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

/** A build: its id, and an image whose frozen `ota.py` names it, as build-ota stamps it. */
function makeBuild(
  template: string,
  size: number,
  seed: number,
  version: string,
  micropython: { version: string; date: string },
  builtAt: string,
): DemoBuild {
  // Content-derived, as a real build id is (lib/build/build_id.ts), from what differs here.
  const id = sha256Hex(`yaota demo build/${seed}/${version}/${micropython.version}`).slice(0, 12);
  const image = makeSampleFirmware({
    size,
    seed,
    ...micropython,
    frozen: [{ name: "ota.py", source: renderOtaModule(template, { build: id, version }) }],
  });
  return {
    id,
    builtAt,
    version,
    micropython: `${micropython.version} on ${micropython.date}`,
    image,
  };
}

/** Keeps `build` under `dir/releases/<id>/`; returns its manifest's text. */
async function keepBuild(dir: string, build: DemoBuild): Promise<string> {
  const { id, builtAt, version, image } = build;
  const manifest = JSON.stringify(
    {
      firmware: FIRMWARE_FILE,
      builtAt,
      build: { id, builtAt, version },
      image: {
        size: image.length,
        sha256: sha256Hex(image),
        appOffset: "0x3c000",
        version: build.micropython,
        safe: true,
      },
      modules: [{ name: "ota.py" }],
    },
    null,
    2,
  ) + "\n";
  const release = join(dir, "releases", id);
  await Deno.mkdir(release, { recursive: true });
  await Deno.writeFile(join(release, FIRMWARE_FILE), image);
  await Deno.writeTextFile(join(release, MANIFEST_FILE), manifest);
  return manifest;
}

/**
 * The build folder `build-ota` would leave after two builds (1.0.0, then 1.1.0): both kept
 * in `out/releases/`, the second as the current build. `tag` goes into their MicroPython
 * versions ("v1.19.1-demo").
 */
export async function writeDemoBuilds(
  out: string,
  size: number,
  tag: string,
): Promise<{ old: DemoBuild; current: DemoBuild }> {
  const template = await readOtaTemplate();
  const builds = {
    old: makeBuild(template, size, 1, "1.0.0", {
      version: `v1.19.1-${tag}`,
      date: "2025-06-18",
    }, "2025-06-18T10:00:00.000Z"),
    current: makeBuild(template, size, 2, "1.1.0", {
      version: `v1.20.0-${tag}`,
      date: "2026-01-10",
    }, "2026-01-10T10:00:00.000Z"),
  };
  await keepBuild(out, builds.old);
  const manifest = await keepBuild(out, builds.current);
  await Deno.writeFile(join(out, FIRMWARE_FILE), builds.current.image);
  await Deno.writeTextFile(join(out, MANIFEST_FILE), manifest);
  return builds;
}

/** A TCP and UDP port with nothing listening (right now). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Starts the fleet. Needs `--allow-net`, `--allow-read`, `--allow-write`. */
export async function startDemoFleet(options: DemoFleetOptions): Promise<DemoFleet> {
  const size = options.imageSize ?? 160 * 1024;
  const count = Math.min(options.boards ?? 3, BOARDS.length - 1);
  const upToDate = Math.min(options.upToDate ?? 1, count);
  const dir = await Deno.makeTempDir({ prefix: "yaota-dashboard-demo-" });
  const devices: VirtualDevice[] = [];
  const errors: string[] = [];
  try {
    const key = generateKey(options.bits ?? 1024);
    const keyPath = join(dir, "priv.key");
    await Deno.writeTextFile(keyPath, key.privatePem, { mode: 0o600 });

    const out = join(dir, "dist");
    const builds = await writeDemoBuilds(out, size, "demo");

    const runs = new Map<string, DemoBuild>();
    for (let i = 0; i < count; i++) {
      const flash = new Uint8Array(0x100000).fill(0xff);
      const build = i < count - upToDate ? builds.old : builds.current;
      runs.set(BOARDS[i]!.name, build);
      flash.set(build.image, DEFAULT_APP_OFFSET);
      devices.push(
        await startVirtualDevice({
          modulus: key.info.modulus,
          flash,
          profile: options.profile,
          start: "boot",
          webrepl: { password: DEMO_PASSWORD },
          onError: (e) => {
            const problem = `${BOARDS[i]!.name}: ${e instanceof Error ? e.message : String(e)}`;
            errors.push(problem);
            options.onBoardError?.(problem);
          },
        }),
      );
    }
    const offline = BOARDS[count]!;
    const config: OtaConfig = {
      key: keyPath,
      out,
      devices: [
        ...devices.map((d, i) => ({
          name: BOARDS[i]!.name,
          ip: "127.0.0.1",
          port: d.port,
          passwordEnv: DEMO_PASSWORD_ENV,
          tags: BOARDS[i]!.tags,
        })),
        {
          name: offline.name,
          ip: "127.0.0.1",
          port: freePort(),
          passwordEnv: DEMO_PASSWORD_ENV,
          tags: offline.tags,
        },
      ],
    };
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      for (const d of devices) await d.close();
      await Deno.remove(dir, { recursive: true });
    };
    return {
      dir,
      config,
      keyPath,
      env: (name) => name === DEMO_PASSWORD_ENV ? DEMO_PASSWORD : undefined,
      devices,
      offline: offline.name,
      builds,
      runs,
      errors,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (e) {
    for (const d of devices) await d.close();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}
