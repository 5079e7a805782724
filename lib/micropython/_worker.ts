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

/**
 * What the current `run` printed (stdout and stderr, in order), as raw bytes. Not line
 * buffered: with the package's default, text printed without a newline
 * (`print('a', end='')`) would be held back and show up in the next run's output. With
 * `linebuffer: false` the package calls these with each byte as a `Uint8Array`.
 */
let printed: Uint8Array[] = [];
const collect = (bytes: Uint8Array) => printed.push(bytes);
const vm = await loadMicroPython({ stdout: collect, stderr: collect, linebuffer: false });
const decoder = new TextDecoder();
/** Everything printed since the last call, decoded at once (multi-byte characters arrive split). */
function takeOutput(): string {
  const bytes = new Uint8Array(printed.reduce((n, chunk) => n + chunk.length, 0));
  let at = 0;
  for (const chunk of printed) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  printed = [];
  return decoder.decode(bytes);
}
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
      printed = [];
      try {
        vm.runPython(req.code);
        self.postMessage({ id: req.id, output: takeOutput() });
      } catch (err) {
        const error = String((err as Error).message ?? err);
        self.postMessage({ id: req.id, output: takeOutput(), error });
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
