/**
 * What the dashboard needs from the rest of the toolchain, as one typed interface: the
 * server and the page see only these types. One module adapts the toolchain to it
 * (`fleet_port.ts`); tests hand the server a fake. The shapes are the toolchain's own,
 * imported as types only: a board is its row of `status --json`, an event is one of the
 * `--events` stream of `deploy --fleet`, so the page shows what a CI job reading that
 * stream would see.
 */
import type { BuildStamp } from "../build/build_id.ts";
import type { BuildComparison } from "../deploy/build_compare.ts";
import type { DeviceResult, EventPhase, OtaEvent } from "../deploy/events.ts";
import type { BoardStatus as ProbedBoard } from "../deploy/status.ts";

export type { BuildComparison, DeviceResult, EventPhase };

/** How a board answered: it runs its app (WebREPL answers), is in OTA mode, or neither. */
export type BoardState = ProbedBoard["state"];

/**
 * One board of the inventory (`ota.config.json`'s `devices`) and, once it was asked, its
 * row of `deno task status --json`: state, MicroPython, the build it names, that build
 * against the current one, the kept release it runs, a note. Never a password.
 */
export interface BoardStatus
  extends Partial<Omit<ProbedBoard, "name" | "ip" | "port" | "comparison">> {
  name: string;
  tags: string[];
  /** `ip:port`. */
  address: string;
  comparison: BuildComparison;
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
  /** How a person names it: "3f2a9c1e0b7d (1.2.0)", or the image's hash (no build id). */
  label: string;
  file: string;
  size: number;
  sha256: string;
  builtAt?: string;
  /** The `--version` label, else the MicroPython version in the image's banner. */
  version?: string;
  appOffset: string;
  /** The irom link address found in the image (hex). */
  linkAddress?: string;
  /** The frozen modules, by name. */
  modules: string[];
  verdict: ImageVerdict;
  /** Whether the image is the one the manifest describes (SHA-256 and app offset). */
  matchesManifest: boolean;
}

/** A build kept under `dist/releases/<id>/`, which can be sent again. */
export interface Release extends BuildStamp {
  /** It is the current build. */
  current: boolean;
}

/** Which boards a rollout is for. */
export type RolloutTarget =
  | { kind: "board"; name: string }
  | { kind: "tag"; tag: string }
  | { kind: "fleet" };

/** A rollout as the page asks for it: the options of `deploy --fleet`. */
export interface RolloutRequest {
  target: RolloutTarget;
  /** A kept release's build id (sent even if older: a rollback); absent: the current build. */
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

/**
 * The events of a rollout: the `--events` stream of `deploy --fleet` (lib/deploy/events.ts)
 * but `device.status`, which a rollout does not send; `run.ended` comes without its
 * `report` (the rows are in the `device.result` events).
 */
export type RolloutEventBody = Exclude<OtaEvent, { type: "device.status" }>;

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
   * @throws {UsageError} If it names no board, or an unknown board or tag.
   * @throws {FileError} If there is no build to send, or no kept release of that id.
   */
  plan(request: RolloutRequest): Promise<RolloutPlan>;
  /**
   * Runs the rollout, every step an event through `onEvent` (from `run.started` to
   * `run.ended`, which it always sends, also on an error before the first board).
   * Aborting `signal` starts no further board; running ones stop sending. A reason in
   * words (`abort("stopped from the page")`) is the `interrupted` decision's detail.
   */
  rollout(
    request: RolloutRequest,
    onEvent: (event: RolloutEvent) => void,
    signal: AbortSignal,
  ): Promise<void>;
}
