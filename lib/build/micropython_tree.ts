/**
 * A MicroPython source tree as the OTA build sees it: where `ports/esp8266` is, which
 * generation of the esp8266 build it has (docs/device.md, "OTA firmware image": `make ota`
 * up to 1.19; newer trees build `BOARD=ESP8266_GENERIC BOARD_VARIANT=OTA`), its version, the
 * linker script the OTA build links with, the make commands and where the image lands.
 */
import { isDir } from "../_fs.ts";
import { dirname, join, relative, resolve } from "node:path";
import { FileError, UsageError } from "../errors.ts";

/** `make-ota`: the port Makefile has an `ota:` target; `ota-variant`: a board has an OTA variant. */
export type TreeGeneration = "make-ota" | "ota-variant";

export interface MicroPythonTree {
  /** The tree's top folder (holds `py/` and `ports/`). */
  root: string;
  /** `ROOT/ports/esp8266`, where make runs. */
  port: string;
  generation: TreeGeneration;
  /** "1.19.1" from `py/mpconfig.h`, if it says. */
  version?: string;
  /** The board built: "GENERIC" (make-ota) or "ESP8266_GENERIC" (ota-variant) by default. */
  board: string;
  /** The linker script the OTA build uses, absolute. */
  linkerScript: string;
  /** `ROOT/ports/esp8266/modules`: files here are frozen into the firmware. */
  modulesDir: string;
}

const GENERIC = { "make-ota": "GENERIC", "ota-variant": "ESP8266_GENERIC" } as const;

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw e;
  }
}

/** Reads the version from `py/mpconfig.h` (`MICROPY_VERSION_MAJOR` etc.). Pure. */
export function parseMicroPythonVersion(mpconfig: string): string | undefined {
  const get = (name: string) =>
    new RegExp(`#define\\s+MICROPY_VERSION_${name}\\s+\\(?(\\d+)`).exec(mpconfig)?.[1];
  const major = get("MAJOR");
  const minor = get("MINOR");
  if (major === undefined || minor === undefined) return undefined;
  const version = `${major}.${minor}.${get("MICRO") ?? "0"}`;
  const pre = /#define\s+MICROPY_VERSION_PRERELEASE\s+\(?1\b/.test(mpconfig);
  return pre ? `${version}-preview` : version;
}

/** True when the port Makefile has an `ota:` target (MicroPython up to 1.19). Pure. */
export function hasOtaTarget(makefile: string): boolean {
  return /^ota\s*:/m.test(makefile);
}

/** The `LD_FILES=…` the OTA build links with, as the Makefile or variant names it. Pure. */
export function otaLinkerScriptName(text: string): string | undefined {
  return /LD_FILES\s*[:?]?=\s*(\S*ota\S*\.ld)/.exec(text)?.[1];
}

/**
 * Finds the MicroPython tree at `dir` (its top folder, or any folder inside it such as
 * `ports/esp8266`) and reads what the build needs from it.
 * @throws {FileError} If there is no tree there or it is not a MicroPython tree with an
 * esp8266 OTA build.
 * @throws {UsageError} If `board` has no OTA build.
 */
export async function findMicroPythonTree(dir: string, board?: string): Promise<MicroPythonTree> {
  const start = resolve(dir);
  if (!await isDir(start)) {
    throw new FileError(
      `no MicroPython tree at '${start}'. Clone one ('git clone https://github.com/micropython/micropython') ` +
        `and pass --micropython DIR, or set "micropython" in ota.config.json.`,
    );
  }
  let root: string | undefined;
  for (let d = start;; d = dirname(d)) {
    if (await isDir(join(d, "ports", "esp8266")) && await isDir(join(d, "py"))) {
      root = d;
      break;
    }
    if (dirname(d) === d) break;
  }
  if (!root) {
    throw new FileError(
      `'${start}' is not a MicroPython tree: no ports/esp8266 and py/ in it or above it. ` +
        `Pass the top folder of a MicroPython checkout with --micropython DIR.`,
    );
  }
  const port = join(root, "ports", "esp8266");
  const makefile = await readText(join(port, "Makefile"));
  if (makefile === undefined) {
    throw new FileError(`'${port}' has no Makefile: is the MicroPython checkout complete?`);
  }
  const version = parseMicroPythonVersion(await readText(join(root, "py", "mpconfig.h")) ?? "");
  if (board !== undefined && !await isDir(join(port, "boards", board))) {
    const boards: string[] = [];
    if (await isDir(join(port, "boards"))) {
      for await (const e of Deno.readDir(join(port, "boards"))) {
        if (e.isDirectory) boards.push(e.name);
      }
    }
    throw new UsageError(
      `there is no board '${board}' in ${join(port, "boards")} (there: ${
        boards.sort().join(", ") || "none"
      })`,
    );
  }
  let generation: TreeGeneration;
  let ldText: string;
  if (hasOtaTarget(makefile)) {
    generation = "make-ota";
    ldText = makefile;
  } else {
    generation = "ota-variant";
    const chosen = board ?? GENERIC["ota-variant"];
    const variant = await readText(join(port, "boards", chosen, "mpconfigvariant_OTA.mk"));
    if (variant === undefined && board !== undefined) {
      throw new UsageError(
        `the board '${board}' has no OTA variant (boards/${board}/mpconfigvariant_OTA.mk); ` +
          `build ESP8266_GENERIC (leave out --board)`,
      );
    }
    if (variant === undefined) {
      throw new FileError(
        `'${port}' has no OTA build: neither an 'ota:' target in its Makefile (MicroPython ` +
          `up to 1.19) nor boards/${chosen}/mpconfigvariant_OTA.mk (1.20 and later). ` +
          `Check out a release tag, e.g. 'git checkout v1.19.1'.`,
      );
    }
    ldText = variant;
  }
  const chosenBoard = board ?? GENERIC[generation];
  const ldName = otaLinkerScriptName(ldText) ?? "boards/esp8266_ota.ld";
  return {
    root,
    port,
    generation,
    version,
    board: chosenBoard,
    linkerScript: resolve(port, ldName),
    modulesDir: join(port, "modules"),
  };
}

/** The make commands, run in `ports/esp8266`: `mpy-cross` first, then the OTA image. Pure. */
export function makeCommands(tree: MicroPythonTree, boardGiven: boolean): string[][] {
  const mpyCross = ["make", "-C", relative(tree.port, join(tree.root, "mpy-cross"))];
  if (tree.generation === "make-ota") {
    return [mpyCross, boardGiven ? ["make", `BOARD=${tree.board}`, "ota"] : ["make", "ota"]];
  }
  return [mpyCross, ["make", `BOARD=${tree.board}`, "BOARD_VARIANT=OTA"]];
}

/** Where the build may have written the OTA image, most likely first, absolute. Pure. */
export function imageCandidates(tree: MicroPythonTree): string[] {
  const names = tree.generation === "make-ota"
    ? [`build-${tree.board}/firmware-ota.bin`, "build/firmware-ota.bin"]
    : [
      `build-${tree.board}-OTA/firmware.bin`,
      `build-${tree.board}-OTA/firmware-ota.bin`,
      `build-${tree.board}-OTA/firmware-combined.bin`,
    ];
  return names.map((n) => join(tree.port, n));
}

/**
 * What to delete before make so that it relinks with the new linker script and the
 * image it leaves is this build's: the firmware's ELF does not depend on the linker
 * script, so make would otherwise keep an image linked for the old offset. Absolute. Pure.
 */
export function staleBuildOutputs(tree: MicroPythonTree): string[] {
  const images = imageCandidates(tree);
  const elves = [...new Set(images.map((p) => join(dirname(p), "firmware.elf")))];
  return [...images, ...elves];
}
