/**
 * The software trigger in boot8266's source (docs/device.md, "Entering OTA mode"):
 * upstream yaota8266 enters OTA mode only on a GPIO change or an invalid app; the
 * extension also enters it when RTC user memory holds `yaotaota`, which is what
 * `ota.start()` leaves there. This module finds the check in `boot8266/boot8266.c`,
 * adds ours (`templates/rtc_trigger.c`) before the GPIO check, or takes ours out again
 * (`--no-rtc-trigger`). Pure: text in, text out.
 */

export const RTC_TRIGGER_TEMPLATE = new URL("../../templates/rtc_trigger.c", import.meta.url);

/** `yaot` and `aota` read as little-endian 32-bit words: the magic boot8266 compares. */
export const RTC_MAGIC_WORDS = [0x746f6179, 0x61746f61] as const;

const BEGIN = "/* >>> RTC trigger";
const END = "/* <<< RTC trigger */";
/** The call our edit puts in front of the GPIO check. */
const CALL = "check_rtc_trigger() || ";
/** Upstream start()'s mode check: `bool ota = check_buttons();`. */
const MODE_CHECK = /(\bbool\s+ota\s*=\s*)(check_buttons\s*\(\s*\)\s*;)/;
/** The definition our function goes in front of. */
const START_DEFINITION = /^void\s+start\s*\(\s*(?:void\s*)?\)/m;

/** The source without its comments (so a commented-out check does not count). Pure. */
export function stripCComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, " ");
}

/** Does this boot8266.c compare RTC memory with both magic words? Pure. */
export function hasRtcTrigger(source: string): boolean {
  const code = stripCComments(source).toLowerCase();
  return RTC_MAGIC_WORDS.every((w) => new RegExp(`\\b0x0*${w.toString(16)}u?l?\\b`).test(code));
}

/** Is the check in this boot8266.c the one this tool added? Pure. */
export function hasOurRtcTrigger(source: string): boolean {
  return source.includes(BEGIN) && source.includes(END) && source.includes(CALL);
}

/** What an RTC-trigger plan found: the new text, or why the source cannot take the edit. */
export type RtcTriggerPlan =
  | { status: "present"; ours: boolean }
  | { status: "absent" }
  | { status: "add" | "remove"; text: string; summary: string[] }
  | { status: "unrecognised"; missing: string };

/**
 * With `wanted`, adds the check (the template's function before `void start()`, and a
 * call in front of `check_buttons()` in the mode check) unless it is there. Without,
 * takes out the check this tool added; a check someone else wrote is reported as
 * present and left alone. Idempotent. Pure.
 */
export function planRtcTrigger(source: string, template: string, wanted: boolean): RtcTriggerPlan {
  const present = hasRtcTrigger(source);
  if (!wanted) {
    if (!present) return { status: "absent" };
    if (!hasOurRtcTrigger(source)) return { status: "present", ours: false };
    return {
      status: "remove",
      text: removeRtcTrigger(source),
      summary: [`- ${FUNCTION_LINE}`, `- ${CALL_LINE}`, `+ ${PLAIN_CALL_LINE}`],
    };
  }
  if (present) return { status: "present", ours: hasOurRtcTrigger(source) };
  const start = START_DEFINITION.exec(source);
  const check = MODE_CHECK.exec(source);
  const missing = [
    ...(start ? [] : ["the definition 'void start()'"]),
    ...(check ? [] : ["the mode check 'bool ota = check_buttons();'"]),
  ];
  if (!start || !check) return { status: "unrecognised", missing: missing.join(" and ") };
  let text = source.replace(MODE_CHECK, (_, lhs: string, call: string) => `${lhs}${CALL}${call}`);
  const at = START_DEFINITION.exec(text)!.index;
  text = text.slice(0, at) + template.replace(/\n*$/, "\n\n") + text.slice(at);
  const lines = template.trimEnd().split("\n").length;
  return {
    status: "add",
    text,
    summary: [
      `+ ${FUNCTION_LINE} (${lines} lines from templates/rtc_trigger.c, before void start())`,
      `- ${PLAIN_CALL_LINE}`,
      `+ ${CALL_LINE}`,
    ],
  };
}

const FUNCTION_LINE = "static bool check_rtc_trigger(void) { … }";
const PLAIN_CALL_LINE = "bool ota = check_buttons();";
const CALL_LINE = `bool ota = ${CALL}check_buttons();`;

/** The source without this tool's check: the exact reverse of the edit. Pure. */
export function removeRtcTrigger(source: string): string {
  const begin = source.indexOf(BEGIN);
  const end = source.indexOf(END);
  if (begin < 0 || end < begin) return source;
  let after = end + END.length;
  while (source[after] === "\n" && after - (end + END.length) < 2) after++;
  return (source.slice(0, begin) + source.slice(after)).replace(CALL, "");
}
