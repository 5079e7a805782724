/**
 * `repl`: the board's REPL in the terminal, as mpremote and webrepl_cli.py give it.
 * What is typed goes to the board as text frames; what the board prints comes back
 * unchanged. Ctrl-] leaves. From a terminal (raw mode) every key is passed on, Ctrl-C
 * included; from a pipe, line ends become `\r` (the board ends a line only on `\r`),
 * and at the end of the input the session waits for the board to finish and show a
 * prompt before leaving.
 *
 * A soft reboot (Ctrl-D at a prompt) may end WebREPL's link to the REPL while the socket
 * stays open: the board then sends nothing more (docs/device.md, "WebREPL", "Soft reboot"). After one, a board silent for
 * `rebootWaitMs` with no new prompt is taken as that: the user is told, and offered a
 * reconnect (Enter), or, from a pipe, the session ends with an error.
 */
import { WebReplError } from "../errors.ts";
import { CTRL_D, REPL_PROMPT } from "../webrepl/protocol.ts";
import { formatSeconds } from "../_units.ts";

/** Ctrl-]: leaves the session (telnet's and mpremote's escape). */
export const LEAVE_KEY = 0x1d;
/** What the board sends after the password: login consumes it, the terminal shows the prompt. */
export const LOGIN_PROMPT = REPL_PROMPT;
/** How long the board must stay quiet at a prompt, after the input ends, before leaving. */
export const SETTLE_MS = 150;
/** After a soft reboot, how long a silent board without a new prompt is given. */
export const REBOOT_WAIT_MS = 3000;
/**
 * The board waits for input: friendly (`>>> `; `... ` and the spaces it types to
 * auto-indent), paste (`=== `) or raw (`>`) prompt.
 */
// deno-lint-ignore no-control-regex
const PROMPT_AT_END = /(?:>>> |\.\.\. +|=== |(?:\x04|\n)>)$/;
/** Where Ctrl-D soft-reboots: at an empty friendly or raw prompt (not in paste mode). */
// deno-lint-ignore no-control-regex
const REBOOT_PROMPT = /(?:>>> |(?:\x04|\n)>)$/;
/** What MicroPython prints when it soft-reboots. */
const SOFT_REBOOT = /soft reboot/;

/** A logged-in session (a `WebReplClient`). */
export interface TerminalPeer {
  readonly address: string;
  type(text: string): Promise<void>;
  readText(waitMs: number): Promise<string | undefined>;
}

export interface TerminalIO {
  /** What the user types, in chunks (stdin). */
  input: AsyncIterable<Uint8Array>;
  /** Shows the board's output (stdout). */
  write(text: string): Promise<void>;
  /** Whether the input is a terminal in raw mode (else a pipe or a file). */
  interactive: boolean;
  /** Tells the user something that is not the board's (stderr); default: `write`. */
  notice?(text: string): void;
}

/** How the session ended; "reconnect": the session died and the user asked for a new one. */
export type TerminalEnd = "leave-key" | "end-of-input" | "reconnect";

/**
 * `stream`'s chunks for several sessions in turn: leaving one (`for await` ... `return`)
 * does not cancel the stream, so the next session reads on.
 */
export function sharedInput(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  const iterator: AsyncIterator<Uint8Array, undefined> = {
    next: async () => {
      const r = await reader.read();
      return r.done ? { done: true, value: undefined } : { done: false, value: r.value };
    },
    return: () => Promise.resolve({ done: true, value: undefined }),
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

/** What the user is told when the session died after a soft reboot. */
export function deadSessionMessage(address: string, silentMs: number): string {
  return `${address} soft-rebooted and has sent nothing for ${formatSeconds(silentMs / 1000)}, ` +
    "no prompt: WebREPL's link to its REPL ended there (the connection stays open, but " +
    "nothing reaches the REPL any more)";
}

/**
 * The text to send for one chunk of input, and whether Ctrl-] was in it (what follows
 * it is dropped). From a pipe, `\r\n` and `\n` become `\r`. Pure.
 */
export function translateInput(
  chunk: string,
  interactive: boolean,
): { text: string; leave: boolean } {
  const cut = chunk.indexOf(String.fromCharCode(LEAVE_KEY));
  let text = cut < 0 ? chunk : chunk.slice(0, cut);
  if (!interactive) text = text.replace(/\r?\n/g, "\r");
  return { text, leave: cut >= 0 };
}

/**
 * Runs the session until Ctrl-] or the end of the input; at the end of the input, it
 * waits (up to `timeoutMs`) until the board shows a prompt and stays quiet.
 * @throws {WebReplError} If the board closes the connection, or is still busy `timeoutMs`
 *   after the input ended.
 */
export async function runTerminal(
  peer: TerminalPeer,
  io: TerminalIO,
  options: { timeoutMs: number; settleMs?: number; rebootWaitMs?: number },
): Promise<TerminalEnd> {
  const settleMs = options.settleMs ?? SETTLE_MS;
  const rebootWaitMs = options.rebootWaitMs ?? REBOOT_WAIT_MS;
  const notice = (text: string) => io.notice ? io.notice(text) : void io.write(text);
  let tail = LOGIN_PROMPT;
  let lastOutputAt = Date.now();
  let closed = false;
  let stop = false;
  /** When a soft reboot began, until a new prompt shows the session alive. */
  let rebootAt: number | undefined;
  /**
   * From a pipe, a chunk may hold lines before its Ctrl-D, whose prompts prove nothing:
   * only a prompt after the board's "soft reboot" line does.
   */
  let awaitingBanner = false;
  /** The session is dead and a reconnect was offered. */
  let dead = false;
  let fail: (e: Error) => void = () => {};
  const closedByBoard = new Promise<never>((_, reject) => (fail = reject));
  closedByBoard.catch(() => {});
  const wake = () =>
    fail(
      new WebReplError(
        `${peer.address} closed the connection (did the board reset, or another client take over?)`,
      ),
    );
  const rebooting = (banner: boolean) => {
    rebootAt = Date.now();
    awaitingBanner = banner;
    tail = "";
  };
  const checkAlive = () => {
    if (rebootAt === undefined || dead) return;
    const silentMs = Date.now() - Math.max(rebootAt, lastOutputAt);
    if (silentMs < rebootWaitMs) return;
    dead = true;
    const what = deadSessionMessage(peer.address, silentMs);
    if (!io.interactive) {
      fail(new WebReplError(`${what}: run repl again to reconnect`));
      return;
    }
    notice(`\r\n[${what}. Press Enter to reconnect, Ctrl-] to leave.]\r\n`);
  };

  await io.write(LOGIN_PROMPT);
  const pump = (async () => {
    while (!stop) {
      const text = await peer.readText(50);
      if (text === undefined) {
        closed = true;
        wake();
        return;
      }
      if (text === "") {
        checkAlive();
        continue;
      }
      lastOutputAt = Date.now();
      const reboot = SOFT_REBOOT.exec(text);
      if (reboot) rebooting(false);
      tail = (tail + (reboot ? text.slice(reboot.index + reboot[0].length) : text)).slice(-64);
      if (rebootAt !== undefined && !awaitingBanner && PROMPT_AT_END.test(tail)) {
        rebootAt = undefined;
      }
      if (dead && io.interactive) {
        dead = false;
        rebootAt = undefined;
        notice("\r\n[the board answered again: the session goes on]\r\n");
      }
      await io.write(text);
    }
  })();

  const typing = (async (): Promise<TerminalEnd> => {
    const decoder = new TextDecoder();
    for await (const chunk of io.input) {
      const { text, leave } = translateInput(
        decoder.decode(chunk, { stream: true }),
        io.interactive,
      );
      if (dead && /[\r\n]/.test(text)) return "reconnect";
      if (text.includes(CTRL_D) && (!io.interactive || REBOOT_PROMPT.test(tail))) {
        rebooting(!io.interactive);
      }
      // Other keys still go: if the board echoes them, it was alive after all.
      if (text) await peer.type(text);
      if (leave) return "leave-key";
    }
    return "end-of-input";
  })();

  try {
    const end = await Promise.race([typing, closedByBoard]);
    if (end === "end-of-input") {
      const deadline = Date.now() + options.timeoutMs;
      // The board may not have echoed the last line yet: wait for a prompt and quiet.
      while (
        !(rebootAt === undefined && PROMPT_AT_END.test(tail) &&
          Date.now() - lastOutputAt >= settleMs)
      ) {
        if (closed || dead) await closedByBoard;
        if (Date.now() > deadline) {
          throw new WebReplError(
            `${peer.address} was still busy ${
              options.timeoutMs / 1000
            } s after the end of the input (no prompt came back): raise --timeout, or end with Ctrl-]`,
          );
        }
        await new Promise((r) => setTimeout(r, Math.min(settleMs, 50)));
      }
    }
    return end;
  } finally {
    stop = true;
    await pump;
  }
}
