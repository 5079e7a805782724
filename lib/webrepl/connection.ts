/**
 * A WebREPL connection over plain TCP (`Deno.connect`): the device ignores the lower-case
 * header names of Deno's `WebSocket`, so the handshake and framing are done here
 * (`websocket.ts`), then the login (docs/device.md, "WebREPL"). It carries text both ways
 * and the file-transfer channel's binary frames; the REPL on top of it is `client.ts`.
 * The password is never printed, logged or put in an error message.
 */
import { DeviceUnreachableError, WebReplError } from "../errors.ts";
import {
  acceptFor,
  encodeClientFrame,
  encodeHandshakeRequest,
  FrameDecoder,
  type HttpHead,
  HttpHeadReader,
  makeWebSocketKey,
  OPCODE,
} from "./websocket.ts";
import { ACCESS_DENIED, CONNECTED_BANNER, PASSWORD_PROMPT } from "./protocol.ts";
import { formatSeconds } from "../_units.ts";
import { concat } from "../_bytes.ts";
import { DEFAULT_DEVICE_PORT } from "../config/values.ts";
import { hideInTrace, trace } from "../trace.ts";

export const DEFAULT_TIMEOUT_MS = 5000;
/** Bytes of text per frame: the board reads the socket a little at a time. */
const TEXT_FRAME_BYTES = 256;
/** How long `close()` waits for the board to answer a close frame by closing. */
const CLOSE_WAIT_MS = 1000;
/** Bytes per binary frame on the file-transfer channel (as webrepl_cli.py sends them). */
export const BINARY_FRAME_BYTES = 1024;

export interface WebReplOptions {
  /** The board's address. */
  host: string;
  /** WebREPL's TCP port (default 8266). */
  port?: number;
  /** 4 to 9 characters (see `password.ts`). Never printed. */
  password: string;
  /** Time allowed for each step (connect, handshake, each prompt, each command); default 5 s. */
  timeoutMs?: number;
}

/** `RegExp` for `text` as it is. */
export function literal(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
}

/** One logged-in WebREPL connection. The board takes one client at a time. */
export class WebReplConnection {
  readonly address: string;
  /** Time allowed for each step unless a call says otherwise. */
  readonly timeoutMs: number;
  readonly #conn: Deno.Conn;
  readonly #head = new HttpHeadReader();
  readonly #frames = new FrameDecoder();
  readonly #decoder = new TextDecoder();
  #handshake: HttpHead | undefined;
  /** Text received and not yet consumed by a step. */
  #text = "";
  /** Bytes of binary frames (the file-transfer channel) not yet read. */
  #binary: Uint8Array[] = [];
  #binaryLength = 0;
  #bytesSeen = 0;
  #lastByteAt = Date.now();
  #closed = false;
  #readError: unknown;
  /** The board reset: nothing more will come, and nothing should be sent. */
  #gone = false;
  #waiters = new Set<() => void>();
  readonly #pump: Promise<void>;

  private constructor(conn: Deno.Conn, address: string, timeoutMs: number) {
    this.#conn = conn;
    this.address = address;
    this.timeoutMs = timeoutMs;
    this.#pump = this.#readLoop();
  }

  /**
   * Connects, does the WebSocket handshake and logs in (one attempt).
   * @throws {WebReplError} Nothing listens there, a second client was refused, the
   *   password is wrong, or the peer is not WebREPL.
   * @throws {DeviceUnreachableError} The address does not answer within the timeout.
   */
  static async open(options: WebReplOptions): Promise<WebReplConnection> {
    const port = options.port ?? DEFAULT_DEVICE_PORT;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const address = `${options.host}:${port}`;
    hideInTrace(options.password);
    trace(
      "webrepl",
      `connecting to ${address} over TCP (each step may take ${timeoutMs / 1000} s)`,
    );
    const conn = await connectTcp(options.host, port, timeoutMs);
    trace("webrepl", `TCP connected to ${address}: sending the WebSocket handshake`);
    const connection = new WebReplConnection(conn, address, timeoutMs);
    try {
      await connection.#login(options.host, port, options.password);
    } catch (e) {
      await connection.#shut();
      throw e;
    }
    return connection;
  }

  /** The connection is closed and everything received was read. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The board has reset (`markGone`): nothing more will come. */
  get gone(): boolean {
    return this.#gone;
  }

  /** When the last byte arrived (`Date.now()`), to tell a silence. */
  get lastByteAt(): number {
    return this.#lastByteAt;
  }

  /** Forgets the text received so far (what the board printed before a command). */
  discardText(): void {
    this.#text = "";
  }

  /** Says the board has reset: nothing more is sent, not even a close frame. */
  markGone(): void {
    this.#gone = true;
  }

  /**
   * Sends bytes on the file-transfer channel (binary frames; docs/device.md, "WebREPL").
   * @throws {WebReplError} If the connection is closed.
   */
  async sendBinary(bytes: Uint8Array, frameBytes = BINARY_FRAME_BYTES): Promise<void> {
    for (let at = 0; at < bytes.length; at += frameBytes) {
      await this.#write(encodeClientFrame(OPCODE.binary, bytes.subarray(at, at + frameBytes)));
    }
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
    return this.waitFor(
      step,
      options.timeoutMs ?? this.timeoutMs,
      () => {
        if (this.#binaryLength < n) return undefined;
        const all = this.#binary.length === 1 ? this.#binary[0]! : concat(this.#binary);
        this.#binary = all.length > n ? [all.subarray(n)] : [];
        this.#binaryLength -= n;
        return all.slice(0, n);
      },
      0,
      options.onClose,
    );
  }

  /**
   * Sends typed text to the REPL as it is (an interactive terminal: `repl`).
   * @throws {WebReplError} If the connection is closed.
   */
  type(text: string): Promise<void> {
    return this.sendText(text);
  }

  /**
   * The text the board has printed since the last call, waiting up to `waitMs` for
   * some: "" if none came, undefined once the connection is closed and all was read.
   */
  async readText(waitMs: number): Promise<string | undefined> {
    if (this.#text === "" && !this.#closed) await this.#changed(waitMs);
    const text = this.#text;
    this.#text = "";
    if (text === "" && this.#closed) return undefined;
    return text;
  }

  /**
   * Sends `farewell` (text, if any), a close frame, and waits briefly for the board to
   * close its side: it frees its one client slot only then, so a new connection right
   * after would be refused. Idempotent.
   */
  async close(farewell?: string): Promise<void> {
    if (!this.#closed && !this.#gone) {
      trace("webrepl", `closing the session with ${this.address}`);
      try {
        if (farewell) await this.sendText(farewell);
        await this.#write(encodeClientFrame(OPCODE.close, new Uint8Array(0)));
        const deadline = Date.now() + CLOSE_WAIT_MS;
        while (!this.#closed && Date.now() < deadline) await this.#changed(deadline - Date.now());
      } catch { /* the board may be gone already */ }
    }
    await this.#shut();
  }

  async #login(host: string, port: number, password: string): Promise<void> {
    // The board closes a second client at once, before reading anything.
    const refused = () =>
      this.#bytesSeen === 0
        ? new WebReplError(
          `${this.address} closed the connection before the WebSocket handshake: ` +
            "a second client is connected: the device accepts one at a time " +
            "(close the other WebREPL session, e.g. a browser tab, and try again)",
        )
        : undefined;
    const key = makeWebSocketKey();
    try {
      const hostHeader = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
      await this.#write(encodeHandshakeRequest({ host: hostHeader, key }));
    } catch (e) {
      throw refused() ?? e;
    }
    const head = await this.waitFor(
      "the WebSocket handshake reply",
      this.timeoutMs,
      () => this.#handshake,
      0,
      refused,
    );
    const accept = head.headers.find(([n]) => n.toLowerCase() === "sec-websocket-accept")?.[1];
    if (!/^HTTP\/1\.[01] 101\b/.test(head.startLine) || accept !== acceptFor(key)) {
      throw new WebReplError(
        `${this.address} answered the WebSocket handshake with '${head.startLine}'` +
          (accept === undefined ? "" : " and a wrong Sec-WebSocket-Accept") +
          ": it is not MicroPython's WebREPL",
      );
    }
    trace("webrepl", `handshake accepted (${head.startLine}, Sec-WebSocket-Accept matches)`);
    await this.waitFor(
      `the '${PASSWORD_PROMPT}' prompt`,
      this.timeoutMs,
      () => this.take(literal(PASSWORD_PROMPT)),
    );
    trace("webrepl", `'${PASSWORD_PROMPT.trim()}' prompt: sending the password (not shown)`);
    await this.sendText(password + "\r");
    const verdict = await this.waitFor("the login reply", this.timeoutMs, () => {
      if (this.#text.includes(ACCESS_DENIED)) return "denied";
      return this.take(literal(CONNECTED_BANNER)) ? "ok" : undefined;
    });
    trace("webrepl", verdict === "ok" ? "logged in ('WebREPL connected')" : "'Access denied'");
    if (verdict === "denied") {
      throw new WebReplError(
        `wrong WebREPL password for ${this.address}: the device said 'Access denied' and ` +
          "closed the connection (one attempt made; check WEBREPL_PASSWORD or --password)",
      );
    }
  }

  /**
   * Sends text frames, at most 256 bytes each.
   * @throws {WebReplError} If the connection is closed.
   */
  async sendText(text: string): Promise<void> {
    const bytes = new TextEncoder().encode(text);
    for (let at = 0; at < bytes.length; at += TEXT_FRAME_BYTES) {
      await this.#write(
        encodeClientFrame(OPCODE.text, bytes.subarray(at, at + TEXT_FRAME_BYTES)),
      );
    }
  }

  async #write(bytes: Uint8Array): Promise<void> {
    try {
      for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
    } catch (e) {
      throw new WebReplError(
        `${this.address} closed the connection (${(e as Error).name})`,
        { cause: e },
      );
    }
  }

  /** Consumes the received text up to the end of the first match of `pattern`. */
  take(pattern: RegExp): RegExpExecArray | undefined {
    const m = pattern.exec(this.#text);
    if (!m) return undefined;
    this.#text = this.#text.slice(m.index + m[0].length);
    return m;
  }

  /**
   * Waits until `check` gives a value. `pollMs` re-checks on a timer too (for
   * silence); `onClose` may name a better error than "closed".
   * @throws {WebReplError} On a timeout, naming `step`, or if the connection closes first.
   */
  async waitFor<T>(
    step: string,
    timeoutMs: number,
    check: () => T | undefined,
    pollMs = 0,
    onClose: () => Error | undefined = () => undefined,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const value = check();
      if (value !== undefined) return value;
      if (this.#closed) {
        throw onClose() ??
          new WebReplError(
            `${this.address} closed the connection while we waited for ${step}` +
              (this.#readError instanceof Error ? ` (${this.#readError.message})` : ""),
          );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new WebReplError(
          `timed out after ${
            formatSeconds(timeoutMs / 1000)
          } waiting for ${step} from ${this.address}`,
        );
      }
      await this.#changed(pollMs > 0 ? Math.min(left, pollMs) : left);
    }
  }

  /** Resolves when bytes arrive, the connection closes, or after `ms`. */
  #changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#waiters.add(wake);
    });
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(4096);
    try {
      while (true) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        this.#receive(buffer.slice(0, n));
        this.#wake();
      }
    } catch (e) {
      this.#readError = e;
    }
    this.#closed = true;
    this.#wake();
  }

  #receive(bytes: Uint8Array): void {
    this.#bytesSeen += bytes.length;
    this.#lastByteAt = Date.now();
    if (!this.#handshake) {
      const done = this.#head.push(bytes);
      if (!done) return;
      this.#handshake = done.head;
      bytes = done.rest;
    }
    for (const frame of this.#frames.push(bytes)) {
      if (frame.opcode <= OPCODE.text) {
        this.#text += this.#decoder.decode(frame.payload, { stream: true });
      } else if (frame.opcode === OPCODE.binary) {
        this.#binary.push(frame.payload);
        this.#binaryLength += frame.payload.length;
      }
      // A close frame is followed by the close.
    }
  }

  async #shut(): Promise<void> {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    await this.#pump;
  }
}

async function connectTcp(host: string, port: number, timeoutMs: number): Promise<Deno.Conn> {
  const address = `${host}:${port}`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    return await Deno.connect({ hostname: host, port, transport: "tcp", signal: abort.signal });
  } catch (e) {
    if (abort.signal.aborted) {
      throw new DeviceUnreachableError(
        `no answer from ${address} within ${formatSeconds(timeoutMs / 1000)}: ` +
          "is the board powered, and on this network?",
        { cause: e },
      );
    }
    if (e instanceof Deno.errors.ConnectionRefused) {
      throw new WebReplError(
        `no WebREPL at ${address}: is the board running MicroPython with WebREPL enabled? ` +
          "(enable it once on its serial REPL: import webrepl_setup)",
        { cause: e },
      );
    }
    throw new DeviceUnreachableError(`cannot reach ${address}: ${(e as Error).message}`, {
      cause: e,
    });
  } finally {
    clearTimeout(timer);
  }
}
