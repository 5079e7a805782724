/**
 * The toolchain of an OTA build: which cross compiler the runtime has (`xtensa-lx106-elf-gcc
 * -dumpversion`, run where make will run), the container image's digest, and the extra
 * compiler flags a MicroPython release needs with that compiler (MicroPython's Makefile
 * appends `CFLAGS_EXTRA`). Releases up to 1.27 were written for GCC 4.8 (esp-open-sdk);
 * a current distribution's GCC 12 stops on them:
 * - GCC ≥ 10 defaults to `-fno-common`: `multiple definition of 'pyb_pin_obj'` (1.19):
 *   `-fcommon`.
 * - GCC 12: `esp_mphal.c: arrays of functions are not meaningful` / `-Werror=array-bounds`:
 *   `-Wno-array-bounds`.
 * - GCC 12 with ESP-NOW (modespnow.c): `'MAX_PACKET_LEN' defined but not used`:
 *   `-Wno-error=unused-const-variable`.
 * All of it goes into the build id and the manifest (build_id.ts): a change of compiler,
 * flags or image cleans the port's build folder (build_clean.ts).
 */
import {
  type CommandLine,
  commandLine,
  currentUser,
  type Probe,
  type Runtime,
} from "./container.ts";

export interface Toolchain {
  /** "12.2.0", or undefined when the compiler could not be asked. */
  compilerVersion?: string;
  /** The container image's id ("sha256:…"); undefined for native or when unknown. */
  imageDigest?: string;
  /** What goes into `CFLAGS_EXTRA`, in order. */
  cflagsExtra: string[];
  /** Why each flag is there, for the log. */
  reasons: string[];
}

export const COMPILER = "xtensa-lx106-elf-gcc";

/** The command line that asks the compiler its version, where make will run. Pure. */
export function compilerVersionCommand(
  runtime: Runtime,
  image: string,
  root: string,
  workdir: string,
): CommandLine {
  return commandLine(
    { runtime, image, mount: root, user: currentUser() },
    workdir,
    [COMPILER, "-dumpversion"],
  );
}

/** "12.2.0" from `-dumpversion`'s output (its last line that looks like a version). Pure. */
export function parseCompilerVersion(output: string): string | undefined {
  return output.trim().split("\n").map((l) => l.trim()).filter((l) => /^\d+(\.\d+)*$/.test(l))
    .at(-1);
}

/**
 * The flags `CFLAGS_EXTRA` needs for this compiler and tree (see top). `hasEspNow`: the
 * port has modespnow.c. Pure.
 * @example
 * ```ts
 * import { flagsFor } from "./toolchain.ts";
 * const { flags } = flagsFor("12.2.0", true);
 * if (flags.join(" ") !== "-fcommon -Wno-array-bounds -Wno-error=unused-const-variable") {
 *   throw new Error(flags.join(" "));
 * }
 * ```
 */
export function flagsFor(
  compilerVersion: string | undefined,
  hasEspNow: boolean,
): { flags: string[]; reasons: string[] } {
  const major = Number(compilerVersion?.split(".")[0] ?? NaN);
  const flags: string[] = [];
  const reasons: string[] = [];
  if (!(major >= 10)) return { flags, reasons };
  flags.push("-fcommon");
  reasons.push(
    `-fcommon: GCC ${major} defaults to -fno-common, these sources define globals twice`,
  );
  if (major >= 12) {
    flags.push("-Wno-array-bounds");
    reasons.push(`-Wno-array-bounds: GCC ${major} flags esp_mphal.c's ROM function tables`);
    if (hasEspNow) {
      flags.push("-Wno-error=unused-const-variable");
      reasons.push(
        `-Wno-error=unused-const-variable: GCC ${major} stops on modespnow.c's unused MAX_PACKET_LEN`,
      );
    }
  }
  return { flags, reasons };
}

/**
 * Asks the runtime for its compiler's version and the image's digest (a probe that fails
 * leaves the value unknown), and works out the flags.
 */
export async function detectToolchain(
  settings: { runtime: Runtime; image: string; root: string; workdir: string },
  hasEspNow: boolean,
  probe: Probe,
): Promise<Toolchain> {
  const line = compilerVersionCommand(
    settings.runtime,
    settings.image,
    settings.root,
    settings.workdir,
  );
  const version = await probe(line.argv).then(
    (r) => r.code === 0 ? parseCompilerVersion(r.output) : undefined,
    () => undefined,
  );
  let imageDigest: string | undefined;
  if (settings.runtime !== "native") {
    const r = await probe(
      [settings.runtime, "image", "inspect", "--format", "{{.Id}}", settings.image],
    ).catch(() => undefined);
    const id = r?.code === 0 ? r.output.trim().split("\n").at(-1)?.trim() : undefined;
    if (id && /^sha256:[0-9a-f]{64}$/.test(id)) imageDigest = id;
  }
  const { flags, reasons } = flagsFor(version, hasEspNow);
  return {
    ...(version ? { compilerVersion: version } : {}),
    ...(imageDigest ? { imageDigest } : {}),
    cflagsExtra: flags,
    reasons,
  };
}

/** `CFLAGS_EXTRA=…` for the make command line, or nothing. Pure. */
export function cflagsArgument(toolchain: Toolchain): string[] {
  return toolchain.cflagsExtra.length ? [`CFLAGS_EXTRA=${toolchain.cflagsExtra.join(" ")}`] : [];
}
