/// <reference lib="deno.worker" />
/**
 * Hosts one MicroPython WebAssembly VM. Two VMs in one JavaScript realm corrupt each
 * other's proxy tables ("NULL object"), so each VM lives in its own worker.
 */
import { loadMicroPython } from "micropython";

type Request =
  | { id: number; op: "run"; code: string }
  | { id: number; op: "writeFile"; path: string; text: string }
  | { id: number; op: "readFile"; path: string };

let output = "";
const vm = await loadMicroPython({
  stdout: (line: string) => (output += line + "\n"),
  stderr: (line: string) => (output += line + "\n"),
});
vm.registerJsModule("_host", {
  notify: (name: string, payload: unknown) => {
    const value = payload && typeof payload === "object" && "toJs" in payload
      // deno-lint-ignore no-explicit-any
      ? (payload as any).toJs()
      : payload;
    self.postMessage({ event: name, payload: value });
  },
});

self.onmessage = (e: MessageEvent<Request>) => {
  const req = e.data;
  try {
    if (req.op === "run") {
      output = "";
      try {
        vm.runPython(req.code);
        self.postMessage({ id: req.id, output });
      } catch (err) {
        self.postMessage({ id: req.id, output, error: String((err as Error).message ?? err) });
      }
    } else if (req.op === "writeFile") {
      const dir = req.path.split("/").slice(0, -1).join("/");
      if (dir) vm.FS.mkdirTree(dir);
      vm.FS.writeFile(req.path, req.text);
      self.postMessage({ id: req.id });
    } else {
      let text: string | undefined;
      try {
        text = vm.FS.readFile(req.path, { encoding: "utf8" });
      } catch {
        text = undefined;
      }
      self.postMessage({ id: req.id, text });
    }
  } catch (err) {
    self.postMessage({ id: req.id, error: String(err) });
  }
};
self.postMessage({ ready: true });
