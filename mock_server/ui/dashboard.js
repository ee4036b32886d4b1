// The mock's dashboard: reads the JSON control calls about once a second and draws them.
// Everything a client sent (prompts, paths, bodies, rule ids) is put in with textContent,
// never parsed as HTML. No framework, no build step, nothing fetched from another site.
"use strict";

(() => {
  const body = document.body;
  const base = body.dataset.base; // "/__mock" or "/ns/<name>/__mock"
  const inNamespace = body.dataset.namespace !== "";
  const TOKEN_KEY = "kling-mock-control-token";
  const REFRESH_MS = 1000;
  const JOURNAL_ROWS = 200;
  const TASK_ROWS = 200;
  const STATUSES = ["submitted", "processing", "succeed", "failed"];
  const $ = (id) => document.getElementById(id);

  // The token arrives once in the fragment (#token=...), which no browser sends to a server:
  // kept for this tab only, and taken out of the address bar at once.
  const fragment = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (fragment) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(fragment[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }

  class ControlError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function call(method, path, payload) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers["X-Mock-Control-Token"] = token;
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const response = await fetch(base + path, init);
    let answer;
    try {
      answer = await response.json();
    } catch (_) {
      throw new ControlError(`${method} ${path}: HTTP ${response.status}, not JSON`, response.status, null);
    }
    if (answer.code !== 0) {
      throw new ControlError(`${method} ${path}: ${answer.code} ${answer.message}`, response.status, answer.code);
    }
    return answer.data;
  }

  // -- small DOM helpers: every text goes in as text ------------------------------------------

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function row(cells, attrs) {
    const tr = document.createElement("tr");
    for (const [key, value] of Object.entries(attrs || {})) tr.dataset[key] = value;
    for (const cell of cells) {
      if (cell instanceof Node) {
        const td = document.createElement("td");
        td.append(cell);
        tr.append(td);
      } else {
        tr.append(el("td", cell));
      }
    }
    return tr;
  }

  function fill(tableId, rows, empty) {
    const tbody = $(tableId).tBodies[0];
    const width = $(tableId).tHead.rows[0].cells.length;
    if (rows.length === 0) {
      const td = el("td", empty, "muted");
      td.colSpan = width;
      const tr = document.createElement("tr");
      tr.append(td);
      rows = [tr];
    }
    tbody.replaceChildren(...rows);
  }

  const iso = (seconds) => new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
  const offset = (seconds, from) => `+${(seconds - from).toFixed(1)} s`;
  const json = (value) => JSON.stringify(value);

  // -- the panels ------------------------------------------------------------------------------

  let clockNow = 0;

  function drawClock(clock) {
    clockNow = clock.now;
    $("clock-now").textContent = iso(clock.now);
    const running = clock.mode !== "manual";
    $("clock-mode").textContent = running
      ? `running x${clock.time_scale}`
      : "stopped: moves only when advanced";
    $("clock-mode").dataset.mode = running ? "running" : "stopped";
    $("pause").hidden = !running;
    $("resume").hidden = running;
  }

  function timeline(t) {
    const line = t.timeline;
    const start = line.submitted_at;
    const parts = [`submitted ${iso(start)}`, `processing ${offset(line.processing_at, start)}`];
    parts.push(line.ends_at === null ? "never ends (stuck)" : `ends ${offset(line.ends_at, start)}`);
    const wrap = el("div", parts.join(", "));
    const bar = el("div", null, "bar");
    const end = line.ends_at === null ? Infinity : line.ends_at;
    const done = end === Infinity ? 0.5 : Math.min(1, Math.max(0, (clockNow - start) / (end - start || 1)));
    const fillBar = el("span", null, t.task.task_status);
    fillBar.style.width = `${Math.round(done * 100)}%`;
    bar.append(fillBar);
    wrap.append(bar);
    return wrap;
  }

  function drawTasks(tasks, health) {
    const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    for (const t of tasks) counts[t.task.task_status] = (counts[t.task.task_status] || 0) + 1;
    const shown = $("task-counts");
    shown.replaceChildren(
      ...Object.entries(counts).map(([status, n]) => {
        const badge = el("span", `${status}: ${n}`, `badge ${status}`);
        badge.dataset.status = status;
        badge.dataset.count = String(n);
        return badge;
      })
    );
    const total = health ? health.tasks : tasks.length;
    $("task-total").textContent =
      total > tasks.length ? `(${total} in all; the newest ${tasks.length} shown)` : `(${total})`;
    fill(
      "tasks",
      tasks.map((t) =>
        row(
          [
            t.task.task_id,
            t.family,
            t.account,
            el("span", t.task.task_status, `badge ${t.task.task_status}`),
            t.params.prompt === undefined ? "" : t.params.prompt,
            timeline(t),
          ],
          { taskId: t.task.task_id, status: t.task.task_status }
        )
      ),
      "no tasks yet"
    );
  }

  function drawAccounts(accounts, counters) {
    fill(
      "accounts",
      accounts.map((a) => {
        const slots = Object.entries(a.slots_in_use)
          .map(([kind, n]) => `${kind} ${n} / ${a.concurrency[kind] == null ? "no limit" : a.concurrency[kind]}`)
          .join(", ");
        const packs = el("ul");
        for (const p of a.packs) {
          packs.append(el("li", `${p.resource_pack_name} (${p.kind}, ${p.status}): ${p.remaining_quantity} / ${p.total_quantity}`));
        }
        const mine = (counters && counters.accounts[a.name]) || {};
        const tally = Object.entries(mine).map(([k, v]) => `${k} ${v}`).join(", ");
        return row([a.name, a.access_key, slots, packs, tally], { account: a.name });
      }),
      "no accounts"
    );
  }

  function drawAudit(audit) {
    const box = $("audit");
    if (audit.clean) {
      box.replaceChildren(el("p", "clean: no client broke a rule the mock checks", "good"));
      return;
    }
    const parts = [];
    for (const [account, findings] of Object.entries(audit.accounts)) {
      for (const [name, found] of Object.entries(findings)) {
        const item = el("details", null, "finding");
        item.dataset.finding = name;
        item.dataset.account = account;
        const times = found.count === 1 ? "once" : `${found.count} times`;
        item.append(el("summary", `${account}: ${name}, ${times}`));
        const list = el("ul");
        for (const e of found.evidence) {
          const request = e.request_id ? ` (request ${e.request_id})` : "";
          list.append(el("li", `${e.method} ${e.path} at ${iso(e.time / 1000)}${request}: ${e.detail}`));
        }
        item.append(list, el("p", `fix: ${found.hint}`, "hint"));
        parts.push(item);
      }
    }
    box.replaceChildren(...parts);
  }

  function matches(entry) {
    const method = $("filter-method").value;
    const path = $("filter-path").value.trim();
    const status = $("filter-status").value.trim();
    const account = $("filter-account").value.trim();
    return (
      (!method || entry.method === method) &&
      (!path || entry.path.includes(path)) &&
      (!status || String(entry.status).startsWith(status)) &&
      (!account || String(entry.account || "").includes(account))
    );
  }

  function drawRequests(journal) {
    const entries = journal.entries.filter(matches).reverse(); // newest first
    fill(
      "requests",
      entries.map((e) => {
        const extra = [e.fault, e.latency_ms === null ? null : `${e.latency_ms} ms`].filter((x) => x !== null);
        const bodyText = e.body === undefined ? "" : e.body;
        return row(
          [iso(e.time / 1000), e.method, e.query ? `${e.path}?${e.query}` : e.path, e.account || "", e.status, e.code === null ? "" : e.code, extra.join(", "), el("code", bodyText)],
          { status: String(e.status) }
        );
      }),
      journal.entries.length ? "no request matches the filters" : "no API request yet"
    );
  }

  function drawCallbacks(callbacks) {
    const outcomes = {};
    for (const a of callbacks.attempts) outcomes[a.outcome] = (outcomes[a.outcome] || 0) + 1;
    const summary = Object.entries(outcomes).map(([k, n]) => `${k} ${n}`);
    summary.push(`queued ${callbacks.pending}`);
    $("callback-counts").textContent = `(${summary.join(", ")})`;
    const attempts = callbacks.attempts.slice(-JOURNAL_ROWS).reverse();
    fill(
      "callbacks",
      attempts.map((a) =>
        row(
          [a.task_id, a.task_status, a.attempt, a.error ? `${a.outcome}: ${a.error}` : `${a.outcome}${a.http_status ? ` (${a.http_status})` : ""}`, a.url],
          { outcome: a.outcome }
        )
      ),
      "no callback attempt yet"
    );
  }

  function drawFaults(faults) {
    fill(
      "faults",
      faults.map((f) =>
        row([f.id, json(f.match), json(f.action), f.fired, f.remaining === null ? "unlimited" : f.remaining], { rule: f.id })
      ),
      "no fault rule"
    );
  }

  function drawScenarios(scenarios) {
    const list = $("scenarios");
    const items = [];
    for (const [name, about] of Object.entries(scenarios)) items.push(el("dt", name), el("dd", about));
    list.replaceChildren(...items);
  }

  function drawNamespaces(spaces) {
    const box = $("namespaces");
    if (inNamespace) {
      const back = el("a", "the root mock's dashboard");
      back.href = `${body.dataset.home}/ui`;
      box.replaceChildren(el("p", `This page shows namespace ${body.dataset.namespace}. `), back);
      return;
    }
    if (spaces.names.length === 0) {
      box.replaceChildren(el("p", `none yet (at most ${spaces.limit})`, "muted"));
      return;
    }
    const list = el("ul");
    for (const name of spaces.names) {
      const link = el("a", name);
      link.href = `${body.dataset.home.replace(/\/__mock$/, "")}/ns/${encodeURIComponent(name)}/__mock/ui`;
      const item = el("li");
      item.dataset.namespace = name;
      item.append(link);
      list.append(item);
    }
    box.replaceChildren(el("p", `${spaces.names.length} of at most ${spaces.limit}, least recently used first`, "muted"), list);
  }

  // -- the refresh loop ------------------------------------------------------------------------

  const reads = {
    clock: "/clock",
    health: "/health",
    tasks: `/tasks?limit=${TASK_ROWS}`,
    accounts: "/accounts",
    counters: "/counters",
    audit: "/audit",
    requests: `/requests?limit=${JOURNAL_ROWS * 5}`,
    callbacks: "/callbacks",
    faults: "/faults",
    scenarios: "/scenarios",
  };
  if (!inNamespace) reads.namespaces = "/namespaces";

  function needsToken(error) {
    return error instanceof ControlError && error.status === 401;
  }

  let timer = null;
  let inFlight = null;
  let again = false;
  let scenariosShown = false;

  // One read of every panel; true when the mock wants a token this page does not have.
  async function readAll() {
    const names = Object.keys(reads).filter((n) => n !== "scenarios" || !scenariosShown);
    const results = await Promise.allSettled(names.map((n) => call("GET", reads[n])));
    const got = {};
    const failed = [];
    names.forEach((name, i) => {
      if (results[i].status === "fulfilled") got[name] = results[i].value;
      else failed.push(results[i].reason);
    });
    const locked = failed.some(needsToken);
    $("token-form").hidden = !locked;
    body.classList.toggle("locked", locked);
    if (locked) {
      const tried = sessionStorage.getItem(TOKEN_KEY) !== null;
      $("token-error").textContent = tried ? "the mock refused this token" : "";
      $("status").textContent = "waiting for the control token";
      $("status").className = "bad";
      return true;
    }
    const draw = [
      ["clock", () => drawClock(got.clock)],
      ["tasks", () => drawTasks(got.tasks, got.health)],
      ["accounts", () => drawAccounts(got.accounts, got.counters)],
      ["audit", () => drawAudit(got.audit)],
      ["requests", () => drawRequests(got.requests)],
      ["callbacks", () => drawCallbacks(got.callbacks)],
      ["faults", () => drawFaults(got.faults)],
      ["scenarios", () => { drawScenarios(got.scenarios); scenariosShown = true; }],
      ["namespaces", () => drawNamespaces(got.namespaces)],
    ];
    for (const [name, drawIt] of draw) {
      if (got[name] !== undefined) drawIt();
    }
    if (inNamespace) drawNamespaces(null);
    if (failed.length) {
      $("status").textContent = `could not read: ${failed.map((e) => e.message).join("; ")}`;
      $("status").className = "bad";
    } else {
      $("status").textContent = `live: updated ${new Date().toLocaleTimeString()}`;
      $("status").className = "good";
    }
    body.dataset.refreshed = String(Number(body.dataset.refreshed || 0) + 1);
    return false;
  }

  // Reads run one at a time: a refresh asked for while one runs runs once more after it, and
  // the next tick is scheduled a second after the last read ended (a slow mock is not piled on).
  function refresh() {
    if (inFlight) {
      again = true;
      return inFlight;
    }
    clearTimeout(timer);
    inFlight = (async () => {
      let locked = false;
      do {
        again = false;
        try {
          locked = await readAll();
        } catch (error) {
          $("status").textContent = `could not read: ${error.message}`;
          $("status").className = "bad";
        }
      } while (again);
      inFlight = null;
      if (!locked) timer = setTimeout(refresh, REFRESH_MS); // without a token, the form restarts it
    })();
    return inFlight;
  }

  // -- actions: each a control call, then a refresh at once ----------------------------------

  async function act(method, path, payload) {
    $("action-error").textContent = "";
    try {
      await call(method, path, payload);
    } catch (error) {
      $("action-error").textContent = error.message;
    }
    await refresh();
  }

  function advanceBy(seconds) {
    if (!(seconds >= 0)) {
      $("action-error").textContent = "advance by a number of seconds, 0 or more";
      return;
    }
    act("POST", "/clock/advance", { seconds });
  }

  $("advance").addEventListener("click", () =>
    advanceBy(Number($("advance-amount").value) * Number($("advance-unit").value))
  );
  for (const button of document.querySelectorAll("[data-advance]")) {
    button.addEventListener("click", () => advanceBy(Number(button.dataset.advance)));
  }
  // Pausing makes the clock manual, without a jump; resuming runs it again at its time_scale.
  $("pause").addEventListener("click", () => act("PATCH", "/config", { clock: "manual" }));
  $("resume").addEventListener("click", () => act("PATCH", "/config", { clock: "real" }));
  for (const id of ["filter-method", "filter-path", "filter-status", "filter-account"]) {
    $(id).addEventListener("input", () => refresh());
  }
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value;
    $("token-input").value = "";
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    refresh();
  });

  refresh();
})();
