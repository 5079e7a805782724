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
import { trace } from "../trace.ts";

export { BINARY_FRAME_BYTES, DEFAULT_TIMEOUT_MS, type WebReplOptions };
/** After `machine.reset()` the board goes silent (no FIN, no RST): wait this long at most. */
export const DEFAULT_RESET_SILENCE_MS = 1500;

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

  /**
   * Runs `code` (any number of lines) in the raw REPL and returns what it printed.
   * A Python exception is returned as `error`, not thrown.
   * @throws {WebReplError} On a timeout or if the connection closes.
   */
  async exec(code: string, options: { timeoutMs?: number } = {}): Promise<ExecResult> {
    // An empty program is a soft reset in the raw REPL.
    if (code.trim() === "") return { output: "" };
    const timeoutMs = options.timeoutMs ?? this.#connection.timeoutMs;
    await this.#sendCode(code, timeoutMs);
    const m = await this.#connection.waitFor(
      "the end of the command's output",
      timeoutMs,
      () => this.#connection.take(RAW_RESULT),
    );
    return result(m[1]!, m[2]!);
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
    options: { timeoutMs?: number; onClose?: () => Error | undefined } = {},
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

function result(output: string, error: string): ExecResult {
  const plain = (s: string) => s.replace(/\r\n/g, "\n");
  return error ? { output: plain(output), error: plain(error) } : { output: plain(output) };
}
