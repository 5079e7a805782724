/**
 * WebREPL's words on the wire (docs/device.md, "WebREPL"), in one place for the client
 * (lib/webrepl/) and the virtual device's server (lib/sim/): the login prompt and its two
 * answers, the REPL prompt, the raw REPL's banner and the control characters that switch
 * modes and end a program.
 */

/** The board's first text frame after the handshake. */
export const PASSWORD_PROMPT = "Password: ";
/** The board's answer to a wrong password (on a line of its own), before it closes. */
export const ACCESS_DENIED = "Access denied";
/** The board's answer to the right password (on a new line), with the REPL prompt. */
export const CONNECTED_BANNER = "WebREPL connected\r\n>>> ";
/** The friendly REPL's prompt. */
export const REPL_PROMPT = ">>> ";
/** What Ctrl-A answers: the raw REPL's banner and its prompt. */
export const RAW_BANNER = "raw REPL; CTRL-B to exit\r\n>";

/** Ctrl-A: enter the raw REPL. */
export const CTRL_A = "\x01";
/** Ctrl-B: leave the raw REPL for the friendly one. */
export const CTRL_B = "\x02";
/** Ctrl-C: interrupt the running program. */
export const CTRL_C = "\x03";
/** Ctrl-D: in the raw REPL, end of a program, and the end of its output and its error. */
export const CTRL_D = "\x04";
/** Ctrl-E: paste mode. */
export const CTRL_E = "\x05";
