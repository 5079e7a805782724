/**
 * `--json` shapes shared by the tasks: flash addresses as hex strings everywhere
 * (`"appOffset": "0x3c000"`), as the config, the manifest and `sign --json` write them.
 */
import { formatHex } from "../_bytes.ts";

/** The fields that hold a flash address or offset. */
const OFFSET_FIELDS = new Set(["appOffset", "otaServerAt", "boot8266End"]);

/**
 * A copy of `value` whose offset fields (at any depth) are hex strings. Pure.
 * @example
 * ```ts
 * const out = hexOffsets({ ok: true, bootloader: { appOffset: 0x3c000 } });
 * if (JSON.stringify(out) !== '{"ok":true,"bootloader":{"appOffset":"0x3c000"}}') throw new Error();
 * ```
 */
export function hexOffsets<T>(value: T): unknown {
  if (Array.isArray(value)) return value.map((v) => hexOffsets(v));
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      OFFSET_FIELDS.has(k) && typeof v === "number" ? formatHex(v) : hexOffsets(v),
    ]),
  );
}
