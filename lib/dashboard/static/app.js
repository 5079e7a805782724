// The dashboard page: renders what the server sends over Server-Sent Events (/api/stream)
// and posts actions. The token is in an HttpOnly cookie the page cannot read; its changes
// carry the X-Yaota-Request header, which another site's page cannot send. Everything shown
// is set as text (textContent, text nodes), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

let state = { boards: [], build: null, releases: [], rollout: null, checkedAt: null };
let pending = null; // the request awaiting confirmation

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function badge(text, kind) {
  return el("span", { class: `badge ${kind ?? ""}` }, text);
}

// A table cell that names its column: on a narrow screen each row is a card of labelled
// cells (style.css).
function cell(label, props, ...children) {
  return el("td", { ...props, "data-label": label }, ...children);
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

function showMessage(text) {
  const m = $("message");
  m.textContent = text;
  m.hidden = !text;
}

async function post(path, body = {}) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-yaota-request": "page" },
    body: JSON.stringify(body),
  });
  const value = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(value.error ?? `${response.status}`);
  return value;
}

// A board's state as `deno task status` names it: "app" is a board running its app.
const STATE_LABEL = {
  app: "online",
  ota: "OTA mode",
  silent: "no WebREPL answer",
  offline: "offline",
};
const STATE_KIND = { app: "ok", ota: "warn", silent: "bad", offline: "bad" };
const COMPARISON_KIND = { "up to date": "ok", older: "warn", newer: "warn", unknown: "" };
const RESULT_LABEL = {
  updated: "updated",
  skipped: "skipped (up to date)",
  failed: "failed",
  "not-attempted": "not attempted",
};
const RESULT_KIND = { updated: "ok", skipped: "", failed: "bad", "not-attempted": "warn" };

function buildName(build) {
  return build.version ? `${build.id} (${build.version})` : build.id;
}

function date(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// Until the boards first answered, nothing is known of them: no rollout can be confirmed.
function checked() {
  return Boolean(state.checkedAt);
}

function renderFleet() {
  const boards = state.boards;
  const running = state.rollout?.state === "running";
  const blocked = running || !checked();
  const online = boards.filter((b) => b.state === "app").length;
  const ota = boards.filter((b) => b.state === "ota").length;
  const offline = boards.filter((b) => b.state === "offline").length;
  const checking = boards.filter((b) => !b.state).length;
  const upToDate = boards.filter((b) => b.state && b.comparison === "up to date").length;
  const n = `${boards.length} board${boards.length === 1 ? "" : "s"}`;
  $("fleet-summary").textContent = !boards.length
    ? 'No boards: add a "devices" list to ota.config.json.'
    : !checked()
    ? `${n}: checking…`
    : `${n}: ${online} online, ${ota} in OTA mode, ${offline} offline` +
      (checking ? `, ${checking} checking` : "") + `; ${upToDate} up to date`;
  $("checked").textContent = state.checkedAt
    ? `checked ${time(state.checkedAt)}, every ${state.refreshSeconds} s`
    : "checking the boards…";
  const body = $("fleet").tBodies[0];
  body.replaceChildren(...boards.map((b) => {
    const build = b.build === undefined ? "–" : b.build === null ? "unknown" : buildName(b.build);
    // The kept release it runs (dist/releases/<id>), or a build id we never kept.
    const release = b.release
      ? [
        b.release.version ?? b.release.id,
        el("div", { class: "note" }, `built ${date(b.release.builtAt)}`),
      ]
      : [b.build ? "not kept" : "–"];
    const deploy = el("button", { type: "button", disabled: blocked }, "Deploy…");
    deploy.addEventListener("click", () => ask({ kind: "board", name: b.name }, chosenRelease()));
    // A board not asked yet, or whose rollout result just came in, is being checked: what
    // it answered before is not shown as if it were still true.
    const known = Boolean(b.state);
    return el(
      "tr",
      { "data-board": b.name },
      cell("Board", {}, el("strong", {}, b.name)),
      cell("Tags", {}, ...b.tags.map((t) => el("span", { class: "tag" }, t))),
      cell("Address", { class: "num" }, b.address),
      cell(
        "State",
        { class: "state" },
        known ? badge(STATE_LABEL[b.state], STATE_KIND[b.state]) : badge("checking…"),
      ),
      cell("MicroPython", {}, known ? b.micropython?.version ?? "–" : "–"),
      cell("Build", { class: "build" }, known ? build : "–"),
      cell("Release", { class: "release" }, ...(known ? release : ["–"])),
      cell(
        "vs current",
        { class: "comparison" },
        known ? badge(b.comparison, COMPARISON_KIND[b.comparison]) : badge("checking…"),
        b.note ? el("div", { class: "note" }, b.note) : null,
      ),
      cell("", { class: "action" }, deploy),
    );
  }));
  const tags = [...new Set(boards.flatMap((b) => b.tags))].sort();
  const select = $("tag-select");
  const chosen = select.value;
  select.replaceChildren(...tags.map((t) => el("option", { value: t }, t)));
  if (tags.includes(chosen)) select.value = chosen;
  $("deploy-tag").disabled = blocked || tags.length === 0;
  $("deploy-fleet").disabled = blocked || boards.length === 0;
}

// The build every Deploy button sends: the current one, or a kept release (a rollback).
function chosenRelease() {
  return $("build-select").value || undefined;
}

function renderBuildChoice() {
  const select = $("build-select");
  const chosen = select.value;
  const current = el(
    "option",
    { value: "" },
    `current build${state.build ? ` (${state.build.label})` : ""}`,
  );
  const kept = state.releases.filter((r) => !r.current).slice().reverse().map((r) =>
    el("option", { value: r.id }, `kept release ${r.id}${r.version ? ` (${r.version})` : ""}`)
  );
  select.replaceChildren(current, ...kept);
  if (kept.some((o) => o.value === chosen)) select.value = chosen;
}

function renderBuild() {
  const b = state.build;
  if (!b) {
    $("build").replaceChildren(
      el("p", { class: "muted" }, "No dist/firmware-ota.bin: run deno task build-ota."),
    );
  } else {
    const verdict = b.verdict.safe
      ? badge("preflight: safe to push", "ok")
      : badge("preflight: refused", "bad");
    const rows = [
      ["build id", b.id ?? "none (built before build ids)"],
      ["version", b.version ?? "–"],
      ["built", b.builtAt ? date(b.builtAt) : "–"],
      ["size", bytes(b.size)],
      ["app offset", b.appOffset],
      ["link address", b.linkAddress ?? "–"],
      ["modules", b.modules.length ? b.modules.join(", ") : "–"],
      ["sha256", b.sha256.slice(0, 16) + "…"],
    ];
    $("build").replaceChildren(
      el("div", {}, el("strong", { id: "build-label" }, b.label), " ", verdict),
      el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      ...b.verdict.problems.map((p) => el("p", { class: "note" }, p)),
      ...(b.matchesManifest
        ? []
        : [el("p", { class: "note" }, "The image is not the one dist/manifest.json describes.")]),
    );
  }
  const running = state.rollout?.state === "running";
  renderBuildChoice();
  $("releases").replaceChildren(
    state.releases.length
      ? el(
        "ul",
        {},
        ...state.releases.slice().reverse().map((r) => {
          const again = el(
            "button",
            { type: "button", disabled: running || !checked() },
            "Redeploy to fleet…",
          );
          again.addEventListener("click", () => ask({ kind: "fleet" }, r.id));
          return el(
            "li",
            { "data-release": r.id },
            el("strong", {}, r.id),
            r.version ? ` (${r.version})` : "",
            ` ${date(r.builtAt)} `,
            r.current ? badge("current", "ok") : again,
          );
        }),
      )
      : el("p", { class: "muted" }, "None kept."),
  );
}

const PHASE_LABEL = {
  waiting: "waiting",
  preflight: "preflight",
  trigger: "entering OTA mode",
  push: "sending",
  verify: "checking boot",
  probe: "asking",
  done: "done",
  skipped: "skipped",
  failed: "failed",
  "not attempted": "not attempted",
};

function phaseText(b) {
  const label = PHASE_LABEL[b.phase] ?? b.phase;
  return b.phase === "failed" && b.failedIn
    ? `${label} (while ${PHASE_LABEL[b.failedIn] ?? b.failedIn})`
    : label;
}

function renderRollout() {
  const r = state.rollout;
  const body = $("progress").tBodies[0];
  if (!r) {
    body.replaceChildren();
    return;
  }
  const running = r.state === "running";
  $("rollout-state").textContent = running ? "running" : r.ok ? "done" : "ended with problems";
  $("rollout-state").className = `badge ${running ? "warn" : r.ok ? "ok" : "bad"}`;
  $("rollout-title").textContent = `Build ${r.build}, started ${time(r.startedAt)}` +
    (r.endedAt ? `, ended ${time(r.endedAt)}` : "") +
    (r.policy
      ? ` — canary ${r.policy.canary}, max failures ${r.policy.maxFailures ?? "none"}, ` +
        `retries ${r.policy.retries}, ${r.policy.concurrency} at a time`
      : "");
  body.replaceChildren(...r.boards.map((b) => {
    const bar = el("progress", { max: 100, value: b.percent });
    return el(
      "tr",
      { "data-progress": b.name },
      cell("Board", {}, el("strong", {}, b.name)),
      cell("Phase", { class: "phase" }, phaseText(b)),
      cell("Progress", { class: "num" }, bar, el("span", { class: "percent" }, `${b.percent} %`)),
      cell("Bytes", { class: "num" }, b.total ? `${bytes(b.bytes)} / ${bytes(b.total)}` : "–"),
      // The rate is in bytes per second; shown in KiB/s (1 KiB = 1024 bytes).
      cell("Rate", { class: "num" }, b.rate ? `${(b.rate / 1024).toFixed(1)} KiB/s` : "–"),
      cell("ETA", { class: "num" }, b.eta === null || b.eta === undefined ? "–" : `${b.eta} s`),
      cell("Retries", { class: "num" }, String(b.retries)),
      cell(
        "Result",
        { class: "result" },
        b.result ? badge(RESULT_LABEL[b.result] ?? b.result, RESULT_KIND[b.result]) : null,
        // A skipped board's reason names the build it runs ("up to date: it runs build …").
        b.result !== "skipped" && (b.buildBefore || b.buildAfter)
          ? el("div", { class: "note" }, `build ${b.buildBefore ?? "?"} → ${b.buildAfter ?? "?"}`)
          : null,
        b.reason ? el("div", { class: "note" }, b.reason) : null,
      ),
    );
  }));
  $("decisions").replaceChildren(...r.decisions.map((d) => el("li", {}, d.detail)));
  const counts = ["updated", "skipped", "failed", "not-attempted"]
    .map((k) => [k, r.boards.filter((b) => b.result === k).length])
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${RESULT_LABEL[k]}`);
  $("report-summary").textContent = running
    ? ""
    : `Report: ${counts.join(", ") || "no boards"}${r.reason ? ` — ${r.reason}` : ""}`;
  $("stop").hidden = !running;
  $("events").textContent = r.events.map((e) => JSON.stringify(e)).join("\n");
}

function render() {
  renderFleet();
  renderBuild();
  renderRollout();
}

function options() {
  const number = (id) => {
    const v = $(id).value.trim();
    return v === "" ? null : Number(v);
  };
  return {
    canary: number("opt-canary") ?? 0,
    maxFailures: number("opt-max-failures"),
    retries: number("opt-retries") ?? 0,
    trigger: $("opt-trigger").checked,
  };
}

async function ask(target, release) {
  showMessage("");
  const request = { target, ...options(), ...(release ? { release } : {}) };
  try {
    const plan = await post("/api/plan", { request });
    pending = { request, confirm: { boards: plan.boards, build: plan.build } };
    $("confirm-question").textContent = plan.question;
    $("confirm-boards").replaceChildren(...plan.boards.map((b) => el("li", {}, b)));
    $("confirm").returnValue = "";
    $("confirm").showModal();
  } catch (e) {
    showMessage(e.message);
  }
}

async function confirmed() {
  if (!pending) return;
  const { request, confirm } = pending;
  pending = null;
  try {
    const started = await post("/api/rollout", { request, confirm });
    state.rollout = started.rollout;
    render();
  } catch (e) {
    showMessage(e.message);
  }
}

function connect() {
  const stream = new EventSource("/api/stream");
  stream.addEventListener("state", (e) => {
    state = JSON.parse(e.data);
    render();
  });
  stream.addEventListener("fleet", (e) => {
    const f = JSON.parse(e.data);
    state.boards = f.boards;
    state.checkedAt = f.checkedAt;
    renderFleet();
    renderBuild();
  });
  stream.addEventListener("rollout", (e) => {
    const wasRunning = state.rollout?.state === "running";
    state.rollout = JSON.parse(e.data);
    renderRollout();
    if (wasRunning !== (state.rollout.state === "running")) {
      renderFleet();
      renderBuild();
    }
  });
  stream.addEventListener("open", () => showMessage(""));
  stream.addEventListener("error", () => {
    showMessage("Lost the connection to the dashboard: retrying…");
  });
}

$("refresh").addEventListener("click", async () => {
  $("refresh").disabled = true;
  try {
    const f = await post("/api/refresh");
    state.boards = f.boards;
    state.checkedAt = f.checkedAt;
    renderFleet();
  } catch (e) {
    showMessage(e.message);
  } finally {
    $("refresh").disabled = false;
  }
});
$("deploy-fleet").addEventListener("click", () => ask({ kind: "fleet" }, chosenRelease()));
$("deploy-tag").addEventListener(
  "click",
  () => ask({ kind: "tag", tag: $("tag-select").value }, chosenRelease()),
);
$("stop").addEventListener("click", () => post("/api/stop").catch((e) => showMessage(e.message)));
$("confirm").addEventListener("close", () => {
  if ($("confirm").returnValue === "ok") confirmed();
  else pending = null;
});

connect();
// The first look at the boards, without waiting for the periodic refresh.
post("/api/refresh").catch((e) => showMessage(e.message));
