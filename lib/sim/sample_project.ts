/**
 * A project to try the toolchain on with no Docker and no board (`demo --keep DIR`): a key
 * pair, a build folder as `build-ota` leaves it (the current build, its manifest and two
 * kept releases, each image with a frozen `ota.py` naming its build), the flash of two
 * virtual boards that run the older build, and an `ota.config.json` naming those boards.
 * `sim --config DIR/ota.config.json --device NAME --flash DIR/boards/NAME.flash --boot`
 * then starts each board where the config says it is.
 */
import { join } from "node:path";
import { FileError } from "../errors.ts";
import { generateKey } from "../format/keys.ts";
import { DEFAULT_APP_OFFSET } from "../format/image.ts";
import { writeKeyPair } from "../setup/keygen.ts";
import { type DemoBuild, writeDemoBuilds } from "./demo_fleet.ts";
import { markFlashDump } from "./flash_dump.ts";

/** The variable the sample config names for the boards' WebREPL password. */
export const SAMPLE_PASSWORD_ENV = "YAOTA_SAMPLE_PW";
const FLASH_SIZE = 0x100000;
const BOARDS = [
  { name: "kitchen", tags: ["sensor"] },
  { name: "garage", tags: ["sensor", "door"] },
];

export interface SampleProject {
  dir: string;
  config: string;
  boards: { name: string; port: number; flash: string }[];
  builds: { old: DemoBuild; current: DemoBuild };
}

/** A port nothing listens on now, TCP and UDP, chosen by the system. */
function freePort(): number {
  const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (tcp.addr as Deno.NetAddr).port;
  tcp.close();
  return port;
}

/** Throws unless `dir` is absent or empty: a sample never overwrites anything. */
async function checkEmpty(dir: string): Promise<void> {
  try {
    for await (const _ of Deno.readDir(dir)) {
      throw new FileError(
        `'${dir}' is not empty: the sample project goes into a new folder (name another one)`,
      );
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (e instanceof Deno.errors.NotADirectory) {
      throw new FileError(`'${dir}' is a file: name a new folder for the sample project`);
    }
    throw e;
  }
}

/**
 * Writes the sample project into `dir` (absent or empty). Needs read, write and net (to
 * choose two free ports).
 * @throws {FileError} If `dir` holds anything.
 */
export async function writeSampleProject(
  dir: string,
  options: { bits?: number; imageSize?: number } = {},
): Promise<SampleProject> {
  await checkEmpty(dir);
  await Deno.mkdir(join(dir, "boards"), { recursive: true });
  await writeKeyPair(
    { privateKey: join(dir, "keys", "priv.key"), publicKey: join(dir, "keys", "pub.key") },
    generateKey(options.bits ?? 1024),
    false,
  );
  const builds = await writeDemoBuilds(join(dir, "dist"), options.imageSize ?? 96 * 1024, "sample");

  const boards: SampleProject["boards"] = [];
  for (const board of BOARDS) {
    let port = freePort();
    while (boards.some((b) => b.port === port)) port = freePort();
    const flash = new Uint8Array(FLASH_SIZE).fill(0xff);
    flash.set(builds.old.image, DEFAULT_APP_OFFSET);
    const path = join(dir, "boards", `${board.name}.flash`);
    await Deno.writeFile(path, flash);
    await markFlashDump(path, FLASH_SIZE);
    boards.push({ name: board.name, port, flash: path });
  }
  const config = {
    key: "keys/priv.key",
    out: "dist",
    devices: BOARDS.map((b, i) => ({
      name: b.name,
      ip: "127.0.0.1",
      port: boards[i]!.port,
      passwordEnv: SAMPLE_PASSWORD_ENV,
      tags: b.tags,
    })),
  };
  const configPath = join(dir, "ota.config.json");
  await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2) + "\n");
  return { dir, config: configPath, boards, builds };
}
