/**
 * What a running board says about itself over WebREPL: `os.uname()` (the MicroPython
 * version) and the build its frozen `ota` module names (`ota_module.ts`). Firmware
 * without an id is an unknown build, never an error.
 */
import type { BoardBuild } from "../format/ota_module.ts";
import { BOARD_BUILD_CODE, parseBoardBuild } from "../format/ota_module.ts";
import { readUname, type RunningVersion, type WebReplTarget } from "../webrepl/trigger.ts";
import { WebReplClient } from "../webrepl/client.ts";

export interface BoardState {
  uname: RunningVersion;
  /** Undefined when the board's answer was not understood. */
  build?: BoardBuild;
}

/** `import ota` over an open session: the build it names. Undefined if it answers oddly. */
export async function readBoardBuild(repl: WebReplClient): Promise<BoardBuild | undefined> {
  const r = await repl.exec(BOARD_BUILD_CODE);
  return r.error ? undefined : parseBoardBuild(r.output);
}

/**
 * Logs in, reads `os.uname()` and the build, logs out. Needs `--allow-net`.
 * @throws {WebReplError | DeviceUnreachableError} See `WebReplClient.connect`.
 */
export async function readBoardState(target: WebReplTarget): Promise<BoardState> {
  await using repl = await WebReplClient.connect(target);
  const uname = await readUname(repl);
  const build = await readBoardBuild(repl);
  return { uname, ...(build ? { build } : {}) };
}
