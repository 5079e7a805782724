/**
 * A MicroPython source tree as the OTA build sees it: where `ports/esp8266` is, which
 * generation of the esp8266 build it has (docs/device.md, "OTA firmware image"), its
 * version, the linker script the OTA build links with, the make commands and where the
 * image lands. The generations:
 * - 1.15–1.20: the port Makefile's `ota:` target (`make ota`).
 * - 1.21–1.23: `BOARD_VARIANT=OTA`, defined inside `boards/ESP8266_GENERIC/mpconfigboard.mk`
 *   (`ifeq ($(BOARD_VARIANT),OTA)`).
 * - 1.24–1.27: the same, defined in `boards/ESP8266_GENERIC/mpconfigvariant_OTA.mk`.
 * From 1.21 the variant's image rule concatenates `$(YAOTA8266)/yaota8266.bin` with the
 * image and signs the result with yaota8266's client: the build asks make for the image
 * itself (`firmware-ota.bin`), never that rule.
 * - 1.28 removed the OTA variant: refused.
 */
import { isDir } from "../_fs.ts";
import { dirname, join, relative, resolve } from "node:path";
import { FileError, UsageError } from "../errors.ts";

/** `make-ota`: the port Makefile has an `ota:` target; `ota-variant`: a board has an OTA variant. */
export type TreeGeneration = "make-ota" | "ota-variant";

/** The last MicroPython release with an ESP8266 OTA build (1.28 removed the variant). */
export const LAST_OTA_RELEASE = "1.27.0";

/** The make goal that writes only the OTA image, for trees whose variant concatenates (see top). */
export const OTA_IMAGE_GOAL = "yaota-ota-image";

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
  /** The file that defines the OTA variant (relative to the port), for ota-variant trees. */
  variantFile?: string;
  /** True when the variant's image rule concatenates the bootloader and signs (1.21+). */
  concatenates?: boolean;
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
  let variantFile: string | undefined;
  if (hasOtaTarget(makefile)) {
    generation = "make-ota";
    ldText = makefile;
  } else {
    generation = "ota-variant";
    const chosen = board ?? GENERIC["ota-variant"];
    const found = await findOtaVariant(port, chosen);
    if (found === undefined) throw noOtaBuild(port, chosen, version, board !== undefined);
    ({ text: ldText, file: variantFile } = found);
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
    ...(variantFile === undefined ? {} : {
      variantFile,
      concatenates: /\$[({]YAOTA8266[)}]/.test(makefile),
    }),
  };
}

/** `ifeq ($(BOARD_VARIANT),OTA)` … `endif` of a board's mpconfigboard.mk (1.21–1.23). Pure. */
export function inBoardOtaVariant(mk: string): string | undefined {
  return /^ifeq\s*\(\s*\$\(BOARD_VARIANT\)\s*,\s*OTA\s*\)\s*$([\s\S]*?)^endif/m.exec(mk)?.[1];
}

/** Where a board defines its OTA variant: its own file (1.24+) or inside mpconfigboard.mk. */
async function findOtaVariant(
  port: string,
  board: string,
): Promise<{ text: string; file: string } | undefined> {
  const own = `boards/${board}/mpconfigvariant_OTA.mk`;
  const text = await readText(join(port, own));
  if (text !== undefined) return { text, file: own };
  const boardMk = `boards/${board}/mpconfigboard.mk`;
  const inBoard = inBoardOtaVariant(await readText(join(port, boardMk)) ?? "");
  return inBoard === undefined ? undefined : { text: inBoard, file: boardMk };
}

/** "1.28.0" and later: after the last release with OTA. Pure. */
function afterLastOtaRelease(version: string | undefined): boolean {
  const [major = 0, minor = 0] = (version ?? "").split(/[.-]/).map(Number);
  return major > 1 || (major === 1 && minor >= 28);
}

/** Why a tree has no OTA build, and what to check out instead. Pure. */
function noOtaBuild(
  port: string,
  board: string,
  version: string | undefined,
  boardGiven: boolean,
): FileError | UsageError {
  if (afterLastOtaRelease(version)) {
    return new FileError(
      `MicroPython ${version} has no ESP8266 OTA build: 1.28 removed the OTA board variant ` +
        `(and with it the yaota8266 support), so ${LAST_OTA_RELEASE} is the last release ` +
        `with one. Check out that release ('git checkout v${LAST_OTA_RELEASE}', then ` +
        "'git submodule update --init') and build again.",
    );
  }
  const where = `neither boards/${board}/mpconfigvariant_OTA.mk (1.24–1.27) nor an ` +
    `'ifeq ($(BOARD_VARIANT),OTA)' block in boards/${board}/mpconfigboard.mk (1.21–1.23)`;
  if (boardGiven && board !== GENERIC["ota-variant"]) {
    return new UsageError(
      `the board '${board}' has no OTA variant (${where}): only ` +
        `${GENERIC["ota-variant"]} has one; leave out --board`,
    );
  }
  return new FileError(
    `'${port}' has no OTA build: neither an 'ota:' target in its Makefile (MicroPython ` +
      `1.15–1.20) nor an OTA variant of ${board} (${where}). Check out a release that has ` +
      `one, e.g. 'git checkout v${LAST_OTA_RELEASE}'.`,
  );
}

/** The make commands, run in `ports/esp8266`: `mpy-cross` first, then the OTA image. Pure. */
export function makeCommands(tree: MicroPythonTree, boardGiven: boolean): string[][] {
  const mpyCross = ["make", "-C", relative(tree.port, join(tree.root, "mpy-cross"))];
  if (tree.generation === "make-ota") {
    return [mpyCross, boardGiven ? ["make", `BOARD=${tree.board}`, "ota"] : ["make", "ota"]];
  }
  const variant = ["make", `BOARD=${tree.board}`, "BOARD_VARIANT=OTA"];
  if (!tree.concatenates) return [mpyCross, variant];
  return [mpyCross, [...variant, `--eval=${otaImageRule(tree)}`, OTA_IMAGE_GOAL]];
}

/**
 * A make rule that writes the image the way the port's non-OTA rule does, to
 * `$(BUILD)/firmware-ota.bin`, without the bootloader and the signing step the OTA
 * variant's own rule adds (see top). `--eval` is read before the Makefile, so the
 * prerequisite names the build folder itself; the recipe expands later. 1.21–1.24 call
 * `esptool.py` by name, 1.25 on through `$(ESPTOOL)`: the recipe takes either. Pure.
 */
export function otaImageRule(tree: MicroPythonTree): string {
  return `${OTA_IMAGE_GOAL}: build-${tree.board}-OTA/firmware.elf ; ` +
    "$(or $(ESPTOOL),esptool.py) elf2image $< && " +
    "$(PYTHON) makeimg.py $(BUILD)/firmware.elf-0x00000.bin " +
    "$(BUILD)/firmware.elf-0x[0-5][1-f]000.bin $(BUILD)/firmware-ota.bin";
}

/** Where the build may have written the OTA image, most likely first, absolute. Pure. */
export function imageCandidates(tree: MicroPythonTree): string[] {
  const names = tree.generation === "make-ota"
    ? [`build-${tree.board}/firmware-ota.bin`, "build/firmware-ota.bin"]
    : tree.concatenates
    // firmware.bin, when an earlier make left it, is bootloader + app: never collected.
    ? [`build-${tree.board}-OTA/firmware-ota.bin`]
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
