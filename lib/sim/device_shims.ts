/**
 * The virtual ESP8266's MicroPython environment: small Python stand-ins for the
 * modules the WebAssembly port lacks (`machine`, `esp`, `webrepl`, `webrepl_setup`,
 * `os.uname`), the frozen `ota.py`, and how they are installed in a fresh VM.
 * They talk to the JavaScript device through `import _host; _host.notify(name, text)`
 * (see `micropython.ts`): `rtc` (RTC user memory, hex), `files` and `reset` (the
 * device's files as JSON).
 */
import { readAssetText } from "../_fs.ts";
import type { MicroPythonVM } from "../micropython/vm.ts";

/** Where the shims go: on the WASM port's `sys.path` (`['', '.frozen', '/lib']`). */
export const SHIM_DIR = "/lib";

/** RTC user memory MicroPython's esp8266 `RTC.memory()` offers. */
export const RTC_USER_MEMORY_BYTES = 492;

/** Folders of the WebAssembly port's own file system, not the device's. */
const SYSTEM_DIRS = ["/dev", "/proc", "/tmp", "/home"];

/** What a boot needs to know about the firmware and the board. */
export interface BoardState {
  /** e.g. "v1.19.1 on 2022-06-18" (`os.uname().version`). */
  version: string;
  /** RTC user memory at boot. */
  rtcMemory: Uint8Array;
  /** Files that survived the last reset, keyed by path from the root ("webrepl_cfg.py"). */
  files: Map<string, string>;
  /** Whether `ota.py` is frozen into the firmware. */
  frozenOta: boolean;
  /**
   * The image's own `ota.py` (`frozen_table.ts`), with its build id; without it the board
   * runs templates/ota.py as it is, which names no build (firmware from before build ids).
   */
  otaSource?: string;
}

/** A Python string literal for `text` (JSON's escapes are all valid Python escapes). */
export function pyString(text: string): string {
  return JSON.stringify(text);
}

/** "1.19.1" from "v1.19.1 on 2022-06-18". */
export function releaseOf(version: string): string {
  return /^v?(\d+(?:\.\d+)*)/.exec(version)?.[1] ?? version.split(" ")[0] ?? version;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `_board`: per-boot facts, `os.uname()`, and the device's files for the host. */
function boardModule(version: string, rtcMemory: Uint8Array, shimPaths: string[]): string {
  return `# Virtual ESP8266 board, generated at each boot by lib/device_shims.ts.
import binascii
import collections
import json
import os
import sys

import _host

VERSION = ${pyString(version)}
RELEASE = ${pyString(releaseOf(version))}
RTC_MEMORY = binascii.unhexlify(${pyString(hex(rtcMemory))})
_SKIP = ${pyString([...SYSTEM_DIRS, ...shimPaths].join("|"))}.split("|")

uname_result = collections.namedtuple(
    "uname_result", ("sysname", "nodename", "release", "version", "machine")
)


def uname():
    return uname_result("esp8266", "esp8266", RELEASE, VERSION, "ESP module with ESP8266")


def files():
    found = {}

    def walk(folder):
        for entry in os.ilistdir(folder):
            path = folder.rstrip("/") + "/" + entry[0]
            if path in _SKIP:
                continue
            if entry[1] == 0x4000:
                walk(path)
                continue
            try:
                with open(path) as f:
                    found[path[1:]] = f.read()
            except (OSError, UnicodeError):
                pass

    walk("/")
    return json.dumps(found)


def sync():
    _host.notify("files", files())


# The WASM port's os has no uname(). Its os is a frozen package over a built-in
# module that takes no new attributes, so patch the package and make uos name it.
os.uname = uname
sys.modules["uos"] = os
os.chdir("/")
`;
}

const MACHINE = `# Virtual ESP8266: the parts of machine the OTA toolchain uses.
import binascii

import _board
import _host

_memory = _board.RTC_MEMORY


class RTC:
    def memory(self, data=None):
        global _memory
        if data is None:
            return _memory
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        if len(data) > ${RTC_USER_MEMORY_BYTES}:
            raise ValueError("buffer too long")
        _memory = data
        _host.notify("rtc", binascii.hexlify(data).decode())


def reset():
    # The host stops this VM as soon as it sees the notification; spin until then so
    # that no further line runs, as on the board.
    import time

    _host.notify("reset", _board.files())
    start = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), start) < 5000:
        pass
    raise SystemExit("machine.reset(): the host did not stop the VM")


def soft_reset():
    reset()


def freq(hz=None):
    return 80000000


def unique_id():
    return b"\\x8e\\x26\\x0a\\x00"
`;

const ESP = `# Virtual ESP8266: a minimal esp module.
def osdebug(level):
    pass


def flash_size():
    return 1048576


def flash_id():
    return 0x1640E0


def check_fw():
    return True


def flash_user_start():
    # Where the irom of an OTA build with the usual layout ends (docs/device.md).
    return 0xD4000
`;

const WEBREPL = `# Virtual ESP8266: the host runs the WebREPL server, so these are no-ops.
def start(port=8266, password=None):
    pass


def start_foreground(port=8266, password=None):
    pass


def stop():
    pass
`;

/**
 * Enough of webrepl_setup for \`from webrepl_setup import *; change_daemon(True)\`.
 * Importing it does not start the interactive setup (the VM cannot read input).
 */
const WEBREPL_SETUP = `# Virtual ESP8266: webrepl_setup without the interactive part.
import os

RC = "/boot.py"
CONFIG = "/webrepl_cfg.py"
_LINES = ("import webrepl", "webrepl.start()")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def exists(fname):
    try:
        os.stat(fname)
        return True
    except OSError:
        return False


def get_daemon_status():
    for line in _read(RC).split("\\n"):
        if "webrepl" in line:
            return not line.startswith("#")
    return None


def change_daemon(action):
    lines = _read(RC).split("\\n")
    if lines and lines[-1] == "":
        lines.pop()
    seen = False
    for i, line in enumerate(lines):
        if any(p in line for p in _LINES):
            seen = True
            bare = line.lstrip("#")
            lines[i] = bare if action else "#" + bare
    if not seen and action:
        lines.extend(_LINES)
    with open(RC, "w") as f:
        f.write("\\n".join(lines) + "\\n")


def main():
    status = get_daemon_status()
    print("WebREPL daemon auto-start status:", "enabled" if status else "disabled")
    print("(the interactive setup is not simulated: use change_daemon() and webrepl_cfg.py)")
`;

/** `boot.py` as MicroPython's esp8266 `inisetup.py` writes it on a fresh file system. */
export const DEFAULT_BOOT_PY =
  `# This file is executed on every boot (including wake-boot from deepsleep)
#import esp
#esp.osdebug(None)
import uos, machine
#uos.dupterm(None, 1) # disable REPL on UART(0)
import gc
#import webrepl
#webrepl.start()
gc.collect()
`;

/** The frozen `ota.py`, read from templates/ (the file `build-ota` freezes). */
export function readOtaTemplate(): Promise<string> {
  return readAssetText(new URL("../../templates/ota.py", import.meta.url));
}

/** Path → source of every shim for one boot. */
export function shimFiles(board: BoardState, otaSource?: string): Map<string, string> {
  const names = ["_board", "machine", "esp", "webrepl", "webrepl_setup"];
  if (board.frozenOta) names.push("ota");
  const paths = names.map((n) => `${SHIM_DIR}/${n}.py`);
  const sources = [
    boardModule(board.version, board.rtcMemory, paths),
    MACHINE,
    ESP,
    WEBREPL,
    WEBREPL_SETUP,
  ];
  if (board.frozenOta) sources.push(otaSource ?? "");
  return new Map(paths.map((p, i) => [p, sources[i]!]));
}

/**
 * Makes a fresh VM the board after a reset: writes the shims, the surviving files,
 * loads `_board` (which patches `os.uname` and changes to `/`) and runs `boot.py`
 * in `__main__`, as the firmware does. Returns boot.py's error text, if any.
 */
export async function installShims(
  vm: MicroPythonVM,
  board: BoardState,
): Promise<string | undefined> {
  const ota = board.frozenOta ? board.otaSource ?? await readOtaTemplate() : undefined;
  for (const [path, source] of shimFiles(board, ota)) await vm.writeFile(path, source);
  for (const [path, text] of board.files) await vm.writeFile("/" + path.replace(/^\/+/, ""), text);
  const loaded = await vm.run("__import__('_board')");
  if (loaded.error) throw new Error(`the device shims failed to load: ${loaded.error}`);
  if (!board.files.has("boot.py")) return undefined;
  return (await vm.run("execfile('/boot.py')")).error;
}

/**
 * `PASS` from the VM's `webrepl_cfg.py`, read the way `webrepl.start()` does (by
 * importing it), or undefined when there is none.
 */
export async function readWebReplPassword(vm: MicroPythonVM): Promise<string | undefined> {
  const r = await vm.run(
    "def _webrepl_pass():\n" +
      "    try:\n" +
      "        import webrepl_cfg\n" +
      "    except ImportError:\n" +
      "        return\n" +
      "    import binascii\n" +
      "    print('PASS=' + binascii.hexlify(str(webrepl_cfg.PASS).encode()).decode())\n" +
      "_webrepl_pass()\n" +
      "del _webrepl_pass\n",
  );
  const m = /PASS=([0-9a-f]*)/.exec(r.output);
  if (!m) return undefined;
  const bytes = new Uint8Array((m[1]!.match(/../g) ?? []).map((h) => parseInt(h, 16)));
  return new TextDecoder().decode(bytes);
}

/** Whether `boot.py` starts WebREPL (an uncommented `webrepl.start()`). */
export function webReplEnabled(files: Map<string, string>): boolean {
  return (files.get("boot.py") ?? "").split("\n").some((l) => /^\s*webrepl\.start\(/.test(l));
}
