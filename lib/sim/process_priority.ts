/**
 * The virtual device's scheduling priority (`sim --priority`). A board is its own
 * hardware: a busy computer does not slow it. The model of one that shares this machine
 * with a CPU hog (`bench --load`) reads datagrams late whenever the hog holds both cores
 * (measured: 6 % of them more than 2 ms late, 26–38 packets per 160 KiB handled as if two
 * had waited at once, docs/device.md "Re-entrancy"), which a board would not do. Raised
 * above the load, it reads them on time.
 */
import os from "node:os";
import { errnoName, lastErrno } from "../_libc.ts";

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

export type RealtimeResult = { ok: true } | { ok: false; reason: string };

/** The real-time priority asked for: above ordinary work, far below the kernel's own. */
const FIFO_PRIORITY = 10;
const SCHED_FIFO = 1;

/**
 * Puts every thread of this process in the real-time class (Linux `SCHED_FIFO`), the
 * threads started afterwards inheriting it. A model of a board at nice -10 still read a
 * datagram 2-4 ms late a few times a run under `bench --load` (its thread waiting for a
 * core), two packets then taken as arriving together, one inside the other's signature
 * check; in this class, none. The device process sleeps between events, and the kernel
 * keeps a share of each second for other work (`sched_rt_runtime_us`).
 */
export function setRealtime(): RealtimeResult {
  if (Deno.build.os !== "linux") return { ok: false, reason: "only on Linux" };
  let lib;
  try {
    lib = Deno.dlopen("libc.so.6", {
      sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
      errno: { name: "__errno_location", parameters: [], result: "pointer" },
    });
  } catch (e) {
    return { ok: false, reason: `no access to the C library (${(e as Error).message})` };
  }
  try {
    const param = new Int32Array([FIFO_PRIORITY]);
    for (const tid of threadIds()) {
      if (lib.symbols.sched_setscheduler(tid, SCHED_FIFO, param) !== 0) {
        const errno = errnoName(lastErrno(lib.symbols.errno()));
        return {
          ok: false,
          reason: errno === "EPERM" ? "not permitted: it needs root or CAP_SYS_NICE" : errno,
        };
      }
    }
    return { ok: true };
  } finally {
    lib.close();
  }
}
