/**
 * The frozen `ota.py` (templates/ota.py) as a build stamps it, and as a running board
 * reports it. `build-ota` writes the build id and the optional version label into the
 * copy it freezes (`BUILD = "…"`, `VERSION = "…"`), the same way every time, so a second
 * build of the same inputs leaves the tree as it is. Over WebREPL, `import ota` then
 * tells which build a board runs; firmware without these names (or without `ota`) is an
 * "unknown build", never an error. Pure.
 */

/** What the build writes into `ota.py`. */
export interface OtaStamp {
  /** The build id (`build_id.ts`). */
  build: string;
  /** The `--version` label, if one was given. */
  version?: string;
}

/** The build a running board reports. */
export interface BoardBuild {
  /** Whether the firmware has an `ota` module at all. */
  ota: boolean;
  /** `ota.BUILD`; undefined on firmware built without one. */
  id?: string;
  /** `ota.VERSION`, the label given to build-ota. */
  version?: string;
  /**
   * `esp.flash_user_start()`: where the running image's irom ends, and with it where the
   * board's filesystem is (docs/device.md, "The board's filesystem").
   */
  flashUserStart?: number;
}

const pyString = (text: string) => JSON.stringify(text);

function setName(source: string, name: string, value: string | undefined): string {
  const line = new RegExp(`^${name} = .*$`, "m");
  const count = source.match(new RegExp(line.source, "gm"))?.length ?? 0;
  if (count !== 1) {
    throw new Error(
      `templates/ota.py must assign ${name} once at the start of a line (found ${count})`,
    );
  }
  return source.replace(line, `${name} = ${value === undefined ? "None" : pyString(value)}`);
}

/**
 * `ota.py` with `BUILD` and `VERSION` set. Rendering an already rendered file gives the
 * same text for the same stamp.
 * @throws {Error} If the template does not assign each name exactly once.
 */
export function renderOtaModule(template: string, stamp: OtaStamp): string {
  const named = setName(setName(template, "BUILD", stamp.build), "VERSION", stamp.version);
  return setName(named, "BUILD_STAMP", buildStampText(stamp));
}

const STAMP_PREFIX = "yaota-build:";

/** `BUILD_STAMP`'s value: "yaota-build:ID" or "yaota-build:ID:LABEL". Pure. */
export function buildStampText(stamp: OtaStamp): string {
  return `${STAMP_PREFIX}${stamp.build}${stamp.version === undefined ? "" : `:${stamp.version}`}`;
}

/**
 * The build an image carries, read from its bytes: a real build's frozen `ota.py` keeps
 * its strings as interned strings (NUL-terminated) in the image, a test image keeps the
 * module's source. `BUILD_STAMP` first; images frozen before it existed are read by the
 * interned name `BUILD` followed by the id. Undefined when there is neither. Pure.
 */
export function findImageBuild(image: Uint8Array): { id: string; version?: string } | undefined {
  const text = new TextDecoder("latin1").decode(image);
  const stamp = /yaota-build:([0-9a-f]{4,64})(?::([\x21\x23-\x7e]{1,64}))?(?=["\0])/.exec(text);
  if (stamp) return { id: stamp[1]!, ...(stamp[2] ? { version: stamp[2] } : {}) };
  const interned = /\0BUILD\0([0-9a-f]{12})\0/.exec(text);
  return interned ? { id: interned[1]! } : undefined;
}

/** Python for the raw REPL: one line saying what `ota` names, or that there is none. */
export const BOARD_BUILD_CODE = `try:
    import esp as _ota_e
    _ota_f = _ota_e.flash_user_start()
except (ImportError, AttributeError):
    _ota_f = None
try:
    import ota as _ota_m
    import json as _ota_j
    print("ota " + _ota_j.dumps([getattr(_ota_m, "BUILD", None), getattr(_ota_m, "VERSION", None), _ota_f]))
    del _ota_m, _ota_j
except ImportError:
    print("no-ota " + str(_ota_f))
`;

/** What `BOARD_BUILD_CODE` printed; undefined if it is not its answer. */
export function parseBoardBuild(output: string): BoardBuild | undefined {
  const line = output.trim().split("\n").at(-1)?.trim() ?? "";
  const noOta = /^no-ota(?: (\d+|None))?$/.exec(line);
  if (noOta) {
    const start = Number(noOta[1]);
    return { ota: false, ...(Number.isSafeInteger(start) ? { flashUserStart: start } : {}) };
  }
  if (!line.startsWith("ota ")) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line.slice(4));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  const [id, version, start] = value;
  return {
    ota: true,
    ...(typeof id === "string" && id !== "" ? { id } : {}),
    ...(typeof version === "string" && version !== "" ? { version } : {}),
    ...(Number.isSafeInteger(start) ? { flashUserStart: start as number } : {}),
  };
}

/** "3f2a9c1e0b7d (1.4.0)", or why there is no id. Pure. */
export function describeBoardBuild(build: BoardBuild | undefined): string {
  if (build === undefined) return "unknown build (its answer was not understood)";
  if (!build.ota) return "unknown build (no ota module)";
  if (build.id === undefined) return "unknown build";
  return build.version ? `${build.id} (${build.version})` : build.id;
}
