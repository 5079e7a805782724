/**
 * The precise alarm (a worker waiting on a shared word): it fires once, never before its
 * deadline; a new deadline replaces the old; `clear` cancels; several alarms share the
 * worker, which stops with the last one closed (the test would leak it otherwise).
 */
import { assert, assertEquals } from "../_assert.ts";
import { preciseAlarm } from "../../lib/transfer/precise_timer.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("preciseAlarm: fires once, not before its deadline (to the fraction of a millisecond)", async () => {
  const fired: number[] = [];
  const alarm = preciseAlarm(() => fired.push(performance.now()));
  try {
    const due = performance.now() + 3.4;
    alarm.set(due);
    await sleep(60);
    assertEquals(fired.length, 1);
    assert(fired[0]! >= due, `fired ${(due - fired[0]!).toFixed(3)} ms early`);
  } finally {
    alarm.close();
  }
});

Deno.test("preciseAlarm: a new deadline replaces the old one; clear() cancels", async () => {
  const fired: string[] = [];
  let label = "first";
  const alarm = preciseAlarm(() => fired.push(label));
  try {
    alarm.set(performance.now() + 5);
    label = "second";
    const due = performance.now() + 25;
    alarm.set(due);
    await sleep(15);
    assertEquals(fired, [], "the replaced deadline fired");
    await sleep(40);
    assertEquals(fired, ["second"]);
    alarm.set(performance.now() + 5);
    alarm.clear();
    await sleep(30);
    assertEquals(fired, ["second"], "a cleared alarm fired");
  } finally {
    alarm.close();
  }
});

Deno.test("preciseAlarm: two alarms fire in deadline order; closing one leaves the other armed", async () => {
  const fired: string[] = [];
  const a = preciseAlarm(() => fired.push("a"));
  const b = preciseAlarm(() => fired.push("b"));
  const c = preciseAlarm(() => fired.push("c"));
  try {
    const t = performance.now();
    a.set(t + 12);
    b.set(t + 4);
    c.set(t + 8);
    c.close();
    await sleep(50);
    assertEquals(fired, ["b", "a"]);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("preciseAlarm: an alarm left open does not keep the process alive once its deadline passed", async () => {
  // A task that fails half-way (and never closes its sender's alarm) must still exit.
  const module = new URL("../../lib/transfer/precise_timer.ts", import.meta.url).href;
  const program = `
    import { preciseAlarm } from "${module}";
    const a = preciseAlarm(() => console.log("fired"));
    a.set(performance.now() + 20);
    console.log("main done");
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", program],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill(), 10000);
  const out = await child.output();
  clearTimeout(killer);
  assertEquals(new TextDecoder().decode(out.stdout), "main done\nfired\n");
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
});
