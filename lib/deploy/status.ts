/**
 * `deno task status`, the pure part: what is known of each board (running its app and
 * answering WebREPL, in OTA mode, or neither; its MicroPython; the build it runs and how
 * that compares with `dist/manifest.json`; the kept release it is), as the `--json`
 * object. `status_probe.ts` asks the boards; `lib/cli/status_report.ts` draws the table.
 */
import type { BuildStamp } from "../build/build_id.ts";
import type { BuildComparison } from "./build_compare.ts";

/** How the board answered. */
export type BoardState =
  /** Its WebREPL port accepts connections: it runs its app. */
  | "app"
  /** It answered the OTA-mode question (docs/device.md, "Asking whether a device is in OTA mode"). */
  | "ota"
  /** Its port accepts TCP but no WebREPL handshake and prompt came: nothing could be read. */
  | "silent"
  /** Neither: offline, busy with someone else's OTA session, or built for another key. */
  | "offline";

/** What became of the WebREPL login. */
export type WebReplAccess =
  | "logged in"
  | "no password"
  | "wrong password"
  | "refused"
  | "no answer"
  /** TCP accepted, but no WebSocket handshake and prompt within the timeout. */
  | "no handshake"
  | "failed";

export interface BoardStatus {
  name: string;
  ip: string;
  port: number;
  state: BoardState;
  webrepl: WebReplAccess;
  /** Whether it answered the OTA-mode question; null when not asked (no usable key). */
  otaMode: boolean | null;
  /** `os.uname()`: release ("1.19.1") and version ("v1.19.1 on 2022-06-18"). */
  micropython?: { release: string; version: string };
  /** The build its `ota` module names; null when it names none (firmware from before build ids). */
  build?: { id: string; version?: string } | null;
  /** Its build against dist/manifest.json's. */
  comparison: BuildComparison;
  /** `esp.flash_user_start()`: where its filesystem is (docs/device.md, "The board's filesystem"). */
  flashUserStart?: string;
  /** The kept release it runs (dist/releases/<id>). */
  release?: BuildStamp;
  /** What went wrong, or what to do. Never a password. */
  note?: string;
}

/** `--json` of `deno task status`. */
export interface StatusReport {
  /** dist/manifest.json's build, or null. */
  manifest: BuildStamp | null;
  devices: BoardStatus[];
}

/**
 * Which board state the answers make: `webrepl` is what its WebREPL port did ("open":
 * the handshake and prompt came; "silent": TCP accepted, nothing more). Pure.
 */
export function boardState(
  webrepl: "open" | "silent" | "closed",
  otaMode: boolean | null,
): BoardState {
  if (webrepl === "open") return "app";
  if (otaMode) return "ota";
  return webrepl === "silent" ? "silent" : "offline";
}

/** Each state as a person reads it. */
export const STATE_LABEL: Record<BoardState, string> = {
  app: "app",
  ota: "OTA mode",
  silent: "no WebREPL answer",
  offline: "offline",
};
