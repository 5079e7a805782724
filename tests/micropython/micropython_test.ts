import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { compileCheck, startMicroPython } from "../../lib/micropython/vm.ts";

Deno.test("startMicroPython() runs two independent VMs side by side", async () => {
  using a = await startMicroPython();
  using b = await startMicroPython();
  await a.run("x = 1");
  assertEquals(
    (await b.run("try:\n  print(x)\nexcept NameError:\n  print('independent')")).output,
    "independent\n",
  );
  assertEquals((await a.run("print(x + 1)")).output, "2\n");
});

Deno.test("startMicroPython() returns output printed without a newline from its own run", async () => {
  using vm = await startMicroPython();
  assertEquals((await vm.run("print('a', end='')")).output, "a");
  assertEquals((await vm.run("print('b')")).output, "b\n");
});

Deno.test("startMicroPython() passes _host.notify() calls to the JavaScript side", async () => {
  const seen: unknown[] = [];
  using vm = await startMicroPython({ onNotify: (name, payload) => seen.push([name, payload]) });
  await vm.run("import _host\n_host.notify('reset', 'yaotaota')");
  await vm.run("pass");
  assertEquals(seen, [["reset", "yaotaota"]]);
});

Deno.test("compileCheck() reports a SyntaxError with file and line", async () => {
  const error = await compileCheck("x = 1\ndef f(:\n  pass\n", "uartremote.py");
  assertStringIncludes(error ?? "", 'File "uartremote.py", line 2');
  assertStringIncludes(error ?? "", "SyntaxError");
  assertEquals(await compileCheck("x = 1\n", "ok.py"), undefined);
});
