/**
 * `scan --add` on disk: the config file with the new boards added (`config_add.ts`),
 * the file as it was first kept once as FILE.orig, written whole through a temporary
 * file so that a crash never leaves half a config. Needs `--allow-read --allow-write`.
 */
import type { DeviceEntry } from "../config/config.ts";
import { addDevicesToConfigText, type FoundBoard, newEntries } from "./config_add.ts";
import { FileError } from "../errors.ts";

export interface AddedBoards {
  file: string;
  /** The entries written (empty when every board was listed already). */
  entries: DeviceEntry[];
  /** FILE.orig, when this edit made it. */
  backup?: string;
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new FileError(`cannot read '${path}': ${(e as Error).message}`);
  }
}

/** Adds the boards not listed yet in `file` (whose entries are `existing`). */
export async function addBoardsToConfig(
  file: string,
  boards: readonly FoundBoard[],
  options: { existing: readonly DeviceEntry[]; defaultPort: number },
): Promise<AddedBoards> {
  const entries = newEntries(boards, options.existing, options.defaultPort);
  if (!entries.length) return { file, entries };
  const text = await readIfThere(file);
  const edited = addDevicesToConfigText(text ?? "", entries);
  let backup: string | undefined;
  try {
    if (text !== undefined && await readIfThere(`${file}.orig`) === undefined) {
      await Deno.writeTextFile(`${file}.orig`, text, { createNew: true });
      backup = `${file}.orig`;
    }
    const temp = `${file}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    const mode = text === undefined ? undefined : (await Deno.stat(file)).mode ?? undefined;
    await Deno.writeTextFile(temp, edited, { createNew: true, ...(mode ? { mode } : {}) });
    if (mode) await Deno.chmod(temp, mode & 0o777);
    await Deno.rename(temp, file);
  } catch (e) {
    throw new FileError(`cannot write '${file}': ${(e as Error).message}`);
  }
  return { file, entries, ...(backup ? { backup } : {}) };
}
