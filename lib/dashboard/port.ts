/**
 * What the dashboard needs from the rest of the toolchain, as one typed interface: the
 * server and the page see only these types. One module adapts the toolchain to it
 * (`fleet_port.ts`); tests hand the server a fake. Events are shaped like the `--events`
 * stream of `deploy --fleet` (issue 14: `v`, `seq`, `time`, `type`, then the fields of the
 * type), so that the page shows what a CI job reading that stream would see.
 */

/** How a board answered the last time it was asked. */
export type BoardState =
  /** Its WebREPL port accepts connections: its app runs. */
  | "online"
  /** It answered the OTA-mode question (docs/device.md, "Asking whether a device is in OTA mode"). */
  | "ota"
  /** Neither: off, out of range, busy with someone else's OTA session, or built for another key. */
  | "offline";

/** A board's build against the current one (`dist/manifest.json`). */
export type BuildComparison = "up to date" | "older" | "newer" | "unknown";

/** One board of the inventory (`ota.config.json`'s `devices`) and what it said. */
export interface BoardStatus {
  name: string;
  tags: string[];
  /** `ip:port`. */
  address: string;
  /** Undefined until the board was first asked. */
  state?: BoardState;
  /** `os.uname().version`, e.g. "v1.19.1 on 2022-06-18". */
  micropython?: string;
  /** The build its `ota` module names; null when it names none (firmware before build ids). */
  build?: { id: string; version?: string } | null;
  comparison: BuildComparison;
  /** What went wrong, or what to do next. Never a password. */
  note?: string;
  /** ISO 8601: when it was asked. */
  checkedAt?: string;
}

/** What preflight says of an image: the same verdict as `deno task inspect`. */
export interface ImageVerdict {
  safe: boolean;
  /** One line per failed check. */
  problems: string[];
}

/** The build `deploy` sends by default: `dist/firmware-ota.bin` and its manifest. */
export interface CurrentBuild {
  /** The build id from the manifest; null for a build made before build ids. */
  id: string | null;
  /** How a person names it: "3f2a9c1e0b7d (1.2.0)", or the image's hash and version. */
  label: string;
  file: string;
  size: number;
  sha256: string;
  builtAt?: string;
  /** The `--version` label, or the MicroPython version in the image's banner. */
  version?: string;
  appOffset: string;
  /** The irom link address found in the image (hex). */
  linkAddress?: string;
  /** The frozen modules, by name. */
  modules: string[];
  verdict: ImageVerdict;
  /** Whether the image is the one the manifest describes (same SHA-256). */
  matchesManifest: boolean;
}

/** A build kept under `dist/releases/<id>/`, which can be sent again. */
export interface Release {
  id: string;
  builtAt: string;
  version?: string;
  size?: number;
  /** It is the current build. */
  current: boolean;
}

/** Which boards a rollout is for. */
export type RolloutTarget =
  | { kind: "board"; name: string }
  | { kind: "tag"; tag: string }
  | { kind: "fleet" };

/** A rollout as the page asks for it: the options of `deploy --fleet` (issue 14). */
export interface RolloutRequest {
  target: RolloutTarget;
  /** A kept release's build id; absent: the current build. */
  release?: string;
  /** The first N boards alone; the rest only if every canary took the build (0: none). */
  canary: number;
  /** Start no new board once this many failed; null: no limit. */
  maxFailures: number | null;
  /** Further attempts for a board that was offline or did not answer. */
  retries: number;
  /** Reboot each board into OTA mode over WebREPL first (boards that run their app). */
  trigger: boolean;
  /** Boards updated at once (default 4). */
  concurrency?: number;
}

/** What a request comes to, for the confirmation: the boards and the build, by name. */
export interface RolloutPlan {
  boards: string[];
  /** The build's label (see `CurrentBuild.label`). */
  build: string;
  buildId: string | null;
  file: string;
  size: number;
}

/** The parts of a board's rollout that `phase.started` / `phase.ended` bracket. */
export type EventPhase = "preflight" | "trigger" | "push" | "verify" | "probe";

/** What became of a board in a rollout. */
export type DeviceResult = "updated" | "skipped" | "failed" | "not-attempted";

/** The events of a rollout, as the `--events` stream has them (issue 14). */
export type RolloutEventBody =
  | {
    type: "run.started";
    command: "deploy";
    devices: string[];
    image?: { file: string; size?: number; build?: { id: string; version?: string } };
    policy?: { concurrency: number; canary: number; maxFailures: number | null; retries: number };
  }
  | { type: "phase.started"; phase: EventPhase; device?: string }
  | { type: "phase.ended"; phase: EventPhase; device?: string; ok: boolean; error?: string }
  | {
    type: "progress";
    device: string;
    /** Bytes the board confirmed, of `total`. */
    bytes: number;
    total: number;
    /** Bytes per second since the transfer started. */
    rate: number;
    /** Seconds left at that rate; null before there is a rate. */
    eta: number | null;
    retransmits: number;
    block: number;
  }
  | {
    type: "retry";
    device: string;
    /** The attempt about to start (2 for the first retry), of `attempts`. */
    attempt: number;
    attempts: number;
    delayMs: number;
    reason: string;
    kind?: string;
  }
  | {
    type: "device.result";
    device: string;
    result: DeviceResult;
    reason?: string;
    kind?: string;
    attempts?: number;
    buildBefore?: string;
    buildAfter?: string;
  }
  | {
    type: "rollout.decision";
    decision: "canary-passed" | "canary-failed" | "max-failures" | "interrupted";
    detail: string;
    notAttempted: string[];
  }
  | {
    type: "run.ended";
    ok: boolean;
    exitCode: number;
    counts?: Record<DeviceResult, number>;
    reason?: string;
    kind?: string;
  };

/** An event as sent: the schema's version, its number in the run, and when. */
export type RolloutEvent = RolloutEventBody & { v: number; seq: number; time: string };

/** The toolchain as the dashboard sees it. */
export interface FleetPort {
  /** The inventory, without asking any board. */
  boards(): BoardStatus[];
  /**
   * Asks the boards named (default: all) how they are, at once and each within a bounded
   * time. Never throws for a board: what went wrong is in its `note`.
   */
  status(names?: readonly string[]): Promise<BoardStatus[]>;
  /** The current build, or null when there is none (no `dist/firmware-ota.bin`). */
  currentBuild(): Promise<CurrentBuild | null>;
  /** The kept releases, oldest first. */
  releases(): Promise<Release[]>;
  /**
   * The boards and the build a request means.
   * @throws {UsageError} If it names no board, an unknown tag or release, or bad options.
   * @throws {FileError} If there is no build to send.
   */
  plan(request: RolloutRequest): Promise<RolloutPlan>;
  /**
   * Runs the rollout, every step an event through `onEvent` (from `run.started` to
   * `run.ended`, which it always sends, also on an error before the first board).
   * Aborting `signal` starts no further board; running ones stop sending.
   */
  rollout(
    request: RolloutRequest,
    onEvent: (event: RolloutEvent) => void,
    signal: AbortSignal,
  ): Promise<void>;
}
