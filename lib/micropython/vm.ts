/**
 * Real MicroPython (the WebAssembly port from npm) for running templates and generated
 * snippets: the frozen-module syntax check, the virtual device's REPL, the SPIKE snippets.
 * Each VM runs in its own worker (see `_micropython_worker.ts`).
 */

export interface RunResult {
  /** Everything printed (stdout and stderr). */
  output: string;
  /** The Python traceback text if the code raised. */
  error?: string;
}

export interface MicroPythonVM {
  run(code: string): Promise<RunResult>;
  writeFile(path: string, text: string): Promise<void>;
  readFile(path: string): Promise<string | undefined>;
  /** Stops the VM (a device reset). Idempotent. */
  terminate(): void;
  [Symbol.dispose](): void;
}

export interface StartOptions {
  /**
   * Called when Python code runs `import _host; _host.notify(name, payload)`: how the
   * shims (`machine.reset()`, RTC memory) reach the JavaScript side.
   */
  onNotify?: (name: string, payload: unknown) => void;
}

/** Starts a fresh MicroPython VM. */
export async function startMicroPython(options: StartOptions = {}): Promise<MicroPythonVM> {
  const worker = new Worker(new URL("./_worker.ts", import.meta.url), {
    type: "module",
  });
  const pending = new Map<number, (value: Record<string, unknown>) => void>();
  let nextId = 1;
  let terminated = false;
  await new Promise<void>((resolve, reject) => {
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`MicroPython failed to start: ${e.message}`));
    };
    worker.onmessage = (e: MessageEvent) => {
      if (e.data?.ready) return resolve();
    };
  });
  worker.onmessage = (e: MessageEvent) => {
    const data = e.data as Record<string, unknown>;
    if (typeof data.event === "string") {
      options.onNotify?.(data.event, data.payload);
      return;
    }
    const resolve = pending.get(data.id as number);
    pending.delete(data.id as number);
    resolve?.(data);
  };
  const call = (request: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      if (terminated) return reject(new Error("MicroPython VM was stopped"));
      const id = nextId++;
      pending.set(id, resolve);
      worker.postMessage({ ...request, id });
    });
  const terminate = () => {
    if (terminated) return;
    terminated = true;
    worker.terminate();
    for (const resolve of pending.values()) resolve({ output: "", error: "VM stopped" });
    pending.clear();
  };
  return {
    run: async (code) => {
      const r = await call({ op: "run", code });
      return { output: String(r.output ?? ""), ...(r.error ? { error: String(r.error) } : {}) };
    },
    writeFile: async (path, text) => {
      await call({ op: "writeFile", path, text });
    },
    readFile: async (path) => {
      const r = await call({ op: "readFile", path });
      return typeof r.text === "string" ? r.text : undefined;
    },
    terminate,
    [Symbol.dispose]: terminate,
  };
}

/**
 * Compiles `source` with MicroPython's own compiler; returns the SyntaxError text
 * (with file name and line) or undefined when it compiles.
 */
export async function compileCheck(
  source: string,
  fileName: string,
  vm?: MicroPythonVM,
): Promise<string | undefined> {
  const own = vm ?? await startMicroPython();
  try {
    await own.writeFile("/_check_src.py", source);
    const r = await own.run(
      `compile(open('/_check_src.py').read(), ${JSON.stringify(fileName)}, 'exec')`,
    );
    if (!r.error) return undefined;
    return r.error.split("\n").filter((l) =>
      l.trim() && !l.includes('"<stdin>"') && !l.startsWith("Traceback")
    ).map((
      l,
    ) => l.trim()).join(": ");
  } finally {
    if (!vm) own.terminate();
  }
}
