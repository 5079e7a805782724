/**
 * A deploy must not move a board's filesystem by accident. MicroPython mounts it where
 * the running image's irom ends (`esp.flash_user_start()`, docs/device.md "The board's
 * filesystem"); an image linked with a larger irom looks for it elsewhere, finds none and
 * formats a new one: main.py, the user's data and webrepl_cfg.py are gone, and without
 * the last the board can no longer be triggered over WebREPL. So an image whose manifest
 * names another start than the board reports is refused unless the user says so for this
 * deploy. Pure.
 */
import type { BoardBuild } from "../format/ota_module.ts";
import type { BuildStamp } from "../build/build_id.ts";
import { UnsafeImageError } from "../errors.ts";
import { formatHex } from "../_bytes.ts";

/** Why `image` must not go to the board that answered `board`; undefined when it may. */
export function filesystemMoveProblem(
  board: BoardBuild | undefined,
  image: BuildStamp | undefined,
  allow: boolean,
  where: string,
): UnsafeImageError | undefined {
  const now = board?.flashUserStart;
  const next = image?.flashUserStart;
  if (allow || now === undefined || next === undefined || now === next) return undefined;
  return new UnsafeImageError(
    `${where}: the new image would move the board's filesystem: it runs an image whose ` +
      `flash_user_start is ${formatHex(now)}, the new one's is ${formatHex(next)} (see its ` +
      "manifest). MicroPython would not find the filesystem there and format a new one: " +
      "main.py, the board's data and webrepl_cfg.py (without which it can no longer be " +
      "triggered) would be lost. Build without --move-filesystem-to, or copy the board's " +
      "files off first and deploy with --allow-filesystem-move.",
  );
}
