/**
 * Programs to paste into the LEGO SPIKE app, for an ESP8266 reached through a SPIKE hub
 * port with UartRemote (docs/device.md, "LEGO SPIKE and UartRemote"): a serial monitor,
 * and the WebREPL enabling sequence. Pure: each returns Python source text.
 *
 * The password crosses two levels of Python string literals: the ESP-side statement
 * that writes `webrepl_cfg.py`, and the SPIKE-side `u.repl_run('…')` that carries that
 * statement. Both programs are plain ASCII (every other character is escaped), so the
 * app's editor and the 32-byte UART windows cannot mangle them.
 */
import { UsageError } from "../errors.ts";

export const HUB_PORTS = ["A", "B", "C", "D", "E", "F"] as const;
export type HubPort = typeof HUB_PORTS[number];

/** WebREPL limits: webrepl_setup asks for 4–9 characters; modwebrepl keeps at most 9 bytes. */
export const PASSWORD_MIN_CHARS = 4;
export const PASSWORD_MAX_BYTES = 9;

/** "e" → "E"; anything but A–F is a `UsageError`. */
export function checkHubPort(port: string): HubPort {
  const upper = port.trim().toUpperCase();
  const found = HUB_PORTS.find((p) => p === upper);
  if (!found) {
    throw new UsageError(`--hub-port expects a SPIKE hub port A to F, got '${port}'`);
  }
  return found;
}

/**
 * Refuses a password WebREPL cannot take. The messages never repeat the password.
 * @throws {UsageError} If it is shorter than 4 characters, longer than 9 bytes in UTF-8,
 * or holds a control character.
 */
export function checkWebreplPassword(password: string): void {
  const chars = [...password].length;
  const bytes = new TextEncoder().encode(password).length;
  if ([...password].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw new UsageError(
      "the WebREPL password contains a control character (newline, tab, ...): WebREPL's login " +
        "ends at the first newline or carriage return, so it could not be typed. Use printable characters.",
    );
  }
  if (/[\ud800-\udfff]/u.test(password)) {
    throw new UsageError("the WebREPL password is not valid Unicode text");
  }
  if (chars < PASSWORD_MIN_CHARS) {
    throw new UsageError(
      `the WebREPL password has ${chars} characters; WebREPL needs at least ${PASSWORD_MIN_CHARS}`,
    );
  }
  if (bytes > PASSWORD_MAX_BYTES) {
    throw new UsageError(
      `the WebREPL password is ${bytes} bytes in UTF-8; WebREPL keeps at most ${PASSWORD_MAX_BYTES} ` +
        `(non-ASCII letters take 2 to 4 bytes each), so it could never log in. Choose a shorter one.`,
    );
  }
}

function escapeCode(code: number): string {
  if (code === 0x5c) return "\\\\";
  if (code === 0x27) return "\\'";
  if (code === 0x0a) return "\\n";
  if (code === 0x0d) return "\\r";
  if (code === 0x09) return "\\t";
  if (code >= 0x20 && code < 0x7f) return String.fromCharCode(code);
  const hex = (digits: number) => code.toString(16).padStart(digits, "0");
  if (code < 0x100) return "\\x" + hex(2);
  return code < 0x10000 ? "\\u" + hex(4) : "\\U" + hex(8);
}

/**
 * A single-quoted Python str literal for `text`. With `ascii` (the default) every
 * character outside printable ASCII is escaped; without, non-ASCII characters stay as
 * they are (as in a file `webrepl_setup` writes).
 */
export function pyStr(text: string, ascii = true): string {
  let out = "'";
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    out += !ascii && code >= 0x80 ? ch : escapeCode(code);
  }
  return out + "'";
}

/** A Python bytes literal, ASCII only: `b'PASS = \'x\'\n'`. */
export function pyBytes(bytes: Uint8Array): string {
  return "b'" +
    Array.from(bytes, (b) => b >= 0x80 ? "\\x" + b.toString(16).padStart(2, "0") : escapeCode(b))
      .join("") +
    "'";
}

/** The `webrepl_cfg.py` the ESP8266 should end up with, as `webrepl_setup` writes it. */
export function webreplConfigSource(password: string): string {
  return `PASS = ${pyStr(password, false)}\n`;
}

/**
 * The ESP-side statement that writes `webrepl_cfg.py`. It writes UTF-8 bytes from a
 * bytes literal, so it needs neither `\u` escapes nor non-ASCII source on the ESP8266.
 */
export function writeConfigStatement(password: string): string {
  const content = new TextEncoder().encode(webreplConfigSource(password));
  return `f = open('webrepl_cfg.py', 'wb'); f.write(${pyBytes(content)}); f.close()`;
}

const HEADER = (what: string, port: HubPort) => [
  `# ${what}`,
  `# ESP8266 on SPIKE hub port ${port}. Paste this into a Python project in the SPIKE app`,
  "# and run it. Made by 'deno task spike'.",
  "from projects.uartremote import *",
  "",
  `u = UartRemote(${pyStr(port)})`,
];

/**
 * The serial monitor: prints what the ESP8266 writes on its UART until the program is
 * stopped. MicroPython's `bytes.decode` raises on bad UTF-8 whatever `errors` says, so
 * bad bytes are dropped here, and a character cut in two by a read waits for its rest.
 */
export function monitorProgram(hubPort: HubPort): string {
  return [
    ...HEADER("Serial monitor: shows what the ESP8266 prints (stop the program to end).", hubPort),
    "",
    "try:",
    "    from utime import sleep_ms",
    "except ImportError:",
    "    from time import sleep_ms",
    "",
    "",
    "def split_tail(data):",
    "    # Keep a UTF-8 sequence cut off by the read for the next one.",
    "    for back in (1, 2, 3):",
    "        if len(data) < back:",
    "            break",
    "        b = data[-back]",
    "        if b & 0xC0 == 0x80:",
    "            continue",
    "        if b >= 0xC0 and (2 if b < 0xE0 else 3 if b < 0xF0 else 4) > back:",
    "            return data[:-back], data[-back:]",
    "        break",
    "    return data, b''",
    "",
    "",
    "def text(data):",
    "    # UTF-8, dropping bytes that are not (boot noise at another baud rate).",
    "    try:",
    "        return data.decode('utf-8')",
    "    except UnicodeError:",
    "        pass",
    "    out = ''",
    "    i = 0",
    "    while i < len(data):",
    "        b = data[i]",
    "        n = 1 if b < 0x80 else 2 if b >> 5 == 6 else 3 if b >> 4 == 14 else 4 if b >> 3 == 30 else 0",
    "        if n:",
    "            try:",
    "                out += data[i:i + n].decode('utf-8')",
    "                i += n",
    "                continue",
    "            except UnicodeError:",
    "                pass",
    "        i += 1",
    "    return out",
    "",
    "",
    "rest = b''",
    "while True:",
    "    data = u.uart.read(100)",
    "    if data:",
    "        data, rest = split_tail(rest + data)",
    "        print(text(data), end='')",
    "    sleep_ms(10)",
    "",
  ].join("\n");
}

/**
 * The WebREPL enabling sequence (docs/device.md, "LEGO SPIKE and UartRemote"), run in
 * the ESP8266's REPL through `u.repl_run`: start the daemon from boot.py, write
 * `webrepl_cfg.py` with the password, reset. The result contains the password: it is
 * what the user pastes.
 * @throws {UsageError} If WebREPL cannot take the password (`checkWebreplPassword`).
 */
export function enableWebreplProgram(hubPort: HubPort, password: string): string {
  checkWebreplPassword(password);
  const run = (statement: string) => `show(u.repl_run(${pyStr(statement)}))`;
  return [
    ...HEADER(
      "Enables WebREPL on the ESP8266 and restarts it. It holds the WebREPL password: do not share it.",
      hubPort,
    ),
    "",
    "",
    "def show(reply):",
    "    # repl_run returns what the ESP8266 printed, or its error.",
    "    if reply:",
    "        print('ESP8266:', reply)",
    "",
    "",
    "u.repl_activate()",
    run("from webrepl_setup import *"),
    run("change_daemon(True)"),
    run(writeConfigStatement(password)),
    "print('WebREPL is set up; the ESP8266 restarts now and then listens on port 8266.')",
    // A reset never answers, so do not wait for a reply.
    `u.repl_run(${pyStr("import machine; machine.reset()")}, reply=False)`,
    "",
  ].join("\n");
}
