/**
 * `build-bootloader --quiet-log`: the OTA server without its per-packet serial log
 * (lib/format/bootloader_image.ts says why it matters). This module edits `ota-server/ota.c` so
 * that the lines `ota_udp_incoming` prints for every packet go through a macro,
 * `PKT_LOG`, that is `printf` unless config.h sets `OTA_PACKET_LOG` to 0; every other
 * line (errors, the sector writes, the end of a session) stays a plain `printf`. The
 * edit is inert by itself (without the define the log is on), idempotent, and
 * build-bootloader keeps the tree's original once as `ota.c.orig`. Pure: text in, text out.
 */
import { PER_PACKET_LOG_FORMATS } from "../format/bootloader_image.ts";

/** The config.h setting the edit reads: 1 logs every packet, 0 does not. */
export const PACKET_LOG_DEFINE = "OTA_PACKET_LOG";
/** What the per-packet `printf` calls become. */
export const PACKET_LOG_CALL = "PKT_LOG";

const BEGIN = "/* >>> per-packet log";
const END = "/* <<< per-packet log */";
const GATE = [
  `${BEGIN}: added by deno task build-bootloader. config.h sets ${PACKET_LOG_DEFINE} (0 with`,
  "   --quiet-log): ~150 characters per packet at 115200 baud cost ~13 ms of every packet. */",
  `#ifndef ${PACKET_LOG_DEFINE}`,
  `#define ${PACKET_LOG_DEFINE} 1`,
  "#endif",
  `#if ${PACKET_LOG_DEFINE}`,
  `#define ${PACKET_LOG_CALL} printf`,
  "#else",
  `#define ${PACKET_LOG_CALL}(...) ((void)0)`,
  "#endif",
  END,
].join("\n");

/** The include the gate goes after: the macro must see config.h's setting. */
const CONFIG_INCLUDE = /^[ \t]*#[ \t]*include[ \t]+"(?:\.\.\/)?config\.h"[^\n]*\n/m;

/** The text a per-packet line's format starts with, as written in C (`"Pkt id: `). */
const formatStart = (format: string) => format.split("%")[0]!.replace(/\n/g, "\\n");

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `printf("Pkt id: ` (or the macro's name in its place), for each per-packet format. */
function callPattern(name: string, format: string): RegExp {
  return new RegExp(`\\b${name}(\\s*\\(\\s*"${escapeRegExp(formatStart(format))})`, "g");
}

/** Does this ota.c route its per-packet lines through this tool's macro? Pure. */
export function hasQuietLogGate(source: string): boolean {
  return source.includes(BEGIN) && source.includes(END) &&
    PER_PACKET_LOG_FORMATS.some((f) => callPattern(PACKET_LOG_CALL, f).test(source));
}

export type QuietLogPlan =
  | { status: "present" }
  | { status: "add"; text: string; summary: string[]; lines: number }
  | { status: "unrecognised"; missing: string };

/**
 * Routes every per-packet `printf` of `ota.c` through `PKT_LOG`, with the macro's
 * definition after the config.h include; nothing if that is done already. Pure.
 */
export function planQuietLog(source: string): QuietLogPlan {
  if (hasQuietLogGate(source)) return { status: "present" };
  const include = CONFIG_INCLUDE.exec(source);
  const found = PER_PACKET_LOG_FORMATS.filter((f) => callPattern("printf", f).test(source));
  const missing = [
    ...(include ? [] : ["the line '#include \"../config.h\"' the macro goes after"]),
    ...(found.length ? [] : [
      "the per-packet printf lines of ota_udp_incoming (" +
      PER_PACKET_LOG_FORMATS.map((f) => `"${formatStart(f)}…"`).join(", ") + ")",
    ]),
  ];
  if (!include || found.length === 0) {
    return { status: "unrecognised", missing: missing.join(" and ") };
  }
  let text = source;
  for (const f of found) text = text.replace(callPattern("printf", f), `${PACKET_LOG_CALL}$1`);
  const at = CONFIG_INCLUDE.exec(text)!;
  const end = at.index + at[0].length;
  text = `${text.slice(0, end)}\n${GATE}\n${text.slice(end)}`;
  return {
    status: "add",
    text,
    lines: found.length,
    summary: [
      `+ #define ${PACKET_LOG_CALL} printf, or nothing when ${PACKET_LOG_DEFINE} is 0 (after the config.h include)`,
      ...found.map((f) =>
        `- printf("${formatStart(f)}…") → ${PACKET_LOG_CALL}("${formatStart(f)}…")`
      ),
    ],
  };
}
