/**
 * The virtual device's scheduling priority (`sim --priority`). A board is its own
 * hardware: a busy computer does not slow it. The model of one that shares this machine
 * with a CPU hog (`bench --load`) reads datagrams late whenever the hog holds both cores
 * (measured: 6 % of them more than 2 ms late, 26–38 packets per 160 KiB handled as if two
 * had waited at once, docs/device.md "Re-entrancy"), which a board would not do. Raised
 * above the load, it reads them on time.
 */
import os from "node:os";

export type PriorityResult =
  | { ok: true; nice: number }
  | { ok: false; nice: number; reason: string };

/**
 * Sets this process's nice value (negative: more CPU, needs root or CAP_SYS_NICE). On
 * Linux each thread has its own: every thread running now is set, and the threads started
 * afterwards inherit it from the one that starts them.
 */
export function setProcessPriority(nice: number): PriorityResult {
  try {
    for (const tid of threadIds()) os.setPriority(tid, nice);
    return { ok: true, nice: os.getPriority(0) };
  } catch (e) {
    return {
      ok: false,
      nice: os.getPriority(0),
      reason: (e as { info?: { code?: string } }).info?.code === "EACCES"
        ? "not permitted: raising it needs root or CAP_SYS_NICE"
        : (e as Error).message,
    };
  }
}

/** This process's threads (Linux), else just "this process" (0). */
function threadIds(): number[] {
  try {
    return [...Deno.readDirSync("/proc/self/task")].map((t) => Number(t.name));
  } catch {
    return [0];
  }
}
