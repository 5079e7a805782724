/**
 * `scan`: which addresses of a range hold a board, and in which state. Each address is
 * asked what `status` asks a board (`probeBoard`): the WebREPL handshake and prompt over
 * TCP (with a password: the login, `os.uname()` and the build), and, where a key is
 * known, the OTA-mode question over UDP, which a board only re-acknowledges
 * (docs/device.md, "Asking whether a device is in OTA mode"). Nothing a board would act
 * on is sent: no packet it would write, no end packet, no code beyond reading. Bounded:
 * `concurrency` addresses at a time, each step within `timeoutMs`.
 */
import { mapPool } from "../_pool.ts";
import type { BoardStatus } from "../deploy/status.ts";
import { probeBoard, type StatusOptions, type StatusTarget } from "../deploy/status_probe.ts";

/** Addresses asked at once: each holds a TCP and a UDP socket while asked. */
export const DEFAULT_SCAN_CONCURRENCY = 64;
/** Each step per address: a board on the LAN answers in milliseconds. */
export const DEFAULT_SCAN_TIMEOUT_MS = 1000;

export interface ScanOptions
  extends Pick<StatusOptions, "manifest" | "known" | "release" | "question"> {
  port: number;
  timeoutMs?: number;
  concurrency?: number;
  /** The WebREPL password for every address, or why there is none (then: handshake only). */
  password: StatusTarget["password"];
  /** Signs the OTA-mode question, or why it cannot be asked. */
  signer: StatusTarget["signer"];
  /** Each address as it is done: its row when something answered, with the count. */
  onAddress?: (found: BoardStatus | undefined, done: number, total: number) => void;
}

/** `scan --json`. */
export interface ScanReport {
  /** Addresses asked. */
  scanned: number;
  port: number;
  /** Whether the OTA-mode question was asked, or why not. */
  otaQuestion: true | { missing: string };
  /** Boards: a WebREPL answered, or the OTA server did. In address order. */
  boards: BoardStatus[];
  /** Addresses whose port accepts TCP without being WebREPL (not boards of ours). */
  others: string[];
}

/** Asks every address. Needs `--allow-net`. */
export async function scanRange(
  addresses: readonly string[],
  options: ScanOptions,
): Promise<ScanReport> {
  const rows = await mapPool(
    addresses,
    options.concurrency ?? DEFAULT_SCAN_CONCURRENCY,
    (ip) =>
      probeBoard(
        {
          device: { name: ip, ip, port: options.port },
          password: options.password,
          signer: options.signer,
        },
        {
          timeoutMs: options.timeoutMs ?? DEFAULT_SCAN_TIMEOUT_MS,
          ...(options.manifest ? { manifest: options.manifest } : {}),
          ...(options.known ? { known: options.known } : {}),
          ...(options.release ? { release: options.release } : {}),
          ...(options.question ? { question: options.question } : {}),
        },
      ),
    (row, done) =>
      options.onAddress?.(
        row.state === "app" || row.state === "ota" ? row : undefined,
        done,
        addresses.length,
      ),
  );
  return {
    scanned: addresses.length,
    port: options.port,
    otaQuestion: "sign" in options.signer ? true : { missing: options.signer.missing },
    boards: rows.filter((r) => r.state === "app" || r.state === "ota"),
    others: rows.filter((r) => r.state === "silent").map((r) => r.ip),
  };
}
