/**
 * A failed make, read for the failures a user can act on: the image does not fit the
 * irom region (docs/device.md, "The board's filesystem"), the cross compiler's C library
 * headers in the wrong order, objects left by another toolchain. Each becomes an error
 * naming the cause and the remedies; anything else stays make's own error. Pure.
 */
import { ContainerRuntimeError, FileError } from "../errors.ts";
import { formatHex } from "../_bytes.ts";
import { formatBytes } from "../_units.ts";

/** The image is larger than the irom region the layout leaves it. */
export class FirmwareTooLargeError extends FileError {
  constructor(message: string, readonly bytesOver: number) {
    super(message);
  }
}

/** What the remedies are worked out from. */
export interface OverflowContext {
  /** Frozen modules and their sizes in bytes (sources). */
  modules: { name: string; size: number }[];
  /** The boards of the tree, and the one built. */
  boards: string[];
  board: string;
  /** `MICROPY_…` features the OTA variant turns on with `?= 1` (make may override them). */
  features: string[];
  /** Where the board's filesystem starts with this layout, and the flash size. */
  filesystemStart: number;
  flashSize: number;
}

const OVERFLOW = /region [`']irom0_0_seg' overflowed by (\d+) bytes?/;
const ASSERT_CLASH =
  /__assert\b.*(conflicting types|redefinition|expected)|(conflicting types|redefinition) for '__assert'/;
const STALE_OBJECTS = /undefined reference to [`']errno'/;

/** The bytes the irom overflowed by, from make's output. */
export function irom0Overflow(lines: readonly string[]): number | undefined {
  for (const line of lines) {
    const m = OVERFLOW.exec(line);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** The filesystem start that leaves `over` more bytes of irom, sector-aligned. */
export function movedFilesystemStart(start: number, over: number): number {
  return Math.ceil((start + over) / 0x1000) * 0x1000;
}

/** The refusal for an image `over` bytes too large, with every remedy that applies. */
export function tooLargeError(over: number, ctx: OverflowContext): FirmwareTooLargeError {
  const remedies: string[] = [];
  const user = ctx.modules.filter((m) => m.name !== "ota.py").sort((a, b) => b.size - a.size);
  if (user.length) {
    remedies.push(
      `freeze fewer or smaller modules (${
        user.map((m) => `${m.name} ${formatBytes(m.size)} of source`).join(", ")
      }); a module left out can live in the board's filesystem instead`,
    );
  }
  const oneMeg = ctx.boards.find((b) => /_1M$/.test(b) && b !== ctx.board);
  if (oneMeg) {
    remedies.push(
      `build the 1 MiB board configuration, which leaves out features: --board ${oneMeg}`,
    );
  }
  if (ctx.features.length) {
    remedies.push(
      `a smaller feature set: turn off what the boards do not use, e.g. ${
        ctx.features.map((f) => `--make-var ${f}=0`).join(" or ")
      }`,
    );
  }
  const moved = movedFilesystemStart(ctx.filesystemStart, over);
  remedies.push(
    `only if every board may lose its files (main.py, data and webrepl_cfg.py: without the last ` +
      `it can no longer be triggered over WebREPL): --move-filesystem-to ${formatHex(moved)}`,
  );
  return new FirmwareTooLargeError(
    `the firmware does not fit: region irom0_0_seg overflowed by ${over} bytes. The irom ` +
      `ends where the board's filesystem starts (${formatHex(ctx.filesystemStart)}), and a ` +
      `larger irom would move it: a board whose filesystem cannot be mounted formats a new ` +
      `one. Nothing was collected. Remedies: ${
        remedies.map((r, i) => `(${i + 1}) ${r}`).join("; ")
      }.`,
    over,
  );
}

/**
 * The error to show for a failed make: a known cause with its remedy, or `error` itself.
 */
export function explainMakeFailure(
  error: ContainerRuntimeError,
  ctx: OverflowContext,
): Error {
  const lines = error.outputTail;
  const over = irom0Overflow(lines);
  if (over !== undefined) return tooLargeError(over, ctx);
  if (lines.some((l) => ASSERT_CLASH.test(l))) {
    return new ContainerRuntimeError(
      `${error.message}\nThe compiler finds picolibc's assert.h before newlib's, and it clashes ` +
        "with MicroPython's __assert. Put newlib's headers first: a compiler wrapper that adds " +
        "'-isystem /usr/include/newlib' (Debian's gcc-xtensa-lx106 with libnewlib-dev), or " +
        "build in the image docker/Dockerfile makes (--runtime docker).",
      error.exitCode,
      lines,
    );
  }
  if (lines.some((l) => STALE_OBJECTS.test(l))) {
    return new ContainerRuntimeError(
      `${error.message}\nObjects compiled by another compiler or with other flags were linked: ` +
        "run again with --clean.",
      error.exitCode,
      lines,
    );
  }
  return error;
}
