/**
 * A WebREPL client: a logged-in connection (`connection.ts`) and the REPL on it. Code runs
 * in the raw REPL (Ctrl-A), whose replies delimit output and error exactly: `OK`, output,
 * `\x04`, error, `\x04`, `>` (docs/device.md, "WebREPL"). The password is never printed,
 * logged or put in an error message.
 */
import { WebReplError } from "../errors.ts";
import {
  BINARY_FRAME_BYTES,
  DEFAULT_TIMEOUT_MS,
  literal,
  WebReplConnection,
  type WebReplOptions,
} from "./connection.ts";
import { CTRL_A, CTRL_B, CTRL_C, CTRL_D, RAW_BANNER } from "./protocol.ts";
import { checkRawCode, RawResultReader } from "./raw_result.ts";
import { formatSeconds } from "../_units.ts";
import { trace } from "../trace.ts";

export { BINARY_FRAME_BYTES, DEFAULT_TIMEOUT_MS, type WebReplOptions };
/** After `machine.reset()` the board goes silent (no FIN, no RST): wait this long at most. */
export const DEFAULT_RESET_SILENCE_MS = 1500;
/** After Ctrl-C, how long the board may take to stop the code and show its prompt. */
export const INTERRUPT_WAIT_MS = 2000;
/** Output `exec` keeps for its result when no `onOutput` takes it as it comes. */
export const DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024;

/**
 * The code printed nothing for the allowed silence (it was interrupted with Ctrl-C), or
 * more than a result may hold.
 */
export class ExecStoppedError extends WebReplError {}

export interface ExecOptions {
  /**
   * The longest silence allowed while the code runs (default: the connection's step
   * timeout). Output resets it: a program that keeps printing is never cut off.
   */
  timeoutMs?: number;
  /** Takes the output as it arrives (`\r\n` as `\n`); the result's `output` is then "". */
  onOutput?: (text: string) => void;
  /** Without `onOutput`: the most output kept for the result (default 4 MiB). */
  maxOutput?: number;
}

const RAW_PROMPT = literal(RAW_BANNER);
/** Output, Ctrl-D, error, Ctrl-D, `>`. */
const RAW_RESULT = new RegExp(`^([\\s\\S]*?)${CTRL_D}([\\s\\S]*?)${CTRL_D}>`);

export interface ExecResult {
  /** What the code printed, with `\r\n` turned into `\n`. */
  output: string;
  /** The traceback, if the code raised. */
  error?: string;
}

/** What `execUntilReset` saw: the board went silent or closed (a reset), or the code returned. */
export type ResetOutcome = { reset: true } | { reset: false; result: ExecResult };

/**
 * One logged-in WebREPL session. The board takes one client at a time, so close it
 * (or `await using` it) before the next.
 *
 * @example
 * ```ts ignore
 * await using repl = await WebReplClient.connect({ host: "192.168.4.1", password });
 * const { output } = await repl.exec("import os\nprint(os.uname().version)");
 * ```
 */
export class WebReplClient {
  readonly #connection: WebReplConnection;
  #raw = false;

  private constructor(connection: WebReplConnection) {
    this.#connection = connection;
  }

  /**
   * Connects, does the WebSocket handshake and logs in (one attempt).
   * @throws {WebReplError} Nothing listens there, a second client was refused, the
   *   password is wrong, or the peer is not WebREPL.
   * @throws {DeviceUnreachableError} The address does not answer within the timeout.
   */
  static async connect(options: WebReplOptions): Promise<WebReplClient> {
    return new WebReplClient(await WebReplConnection.open(options));
  }

  /** `host:port`, for messages. */
  get address(): string {
    return this.#connection.address;
  }

  /** Time allowed for each step (the `timeoutMs` it connected with). */
  get timeoutMs(): number {
    return this.#connection.timeoutMs;
  }

  /**
   * Runs `code` (any number of lines) in the raw REPL and returns what it printed (or
   * hands it to `onOutput` as it comes). A Python exception is returned as `error`, not
   * thrown. A silence longer than `timeoutMs`, or more output than `maxOutput`, stops
   * the code with Ctrl-C, so that the board takes clients again.
   * @throws {UsageError} If the code holds a raw REPL control character (`checkRawCode`).
   * @throws {ExecStoppedError} On such a silence, or too much output.
   * @throws {WebReplError} If the connection closes.
   */
  async exec(code: string, options: ExecOptions = {}): Promise<ExecResult> {
    checkRawCode(code);
    // An empty program is a soft reset in the raw REPL.
    if (code.trim() === "") return { output: "" };
    const connection = this.#connection;
    const timeoutMs = options.timeoutMs ?? connection.timeoutMs;
    const maxOutput = options.maxOutput ?? DEFAULT_MAX_OUTPUT;
    await this.#sendCode(code, timeoutMs);
    const reader = new RawResultReader();
    const kept: string[] = [];
    let keptChars = 0;
    const take = (text: string) => {
      const output = reader.push(text);
      if (output === "") return;
      if (options.onOutput) return options.onOutput(output);
      kept.push(output);
      keptChars += output.length;
    };
    let lastOutputAt = Date.now();
    while (!reader.done) {
      if (keptChars > maxOutput) {
        const back = await this.#interrupt(reader, (text) => void reader.push(text));
        throw new ExecStoppedError(
          `${connection.address}: the code printed more than ${maxOutput} characters, more ` +
            `than a result holds here: it was stopped with Ctrl-C${stoppedNote(back)}`,
        );
      }
      const left = timeoutMs - (Date.now() - lastOutputAt);
      if (left <= 0) {
        const back = await this.#interrupt(reader, take);
        throw new ExecStoppedError(
          `no output from ${connection.address} for ${formatSeconds(timeoutMs / 1000)} while ` +
            `the code ran: it was stopped with Ctrl-C${stoppedNote(back)}. If the code needs ` +
            "longer silences, raise --timeout (the longest silence allowed, in seconds)",
        );
      }
      const text = await connection.readText(left);
      if (text === undefined) {
        throw new WebReplError(
          `${connection.address} closed the connection while the code ran (did it reset the board?)`,
        );
      }
      if (text !== "") {
        lastOutputAt = Date.now();
        take(text);
      }
    }
    const output = kept.join("");
    return reader.error ? { output, error: reader.error } : { output };
  }

  /**
   * Ctrl-C, then up to `INTERRUPT_WAIT_MS` for the rest of the answer (the
   * KeyboardInterrupt, `\x04`, `>`). Whether the board came back to its prompt.
   */
  async #interrupt(reader: RawResultReader, take: (text: string) => void): Promise<boolean> {
    const connection = this.#connection;
    trace("webrepl", "interrupting the code with Ctrl-C");
    try {
      await connection.sendText(CTRL_C);
    } catch {
      return false;
    }
    const deadline = Date.now() + INTERRUPT_WAIT_MS;
    while (!reader.done) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const text = await connection.readText(left);
      if (text === undefined) return false;
      take(text);
    }
    return true;
  }

  /**
   * Runs code that should reset the board (`machine.reset()`, `ota.start()`). The board
   * then sends nothing more, not even a FIN, so after its `OK` a close or
   * `silenceMs` of silence counts as the reset. If the code returns instead, its
   * result comes back with `reset: false`.
   * @throws {WebReplError} If the board does not take the command.
   */
  async execUntilReset(
    code: string,
    options: { silenceMs?: number; timeoutMs?: number } = {},
  ): Promise<ResetOutcome> {
    const connection = this.#connection;
    const silenceMs = options.silenceMs ?? DEFAULT_RESET_SILENCE_MS;
    const timeoutMs = options.timeoutMs ?? connection.timeoutMs;
    await this.#sendCode(code, timeoutMs);
    const outcome = await connection.waitFor("the command's output or a reset", timeoutMs, () => {
      const m = connection.take(RAW_RESULT);
      if (m) return { reset: false, result: result(m[1]!, m[2]!) } as const;
      if (connection.closed || Date.now() - connection.lastByteAt >= silenceMs) {
        return { reset: true } as const;
      }
      return undefined;
    }, Math.min(silenceMs, 250));
    if (outcome.reset) connection.markGone();
    trace(
      "webrepl",
      () =>
        outcome.reset
          ? connection.closed
            ? "the board closed the connection after 'OK': it is resetting"
            : `no byte for ${silenceMs} ms after 'OK': the board is resetting`
          : "the code returned instead of resetting the board",
    );
    return outcome;
  }

  /**
   * Sends bytes on the file-transfer channel (binary frames; docs/device.md, "WebREPL").
   * @throws {WebReplError} If the connection is closed.
   */
  sendBinary(bytes: Uint8Array, frameBytes = BINARY_FRAME_BYTES): Promise<void> {
    return this.#connection.sendBinary(bytes, frameBytes);
  }

  /**
   * The next `n` bytes of the file-transfer channel, however the board framed them.
   * @param step What is awaited, for the error message ("the reply to the get request").
   * @param onClose A better error than "closed the connection", if the caller knows one.
   * @throws {WebReplError} On a timeout, or if the connection closes first.
   */
  readBinary(
    n: number,
    step: string,
    options: { timeoutMs?: number; deadline?: number; onClose?: () => Error | undefined } = {},
  ): Promise<Uint8Array> {
    return this.#connection.readBinary(n, step, options);
  }

  /**
   * Sends typed text to the REPL as it is (an interactive terminal: `repl`).
   * @throws {WebReplError} If the connection is closed.
   */
  type(text: string): Promise<void> {
    return this.#connection.sendText(text);
  }

  /**
   * The text the board has printed since the last call, waiting up to `waitMs` for
   * some: "" if none came, undefined once the connection is closed and all was read.
   */
  readText(waitMs: number): Promise<string | undefined> {
    return this.#connection.readText(waitMs);
  }

  /**
   * Leaves the raw REPL (so the next user gets `>>> `), sends a close frame and waits
   * briefly for the board to close its side (see `WebReplConnection.close`). Idempotent.
   */
  close(): Promise<void> {
    return this.#connection.close(this.#raw ? CTRL_B : undefined);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #sendCode(code: string, timeoutMs: number): Promise<void> {
    const connection = this.#connection;
    if (connection.gone) throw new WebReplError(`${connection.address} has reset: connect again`);
    if (!this.#raw) {
      trace("webrepl", "entering the raw REPL (Ctrl-C, then Ctrl-A)");
      // Ctrl-C stops a running program; Ctrl-A enters the raw REPL (from either mode).
      await connection.sendText(CTRL_C + CTRL_A);
      await connection.waitFor("the raw REPL prompt", timeoutMs, () => connection.take(RAW_PROMPT));
      this.#raw = true;
    }
    connection.discardText();
    trace("webrepl", () => {
      const lines = code.trimEnd().split("\n");
      return `running ${lines.length} line${lines.length === 1 ? "" : "s"} of code: ` +
        lines.map((l) => l.trim()).filter(Boolean).join("; ").slice(0, 120);
    });
    await connection.sendText(code + CTRL_D);
    await connection.waitFor(
      "'OK' (the raw REPL taking the command)",
      timeoutMs,
      () => connection.take(/OK/),
    );
  }
}

/** Opens a WebREPL session; see `WebReplClient.connect`. */
export function connectWebRepl(options: WebReplOptions): Promise<WebReplClient> {
  return WebReplClient.connect(options);
}

/** What became of the board after Ctrl-C, for a message. */
function stoppedNote(backAtPrompt: boolean): string {
  return backAtPrompt
    ? " and the board is back at its prompt"
    : `, but the board did not come back to its prompt within ${
      formatSeconds(INTERRUPT_WAIT_MS / 1000)
    }: it takes no other client until the code ends; press its reset button if it does not`;
}

function result(output: string, error: string): ExecResult {
  const plain = (s: string) => s.replace(/\r\n/g, "\n");
  return error ? { output: plain(output), error: plain(error) } : { output: plain(output) };
}
