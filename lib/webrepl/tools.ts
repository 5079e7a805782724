/**
 * What the `put` and `get` tasks do on one board, mpremote's way: check first (is the
 * folder there, is the file there, is it a file), then transfer with WebREPL's file
 * protocol (`webrepl_transfer.ts`), then check the size the board reports. The board
 * drops the connection when it cannot open a file, so the checks run first and name
 * the problem instead.
 */
import { OtaError, UsageError } from "../errors.ts";
import {
  baseName,
  type CodeRunner,
  remoteDirname,
  RemoteFileError,
  remoteJoin,
  removeQuietly,
  renameRemote,
  statRemote,
} from "./remote_fs.ts";
import { checkRemoteName } from "./file_records.ts";
import {
  type BinaryChannel,
  getFile,
  MAX_FILE_BYTES,
  putFile,
  transferAllowanceMs,
  type TransferOptions,
} from "./file_transfer.ts";
import { DEFAULT_TIMEOUT_MS } from "./connection.ts";

/** A logged-in session: code and files (a `WebReplClient`). */
export type BoardSession = CodeRunner & BinaryChannel;

/**
 * `FILE[:REMOTE]` split in two. A colon after a one-letter drive (`C:\x.py`) is part
 * of the local name. Pure.
 * @throws {UsageError} If FILE is empty.
 */
export function parsePutSpec(spec: string): { local: string; remote?: string } {
  const drive = /^[A-Za-z]:[\\/]/.test(spec) ? 2 : 0;
  const colon = spec.indexOf(":", drive);
  const local = colon < 0 ? spec : spec.slice(0, colon);
  const remote = colon < 0 ? undefined : spec.slice(colon + 1);
  if (local === "") throw new UsageError(`put: no local file in '${spec}' (FILE[:REMOTE])`);
  return remote === undefined || remote === "" ? { local } : { local, remote };
}

/**
 * Where a put of `local` goes: `remote` as given, or inside it when it ends with `/` or
 * is a folder on the board, or the local file's name in the board's current folder.
 * Checks that the folder exists and the name fits in WebREPL's record.
 * @throws {RemoteFileError} If the folder is missing or is a file, or the target is a folder.
 * @throws {UsageError} If the name is over 63 bytes.
 */
export async function resolvePutTarget(
  session: CodeRunner,
  local: string,
  remote: string | undefined,
): Promise<string> {
  let target = remote ?? baseName(local);
  if (target.endsWith("/")) target = remoteJoin(target, baseName(local));
  else if (remote !== undefined && (await statRemote(session, target)).kind === "dir") {
    target = remoteJoin(target, baseName(local));
  }
  const problem = checkRemoteName(target);
  if (problem) throw new UsageError(problem);
  const folder = remoteDirname(target);
  if (folder !== "" && folder !== "/") {
    const stat = await statRemote(session, folder);
    if (stat.kind === "missing") {
      throw new RemoteFileError(
        `no folder '${folder}' on ${session.address}: create it first, e.g. ` +
          `\`deno task exec --ip ${
            session.address.replace(/:\d+$/, "")
          } "import os; os.mkdir('${folder}')"\``,
      );
    }
    if (stat.kind === "file") {
      throw new RemoteFileError(`'${folder}' on ${session.address} is a file, not a folder`);
    }
  }
  if ((await statRemote(session, target)).kind === "dir") {
    throw new RemoteFileError(`'${target}' on ${session.address} is a folder`);
  }
  return target;
}

/** What a put writes first, in the target's folder, and renames once it is whole. */
export const PUT_TEMP_NAME = ".yaota-put.part";

/**
 * Copies `data` to the board as `remote` (see `resolvePutTarget`): to `PUT_TEMP_NAME` in
 * the same folder first, then, once the board reports the whole size, renamed over the
 * target, so a failed or interrupted put leaves the board's file as it was. Where that
 * name does not fit WebREPL's record (a deep folder), the file is written in place, and
 * a failure says that it was emptied and may be partial. Returns the path written.
 * @throws {RemoteFileError} If the folder is missing, the board cannot open the file, or
 *   stores fewer bytes than sent (a full file system: the board does not say so).
 * @throws {WebReplError} If the transfer fails; the message says what the board now holds.
 */
export async function putToBoard(
  session: BoardSession,
  local: string,
  data: Uint8Array,
  remote: string | undefined,
  options: TransferOptions & {
    /** Before the first byte is written: what the board holds if the put stops from now on. */
    onWriting?: (ifStopped: string) => void;
  } = {},
): Promise<string> {
  const target = await resolvePutTarget(session, local, remote);
  const temp = remoteJoin(remoteDirname(target), PUT_TEMP_NAME);
  const inPlace = checkRemoteName(temp) !== undefined;
  const written = inPlace ? target : temp;
  const state = inPlace ? partialNote(session.address, target) : keptNote(target, temp);
  options.onWriting?.(state);
  try {
    await putFile(session, written, data, options);
  } catch (e) {
    throw withNote(e, state);
  }
  const after = await statRemote(session, written).catch((e) => {
    throw withNote(e, state);
  });
  const stored = after.kind === "file" ? after.size : 0;
  if (stored !== data.length) {
    if (!inPlace) await removeQuietly(session, temp);
    throw new RemoteFileError(
      `${session.address} holds ${stored} bytes in '${written}' after the put of ${data.length}: ` +
        "is its file system full? (the board does not report a failed write); " +
        (inPlace ? state : `'${target}' is unchanged`),
    );
  }
  if (!inPlace) {
    await renameRemote(session, temp, target).catch((e) => {
      throw withNote(
        e,
        `the whole file is on the board as '${temp}'; '${target}' may be missing (rename it ` +
          "by hand, or put again)",
      );
    });
  }
  return target;
}

function keptNote(target: string, temp: string): string {
  return `the board's '${target}' is unchanged (the bytes went to '${temp}' first, which ` +
    "may be left over: rm removes it); put again";
}

function partialNote(address: string, target: string): string {
  return `'${target}' on ${address} was emptied when the put began and may now hold part of ` +
    "the file (its folder's name is too long for a temporary copy beside it): put it again";
}

/** `e` with `note` added to its message, of the same class. */
function withNote(e: unknown, note: string): unknown {
  if (!(e instanceof OtaError)) return e;
  const Class = e.constructor as new (message: string, options?: ErrorOptions) => OtaError;
  return new Class(`${e.message}; ${note}`, { cause: e });
}

/**
 * Reads the board's file `remote`, after checking that it is one; the bytes read must
 * match the size the board reported.
 * @throws {RemoteFileError} If there is no such file, it is a folder, or the size differs.
 */
export async function getFromBoard(
  session: BoardSession,
  remote: string,
  options: TransferOptions = {},
): Promise<Uint8Array> {
  const problem = checkRemoteName(remote);
  if (problem) throw new UsageError(problem);
  const stat = await statRemote(session, remote);
  if (stat.kind === "missing") {
    throw new RemoteFileError(
      `no file '${remote}' on ${session.address} (list the files with 'deno task ls')`,
    );
  }
  if (stat.kind === "dir") {
    throw new RemoteFileError(`'${remote}' on ${session.address} is a folder, not a file`);
  }
  if (stat.size > MAX_FILE_BYTES) {
    throw new RemoteFileError(
      `${session.address} reports '${remote}' as ${stat.size} bytes, more than an ESP8266's ` +
        `file system holds (${MAX_FILE_BYTES}): not fetched`,
    );
  }
  const data = await getFile(session, remote, {
    ...options,
    expectedSize: stat.size,
    deadline: Date.now() + transferAllowanceMs(stat.size, session.timeoutMs ?? DEFAULT_TIMEOUT_MS),
  });
  if (data.length !== stat.size) {
    throw new RemoteFileError(
      `${session.address} sent ${data.length} bytes of '${remote}', but reports ${stat.size}`,
    );
  }
  return data;
}
