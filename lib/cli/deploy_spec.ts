/** `deno task deploy`'s options, notes and examples (its --help). */
import { type CommandSpec, DEVICE_PORT_RENAMED } from "./cli.ts";
import { DEFAULT_DEVICE_PORT, MAX_TIMEOUT_S } from "../config/values.ts";
import { KEY_OPTION, onlyOption } from "./shared_options.ts";
import { PASSWORD_ENV } from "../webrepl/password.ts";
import { DEFAULT_TIMEOUT_S } from "./deploy_args.ts";

export const spec: CommandSpec = {
  name: "deploy",
  summary:
    "Send firmware to a yaota8266 device over Wi-Fi: preflight, sign, push, check that it boots.",
  positionals: "[FILE]",
  renamed: DEVICE_PORT_RENAMED,
  options: {
    ip: { type: "string", arg: "ADDR", help: "the device's address (default: config ip)" },
    "device-port": {
      type: "string",
      arg: "PORT",
      help:
        `its OTA (UDP) port, and WebREPL (TCP) port for --trigger (default ${DEFAULT_DEVICE_PORT})`,
    },
    key: KEY_OPTION,
    block: {
      type: "string",
      arg: "N",
      help: "auto (probe 1024, 512, 256) or 256|512|1024 (default auto)",
    },
    pace: {
      type: "string",
      arg: "MODE",
      help: "auto (hide the round trip) or off (stop-and-wait)",
    },
    timeout: {
      type: "string",
      arg: "S",
      help:
        `fail when the device answers nothing for S seconds (default ${DEFAULT_TIMEOUT_S}, at most ${MAX_TIMEOUT_S})`,
    },
    "boot-check": {
      type: "boolean",
      help: "after the end packet, check the device boots the image (default on; --no-boot-check)",
    },
    "boot-check-window": {
      type: "string",
      arg: "S",
      help: "how long to watch for a failed boot; must outlast the device's reboot (default 6)",
    },
    "app-offset": {
      type: "string",
      arg: "ADDR",
      help: "the device's MAIN_APP_OFFSET (default: config, else 0x3c000)",
    },
    "flash-size": {
      type: "string",
      arg: "SIZE",
      help: "the device's flash size (default: config, else 1M)",
    },
    force: {
      type: "boolean",
      help:
        "send an image that fails inspection (it may brick the app); with --trigger, also to boards that run this build already",
    },
    "allow-downgrade": {
      type: "boolean",
      help: "with --trigger: push even to a board that runs a newer build",
    },
    "allow-filesystem-move": {
      type: "boolean",
      help: "with --trigger: push an image that moves the board's filesystem (its files are lost)",
    },
    release: {
      type: "string",
      arg: "ID|previous",
      help:
        "send a kept build (dist/releases/ID, a unique prefix of 4+ digits will do) or the one before the current build",
    },
    json: { type: "boolean", help: "print one JSON object with the result on stdout" },
    fleet: {
      type: "boolean",
      help:
        'deploy to every device in the config\'s "devices" list, N at a time, and print a table',
    },
    only: onlyOption("device"),
    concurrency: {
      type: "string",
      arg: "N",
      help: "with --fleet: devices updated at once (default 4)",
    },
    canary: {
      type: "string",
      arg: "N",
      help: "with --fleet: the first N devices alone first; the rest only if each runs the build",
    },
    "max-failures": {
      type: "string",
      arg: "K",
      help: "with --fleet: start no device after K have failed (the rest: not attempted)",
    },
    retries: {
      type: "string",
      arg: "N",
      help: "try a board that is offline or not answering N more times (default 0)",
    },
    "retry-delay": {
      type: "string",
      arg: "S",
      help: "with --retries: the first wait, doubled for each next one, at most 30 s (default 2)",
    },
    events: {
      type: "boolean",
      help: "JSON lines on stdout, one per event (see the README); the report goes to stderr",
    },
    trigger: {
      type: "boolean",
      help: "enter OTA mode over WebREPL first, then check the new version runs",
    },
    password: {
      type: "string",
      arg: "P",
      help: "WebREPL password for --trigger (visible in ps: prefer WEBREPL_PASSWORD or the prompt)",
    },
  },
  notes: [
    "FILE is a raw firmware image (signed on the fly) or a canned .ota file made by 'deno task sign' " +
    "(sent as it is, after its SHA1 trailer is checked). Without FILE: dist/firmware-ota.bin (in " +
    'the config\'s "out" folder if it names one), which must be the image its manifest.json ' +
    "describes, built for the device's app offset. After a failed build-ota it is absent (the " +
    "build before is in dist/stale/: name it to send it).",
    "Before the first packet the image is inspected as 'deno task inspect' does; an image that would " +
    "not boot at the app offset is refused unless --force.",
    "Ctrl-C stops at once and sends nothing more: the device restarts its session after 10 s and " +
    "running deploy again is safe.",
    "ADDR is one board's IPv4 address or host name (a broadcast, multicast or unspecified address is " +
    "refused). One deploy per board on this machine: a second one to the same address and port is " +
    "refused at once, naming the first (lock files in OTA_LOCK_DIR, default: a folder of this user's " +
    "own in XDG_RUNTIME_DIR or the temp folder).",
    "--trigger (a board running its app): logs in to WebREPL (TCP, same port number), notes the " +
    "running version, runs `import ota; ota.start()`, waits up to 60 s (the device's idle reboot) for " +
    "the OTA server, pushes, waits up to 60 s for WebREPL to come back and reports the new version; " +
    "coming back with the old version is a failure (unless the image names no version: then a " +
    "warning). A board back in its app instead of the OTA server has a bootloader without the RTC " +
    `check: that is reported at once. Password: --password, else ${PASSWORD_ENV}, else ` +
    "a prompt without echo; one login attempt.",
    '--fleet deploys to the devices of the config\'s "devices" list: the preflight once, then each ' +
    "device with its own progress line, each failure in its own row. The exit code is 0 only if every " +
    "device succeeded; the report names the command that retries the others. With --trigger each " +
    'device\'s WebREPL password comes from the variable its "passwordEnv" names, else WEBREPL_PASSWORD.',
    "Builds (with --trigger): the board's build id (ota.BUILD) is read before the reset. A board " +
    "that runs the build being sent is skipped ('up to date'; --force sends anyway); one that runs " +
    "a newer build (by build time, from dist/releases/) is refused unless --allow-downgrade; after " +
    "the push, the board must report the new build id. The build being sent is known from its " +
    "manifest: dist/manifest.json, the release's, or a manifest.json beside FILE describing it.",
    "Rollouts (--fleet): --canary N updates the first N devices alone and goes on only if each " +
    "of them ends up running the build; --max-failures K stops starting devices once K failed; " +
    "--retries N tries devices that were offline or did not answer again after 2, 4, 8... s. " +
    "Every device ends updated, skipped, failed or not attempted; the report ends with the " +
    "command that retries the failed and resumes the rest.",
    "--release previous sends the build before the current one (dist/manifest.json): the only " +
    "way back a single-slot bootloader has. A release named this way may be older than the " +
    "board's build: that downgrade is what was asked for.",
  ],
  examples: [
    "deno task deploy --ip 192.168.4.1",
    "deno task deploy --ip 192.168.4.1 dist/firmware-ota.bin --json",
    `${PASSWORD_ENV}=... deno task deploy --ip 192.168.4.1 --trigger`,
    "deno task deploy --fleet --only sensor --concurrency 2",
    "deno task deploy --fleet --trigger --canary 1 --max-failures 2 --retries 3",
    "deno task deploy --ip 192.168.4.1 --trigger --release previous",
  ],
};
