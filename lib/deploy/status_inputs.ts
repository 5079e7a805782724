/**
 * What `status` needs before it asks the boards (`status_probe.ts`): each board's WebREPL
 * password and the signer of its OTA-mode question, or why there is none (a board
 * without them is still asked what it can be), and the builds its answers are compared
 * with (dist/manifest.json's and the kept releases). `deno task status` and the dashboard
 * both start here.
 */
import { UsageError } from "../errors.ts";
import type { OtaConfig } from "../config/config.ts";
import { resolvePort } from "../config/values.ts";
import { resolveAddress } from "../webrepl/target.ts";
import { questionSigner } from "../config/key_file.ts";
import type { Signer } from "../format/packet.ts";
import { checkPassword, PASSWORD_ENV, resolvePassword } from "../webrepl/password.ts";
import {
  currentBuild,
  knownBuilds,
  listReleases,
  releaseById,
  stampOf,
} from "../build/releases.ts";
import { type FleetDevice, selectDevices } from "./fleet.ts";
import type { StatusOptions, StatusTarget } from "./status_probe.ts";

/**
 * A fleet board's password, from its `passwordEnv` variable (else WEBREPL_PASSWORD) as
 * `env` reads it, or why there is none. Never in a message.
 */
export function passwordFromEnv(
  device: FleetDevice,
  env: (name: string) => string | undefined,
): StatusTarget["password"] {
  const name = device.passwordEnv ?? PASSWORD_ENV;
  const value = env(name);
  if (!value) return { missing: `set ${name} to read it over WebREPL` };
  try {
    return { value: checkPassword(value, name) };
  } catch (e) {
    if (e instanceof UsageError) return { missing: e.message };
    throw e;
  }
}

/**
 * The boards with their passwords and signers. Each key is loaded once; one that cannot
 * be loaded only means "OTA mode not asked" for its boards. Needs `--allow-read`.
 */
export async function statusTargets(
  devices: readonly FleetDevice[],
  options: {
    keyPath: (device: FleetDevice) => string;
    password: (device: FleetDevice) => Promise<StatusTarget["password"]> | StatusTarget["password"];
    /** A private key readable by others (see `loadSigningKey`). */
    onWarning?: (message: string) => void;
  },
): Promise<StatusTarget[]> {
  const signers = new Map<string, Signer | { missing: string }>();
  const targets: StatusTarget[] = [];
  for (const device of devices) {
    const keyPath = options.keyPath(device);
    if (!signers.has(keyPath)) {
      signers.set(keyPath, await questionSigner(keyPath, { onWarning: options.onWarning }));
    }
    targets.push({
      device,
      password: await options.password(device),
      signer: signers.get(keyPath)!,
    });
  }
  return targets;
}

/**
 * What the boards' builds are compared with: `out/manifest.json`'s build, the builds whose
 * time is known, and the kept release of an id. Needs `--allow-read`.
 */
export async function statusBuilds(
  out: string,
): Promise<Required<Pick<StatusOptions, "known" | "release">> & Pick<StatusOptions, "manifest">> {
  const [current, releases] = await Promise.all([currentBuild(out), listReleases(out)]);
  return {
    ...(current ? { manifest: stampOf(current) } : {}),
    known: knownBuilds(releases, current),
    release: (id) => {
      const r = releaseById(releases, id);
      return r ? stampOf(r) : undefined;
    },
  };
}

/** Which boards `status` asks: `--ip` (or the config's `ip`), or `--fleet` (`--only`). */
export interface StatusSelection {
  fleet: boolean;
  only: string[];
  ip?: string;
  port?: number;
  /** `--password`, with `--ip` only. */
  password?: string;
}

/**
 * The boards to ask: `--ip`, the config's `ip`, or the fleet.
 * @throws {UsageError} When none is named.
 */
export function statusBoards(selection: StatusSelection, config: OtaConfig): FleetDevice[] {
  if (selection.fleet) {
    return selectDevices(config.devices, selection.only, resolvePort(selection.port, config));
  }
  const { host, port } = resolveAddress(
    selection,
    config,
    'name the board: --ip ADDR (or "ip" in ota.config.json), or --fleet for the config\'s "devices"',
  );
  return [{ name: host, ip: host, port }];
}

/**
 * A board's password, or why there is none: with `--ip`, `--password` or WEBREPL_PASSWORD;
 * with `--fleet`, the board's `passwordEnv` variable. Never in a message.
 */
export async function statusPassword(
  selection: StatusSelection,
  device: FleetDevice,
): Promise<StatusTarget["password"]> {
  if (!selection.fleet) {
    try {
      return {
        value: await resolvePassword({
          ...(selection.password === undefined ? {} : { flag: selection.password }),
          message: `WebREPL password for ${device.ip}:${device.port}: `,
        }),
      };
    } catch (e) {
      // Without a password (and no terminal to ask on) the board is still asked the rest.
      if (e instanceof UsageError && selection.password === undefined) {
        return { missing: e.message };
      }
      throw e;
    }
  }
  return passwordFromEnv(device, (name) => Deno.env.get(name));
}
