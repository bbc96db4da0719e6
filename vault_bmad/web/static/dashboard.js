// vault-bmad dashboard: fetches the JSON API, fills the page and redraws Plotly charts.
// Text from notes only ever goes in through textContent, never as HTML.
"use strict";

(function () {
  const THEME_KEY = "vault-bmad-theme";
  const THEMES = ["auto", "light", "dark"];

  // Set the theme at once, before the page paints.
  function storedTheme() {
    try {
      const value = window.localStorage.getItem(THEME_KEY);
      return THEMES.includes(value) ? value : "auto";
    } catch (error) {
      return "auto";
    }
  }
  document.documentElement.dataset.theme = storedTheme();

  // ---- small helpers ------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") for (const [p, v] of Object.entries(value)) node.style.setProperty(p, v);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function field(name) {
    return document.querySelector(`[data-field="${name}"]`);
  }

  function setText(name, text) {
    const node = field(name);
    if (node) node.textContent = text;
  }

  function fill(id, rows, empty) {
    const body = document.getElementById(id);
    if (!body) return;
    if (rows.length) body.replaceChildren(...rows);
    else body.replaceChildren(el("tr", {}, el("td", { colspan: 20, className: "muted" }, empty)));
  }

  function fillList(id, items, empty) {
    const list = document.getElementById(id);
    if (!list) return;
    list.replaceChildren(...(items.length ? items : [el("li", { className: "muted" }, empty)]));
  }

  const percent = (v, digits = 1) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(digits)}%`);
  const number = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const cost = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(4));

  function seconds(v) {
    if (v === null || v === undefined) return "–";
    if (v < 1) return `${Math.round(v * 1000)} ms`;
    if (v < 120) return `${v.toFixed(2)} s`;
    return `${(v / 60).toFixed(1)} min`;
  }

  function localTime(epoch) {
    return epoch ? new Date(epoch * 1000).toLocaleString() : "–";
  }

  function taskHref(id) {
    return "/tasks/" + id.split("/").map(encodeURIComponent).join("/");
  }

  function noteHref(path) {
    return "/notes/" + path.split("/").map(encodeURIComponent).join("/");
  }

  function badge(status) {
    return el("span", { className: `badge status-${status}` }, status.replace(/_/g, " "));
  }

  function statusChips(counts) {
    const order = [
      "needs-input", "running", "queued", "waiting", "todo", "done", "skipped", "failed", "blocked",
      "invalid"];
    const names = Object.keys(counts).sort((a, b) => {
      const ia = order.indexOf(a), ib = order.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    return names.map((name) =>
      el("li", { className: "dot", style: { "--dot": `var(--${name}, var(--waiting))` } },
        `${name} `, el("b", {}, counts[name])));
  }

  // ---- charts -------------------------------------------------------------------------

  function themeColors() {
    const style = getComputedStyle(document.documentElement);
    const read = (name) => style.getPropertyValue(name).trim();
    return {
      fg: read("--fg"), muted: read("--muted"), grid: read("--grid"), card: read("--card"),
      critical: read("--critical"),
    };
  }

  // The critical path is drawn in CRITICAL (run_charts.py); the theme picks its colour.
  const CRITICAL = "#111111";

  function themedData(data) {
    const color = themeColors().critical || CRITICAL;
    return (data || []).map((trace) => {
      if (trace.meta !== "critical") return trace;
      const copy = JSON.parse(JSON.stringify(trace));
      if (copy.line && copy.line.color === CRITICAL) copy.line.color = color;
      const outline = copy.marker && copy.marker.line;
      if (outline && Array.isArray(outline.color)) {
        outline.color = outline.color.map((c) => (c === CRITICAL ? color : c));
      }
      return copy;
    });
  }

  function themedLayout(layout) {
    const colors = themeColors();
    const result = JSON.parse(JSON.stringify(layout || {}));
    result.paper_bgcolor = "rgba(0,0,0,0)";
    result.plot_bgcolor = "rgba(0,0,0,0)";
    result.font = Object.assign({ color: colors.fg, size: 12 }, result.font || {});
    result.hoverlabel = { bgcolor: colors.card, font: { color: colors.fg }, bordercolor: colors.grid };
    result.autosize = true;
    for (const key of Object.keys(result)) {
      if (/^[xy]axis\d*$/.test(key)) {
        result[key] = Object.assign({ gridcolor: colors.grid, zerolinecolor: colors.grid, linecolor: colors.grid }, result[key]);
      }
    }
    if (result.legend) result.legend = Object.assign({ font: { color: colors.fg } }, result.legend);
    return result;
  }

  const drawn = new Map(); // chart element -> last figure, to redraw on a theme change
  const waiting = new Map(); // chart element -> figure that came before its Plotly did
  const painter = new Map(); // chart element -> the Plotly that drew it

  // Plotly's cartesian bundle loads async, while the page fetches its data; a figure with a
  // trace type it lacks (WebGL's) loads the full bundle, which then draws every chart.
  // (This script runs before the page's tag for Plotly is parsed: it is looked up later.)
  const bundle = () => document.getElementById("plotly").dataset;
  let full = null; // the full bundle's Plotly, once loaded
  const plotly = () => full || window.Plotly;
  const needsFull = (figure) => {
    const traces = bundle().traces.split(" ");
    return figure.data.some((trace) => !traces.includes(trace.type || "scatter"));
  };

  function drawWaiting() {
    for (const [node, figure] of [...waiting]) {
      waiting.delete(node);
      draw(node, figure);
    }
  }

  document.addEventListener("load", (event) => {
    if (event.target.id === "plotly") drawWaiting();
  }, true);

  function loadFull() {
    if (document.getElementById("plotly-full")) return;
    const tag = el("script", { id: "plotly-full", src: bundle().full });
    tag.addEventListener("load", () => {
      full = window.Plotly;
      for (const [node, figure] of drawn) waiting.set(node, figure);
      drawWaiting();
    });
    document.head.append(tag);
  }

  function purge(node) {
    const by = painter.get(node);
    if (by) by.purge(node);
    painter.delete(node);
    delete node.dataset.clickable; // purge drops the click handler
  }

  function draw(node, figure) {
    if (!node) return;
    if (!figure) {
      waiting.delete(node);
      drawn.delete(node);
      purge(node);
      return;
    }
    const lacking = !full && needsFull(figure);
    if (lacking) loadFull();
    if (lacking || !plotly()) {
      waiting.set(node, figure);
      return;
    }
    if (painter.has(node) && painter.get(node) !== plotly()) purge(node);
    drawn.set(node, figure);
    painter.set(node, plotly());
    if (figure.layout && figure.layout.height) node.style.height = `${figure.layout.height}px`;
    plotly().react(node, themedData(figure.data), themedLayout(figure.layout), {
      displaylogo: false,
      responsive: true,
      modeBarButtonsToRemove: ["select2d", "lasso2d"],
    });
    if ("opensTask" in node.dataset) openTaskOnClick(node);
  }

  // A chart the API sent again unchanged is not drawn again (Plotly.react would redraw it).
  function show(node, figure) {
    const last = waiting.get(node) || drawn.get(node);
    if (last && figure && JSON.stringify(last) === JSON.stringify(figure)) return;
    draw(node, figure);
  }

  function drawAll(charts) {
    for (const node of document.querySelectorAll("[data-chart]")) {
      if (charts && node.dataset.chart in charts) show(node, charts[node.dataset.chart]);
    }
  }

  // A point whose customdata starts with a task id opens that task (`data-opens-task`).
  function openTaskOnClick(node) {
    if (node.dataset.clickable) return; // attached since the last purge
    node.dataset.clickable = "yes";
    node.on("plotly_click", (event) => {
      const data = event.points && event.points[0] && event.points[0].customdata;
      const id = Array.isArray(data) ? data[0] : data;
      if (typeof id === "string") window.location.href = taskHref(id);
    });
  }

  // ---- fetching and polling -------------------------------------------------------------

  // The range of the page, as the API takes it: `since=1h`, or a custom `from` and `to`.
  function rangeQuery() {
    const data = document.body.dataset;
    if (data.range === "custom" && data.from && data.to) {
      return `since=custom&from=${encodeURIComponent(data.from)}&to=${encodeURIComponent(data.to)}`;
    }
    return `since=${encodeURIComponent(data.range && data.range !== "custom" ? data.range : "1h")}`;
  }

  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-cache", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    return response.json();
  }

  function markLive(ok, detail) {
    const live = document.getElementById("live");
    if (!live) return;
    live.classList.toggle("stale", !ok);
    live.textContent = ok ? `updated ${new Date().toLocaleTimeString()}` : `not updating: ${detail}`;
  }

  function poll(url, render, every) {
    let timer = null;
    let busy = false;
    async function tick() {
      if (busy) return;
      busy = true;
      try {
        render(await getJSON(typeof url === "function" ? url() : url));
        markLive(true);
      } catch (error) {
        markLive(false, error.message);
      } finally {
        busy = false;
        timer = window.setTimeout(tick, every);
      }
    }
    const now = () => {
      window.clearTimeout(timer);
      tick();
    };
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) now();
    });
    tick();
    return now;
  }

  const every = () => Number(document.body.dataset.pollMs) || 2000;

  // ---- pages ----------------------------------------------------------------------------

  function overview() {
    poll(() => `/api/metrics?${rangeQuery()}`, (data) => {
      const t = data.totals;
      const now = data.now;
      fillList("status-counts", statusChips(now.tasks), "no tasks in the vault");
      setText("throughput", number(t.throughput_per_min, 2));
      setText("work", `done per minute of ${seconds(t.work_s)} of work`);
      setText("utilization", percent(t.utilization));
      setText("busy", `${seconds(t.busy_s)} busy, of capacity while agents had work`);
      setText("latency", `${seconds(t.latency_s.p50)} / ${seconds(t.latency_s.p95)}`);
      setText("latency-more", `p90 ${seconds(t.latency_s.p90)} · p99 ${seconds(t.latency_s.p99)}`);
      setText("error-rate", percent(t.error_rate));
      setText("attempts", `${t.attempts} attempts, ${t.failed} not done`);
      setText("hit-rate", percent(t.hit_rate));
      setText("pool-size", now.pool_size);
      setText("pool-load", `${now.running} running · ${now.queued} queued`);
      const u = data.usage;
      setText("tokens", `${u.tokens_in} + ${u.tokens_out}`);
      setText("cost", `cost ${cost(u.cost)} · the cache saved ${u.saved_tokens} tokens, ${cost(u.saved_cost)}`);
      setText("wait", seconds(t.mean_wait_s));
      setText("wait-share", `${percent(t.wait_share)} of latency is queue wait`);
      const running = Object.entries(now.running_by_agent).map(([agent, ids]) =>
        el("li", {}, el("b", {}, agent), ": ",
          ids.map((id, n) => [n ? ", " : "", el("a", { href: taskHref(id) }, id)])));
      fillList("running-now", running, "nothing runs now");
      showWaiting(now.waiting);
      drawAll(data.charts);
    }, every());
    poll(() => `/api/analysis?${rangeQuery()}`, (data) => {
      const scope = `${data.attempts} attempts analyzed${data.limited ? " (the latest of the range)" : ""}, at ${new Date(data.at * 1000).toLocaleTimeString()}`;
      setText("analysis-scope", scope);
      fillList("findings", data.findings.map(finding), "nothing to change: every figure is within bounds");
    }, 30000);
  }

  // The tasks whose agents asked their users, the longest waiting first.
  function showWaiting(waiting) {
    const panel = document.getElementById("waiting-panel");
    if (!panel) return;
    panel.hidden = !waiting.length;
    fillList("waiting-list", waiting.map((t) =>
      el("li", { className: "waiting-task", dataset: { task: t.id } },
        el("a", { href: taskHref(t.id) }, t.title), t.step ? ` (step ${t.step})` : "",
        ` · ${t.agent || "an agent"} asks, since ${localTime(t.asked_at)} · `,
        el("a", { href: t.obsidian }, "answer in Obsidian"),
        el("ol", {}, t.questions.map((q) => el("li", {}, q))))), "");
  }

  // One finding: what was found for each of its subjects, then the advice.
  function finding(f) {
    const shown = f.messages.slice(0, 3);
    const more = f.messages.length - shown.length;
    return el("li", { className: `finding kind-${f.kind}` },
      el("b", {}, f.title), f.kind === "queue_wait" ? null : ` (${f.subjects.join(", ")})`,
      el("ul", {}, shown.map((m) => el("li", {}, m)), more > 0 ? el("li", { className: "muted" }, `and ${more} more`) : null),
      f.advice.map((a) => el("p", { className: "advice" }, el("span", { className: "kind" }, a.action.replace(/_/g, " ")), ` (${a.subject}): ${a.reason}`)));
  }

  function runOptions(select, runs, chosen, allLabel) {
    const options = runs.map((run) => el("option", { value: run.id }, `${run.title} (${run.status})`));
    if (allLabel !== null) options.unshift(el("option", { value: "" }, allLabel));
    select.replaceChildren(...options);
    select.value = chosen || "";
  }

  function timeline() {
    const select = document.getElementById("run-select");
    const chart = document.querySelector("[data-chart='chart']");
    let chosen = select.dataset.selected || "";
    const refresh = poll(() => {
      const base = `/api/timeline?${rangeQuery()}`;
      return chosen ? `${base}&run=${encodeURIComponent(chosen)}` : base;
    }, (data) => {
      runOptions(select, data.runs, data.run, "every task in the range");
      setText("timeline-scope", data.shown < data.total
        ? `showing the latest ${data.shown} of ${data.total} attempts`
        : `${data.shown} attempts in ${data.lanes} lanes`);
      setText("critical-path", data.critical_path.length
        ? `Critical path (${seconds(data.critical_s)}): ${data.critical_path.join(" → ")}`
        : "No chain of dependent tasks in view.");
      show(chart, data.chart);
    }, every() * 2);
    select.addEventListener("change", () => {
      chosen = select.value;
      refresh();
    });
  }

  function graph() {
    const select = document.getElementById("run-select");
    const chart = document.querySelector("[data-chart='chart']");
    let chosen = select.dataset.selected || "";
    const refresh = poll(() => (chosen ? `/api/graph?run=${encodeURIComponent(chosen)}` : "/api/graph"), (data) => {
      document.getElementById("no-runs").hidden = data.runs.length > 0;
      runOptions(select, data.runs, data.run, null);
      setText("critical-path", data.critical_path && data.critical_path.length
        ? `Critical path (${seconds(data.critical_s)}): ${data.critical_path.join(" → ")}` : "");
      show(chart, data.chart);
      fill("nodes", data.nodes.map((node) => el("tr", {},
        el("td", {}, node.label),
        el("td", {}, el("a", { href: taskHref(node.id) }, node.id)),
        el("td", {}, badge(node.status)),
        el("td", {}, node.agent || "–"))), "no steps");
    }, every() * 2);
    select.addEventListener("change", () => {
      chosen = select.value;
      refresh();
    });
  }

  function meter(share, color) {
    const width = Math.max(0, Math.min(1, share || 0)) * 100;
    return el("span", { className: "meter" }, el("span", { style: { width: `${width}%`, background: color } }));
  }

  function agents() {
    poll(() => `/api/agents?${rangeQuery()}`, (data) => {
      fill("agents", data.agents.map((a) => {
        const p = a.period || {};
        const lat = p.latency_s || {};
        return el("tr", { className: a.state === "in_service" ? null : "out" },
          el("td", {}, el("b", {}, a.name || a.id), el("div", { className: "sub" }, `${a.id}${a.title ? " · " + a.title : ""}`)),
          el("td", {}, badge(a.state), a.state === "in_service" ? null : el("div", { className: "sub" },
            `${a.why || "taken out"}${a.until ? `; next try at ${new Date(a.until * 1000).toLocaleTimeString()}` : ""}`)),
          el("td", { className: "num" }, meter(a.health, a.health < 0.5 ? "var(--failed)" : "var(--done)"), number(a.health, 2)),
          el("td", { className: "num" }, seconds(a.latency_s)),
          el("td", { className: "num" }, percent(a.error_rate)),
          el("td", { className: "num" }, meter(a.in_flight / a.capacity, "var(--running)"), `${a.in_flight} / ${a.capacity}`),
          el("td", {}, a.running.length ? a.running.map((id, n) => [n ? ", " : "", el("a", { href: taskHref(id) }, id)]) : "–"),
          el("td", { className: "num" }, p.attempts ?? 0),
          el("td", { className: "num" }, `${seconds(lat.p50)} / ${seconds(lat.p95)}`),
          el("td", { className: "num" }, percent(p.utilization)),
          el("td", { className: "num" }, `${a.usage.tokens}`, el("div", { className: "sub" }, cost(a.usage.cost))),
          el("td", {}, a.expertise.join(", ") || "–"));
      }), "no agents in the vault");
      drawAll(data.charts);
    }, every());
  }

  function tasks() {
    const form = document.getElementById("task-filters");
    const agentSelect = form.elements.agent;
    const FILTERS = ["q", "status", "agent", "sort"];
    const pageSize = 200;
    let offset = 0;
    // The filters live in the page's URL, so a reload or a shared link keeps them.
    const start = new URLSearchParams(window.location.search);
    for (const name of FILTERS) {
      const value = start.get(name);
      if (!value) continue;
      if (name === "agent" && ![...agentSelect.options].some((o) => o.value === value)) {
        agentSelect.append(el("option", { value }, value));
      }
      form.elements[name].value = value;
    }
    const filters = () => {
      const params = new URLSearchParams();
      for (const name of FILTERS) {
        const value = form.elements[name].value.trim();
        if (value && !(name === "sort" && value === "id")) params.set(name, value);
      }
      return params;
    };
    const remember = () => {
      const query = filters().toString();
      window.history.replaceState(null, "", window.location.pathname + (query ? `?${query}` : ""));
    };
    const url = () => {
      const params = filters();
      params.set("limit", pageSize);
      params.set("offset", offset);
      return `/api/tasks?${params}`;
    };
    const showSort = () => {
      const sort = form.elements.sort.value || "id";
      for (const button of document.querySelectorAll("[data-sort]")) {
        const name = button.dataset.sort;
        const state = sort === name ? "ascending" : sort === `-${name}` ? "descending" : "none";
        button.closest("th").setAttribute("aria-sort", state);
      }
    };
    const refresh = poll(url, (data) => {
      fillList("status-counts", statusChips(data.counts), "no tasks in the vault");
      const known = new Set([...agentSelect.options].map((o) => o.value));
      for (const task of data.tasks) {
        if (task.agent && !known.has(task.agent)) {
          known.add(task.agent);
          agentSelect.append(el("option", { value: task.agent }, task.agent));
        }
      }
      fill("tasks", data.tasks.map((t) => el("tr", {},
        el("td", {}, el("a", { href: taskHref(t.id) }, t.title), el("div", { className: "sub" }, t.id)),
        el("td", {}, badge(t.status), t.truncated ? [" ", badge("truncated")] : null),
        el("td", {}, t.agent || "–"),
        el("td", {}, t.priority),
        el("td", { className: "num" }, t.attempts),
        el("td", { className: "num" }, seconds(t.seconds)),
        el("td", { className: "waits" }, t.waiting_for || ""),
        el("td", {}, t.workflow ? `${t.workflow}${t.step ? " · " + t.step : ""}` : "–"),
        t.questions.length ? el("td", { className: "asks" }, `asks: ${t.questions.join(" · ")}`)
          : el("td", { className: "error-text" }, t.error || ""))), "no task matches");
      const last = Math.min(data.total, offset + data.tasks.length);
      setText("page", data.total ? `${offset + 1}–${last} of ${data.total}` : "0 tasks");
      document.getElementById("page-back").disabled = offset === 0;
      document.getElementById("page-next").disabled = last >= data.total;
    }, every());
    const again = () => {
      offset = 0;
      remember();
      showSort();
      refresh();
    };
    showSort();
    let typing = null;
    form.addEventListener("input", () => {
      window.clearTimeout(typing);
      typing = window.setTimeout(again, 250);
    });
    form.addEventListener("submit", (event) => event.preventDefault());
    for (const button of document.querySelectorAll("[data-sort]")) {
      button.addEventListener("click", () => {
        const name = button.dataset.sort;
        form.elements.sort.value = form.elements.sort.value === name ? `-${name}` : name;
        again();
      });
    }
    document.getElementById("page-back").addEventListener("click", () => {
      offset = Math.max(0, offset - pageSize);
      refresh();
    });
    document.getElementById("page-next").addEventListener("click", () => {
      offset += pageSize;
      refresh();
    });
  }

  function task() {
    const id = document.body.dataset.taskId;
    poll(`/api/tasks/${id.split("/").map(encodeURIComponent).join("/")}`, (data) => {
      const t = data.task;
      const status = field("status");
      status.textContent = t.status;
      status.className = `badge status-${t.status}`;
      setText("error", t.error || "none");
      setText("waiting", t.waiting_for || "–");
      field("error").className = t.error ? "error-text" : "muted";
      const last = data.attempts[data.attempts.length - 1];
      if (last) {
        setText("last-try", `try ${last.attempt} on ${last.agent}, ${last.status}; served by ${last.cache}; ` +
          `waited ${Math.round(last.wait_ms)} ms in the queue, ran ${Math.round(last.duration_ms)} ms`);
      }
      if (t.agent) setText("agent", t.agent);
      const output = field("output");
      if (t.output) {
        output.replaceChildren(el("a", { href: noteHref(t.output) }, t.output), " · ",
          el("a", { href: data.output_obsidian }, "open in Obsidian"));
      }
      document.getElementById("rerun").disabled = t.status === "queued" || t.status === "running";
      fill("attempts", data.attempts.map((a) => el("tr", {},
        el("td", {}, a.attempt), el("td", {}, a.agent), el("td", {}, badge(a.status)),
        el("td", {}, a.cache), el("td", {}, localTime(a.queued_at)), el("td", {}, localTime(a.started_at)),
        el("td", { className: "num" }, `${Math.round(a.wait_ms)} ms`),
        el("td", { className: "num" }, `${Math.round(a.duration_ms)} ms`),
        el("td", { className: "num" }, `${a.tokens_in} + ${a.tokens_out}`),
        el("td", { className: "error-text" }, a.error || ""))), "No attempts recorded yet.");
    }, every());
  }

  function cache() {
    poll(() => `/api/cache?${rangeQuery()}`, (data) => {
      const p = data.live && data.live.prefetch;
      setText("prefetch", percent(data.prefetch_precision));
      setText("prefetch-detail", p ? `${p.used} of ${p.issued} prefetched entries used` : "no prefetching in this service");
      const served = Object.values(data.served).reduce((a, b) => a + b, 0);
      setText("hit-rate", percent(served ? (served - (data.served.miss || 0)) / served : null));
      fill("levels", data.levels.map((l) => el("tr", {},
        el("td", {}, el("b", {}, l.level)), el("td", { className: "num" }, l.size ?? "–"),
        el("td", { className: "num" }, l.hits), el("td", { className: "num" }, l.misses),
        el("td", { className: "num" }, l.evictions), el("td", { className: "num" }, percent(l.hit_rate)),
        el("td", {}, l.source === "samples" ? "level counters" : "attempts served"))), "no cache level has been used in this range");
      drawAll(data.charts);
    }, every());
  }

  function problems() {
    poll("/api/problems", (data) => {
      fill("problems", data.problems.map((p) => el("tr", {},
        el("td", {}, el("a", { href: noteHref(p.path) }, p.path)),
        el("td", { className: "num" }, p.line ?? "–"),
        el("td", {}, badge(p.severity)),
        el("td", { className: p.severity === "error" ? "error-text" : "" }, p.message))),
        "No problems: every note reads well.");
      const count = field("problem-count");
      if (count) count.textContent = data.problems.length;
    }, every());
  }

  function reports() {
    poll("/api/reports", (data) => {
      fill("reports", data.reports.map((r) => el("tr", {},
        el("td", {}, el("a", { href: noteHref(r.path) }, r.name)),
        el("td", {}, r.period_start || "–"), el("td", {}, r.period_end || "–"),
        el("td", { className: "num" }, r.bottlenecks ?? "–"),
        el("td", {}, el("a", { href: r.obsidian }, "open in Obsidian")))),
      "No reports yet: the service writes one each interval, or run `vault-bmad report`.");
    }, every() * 5);
  }

  const PAGES = { overview, timeline, graph, agents, tasks, task, cache, problems, reports };

  function themeToggle() {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    const show = () => {
      button.textContent = `◐ ${document.documentElement.dataset.theme}`;
      button.setAttribute("aria-label", `Theme: ${document.documentElement.dataset.theme}`);
    };
    show();
    button.addEventListener("click", () => {
      const next = THEMES[(THEMES.indexOf(document.documentElement.dataset.theme) + 1) % THEMES.length];
      document.documentElement.dataset.theme = next;
      try {
        window.localStorage.setItem(THEME_KEY, next);
      } catch (error) {
        // private windows may refuse storage; the theme still applies to this page
      }
      show();
      for (const [node, figure] of drawn) draw(node, figure);
    });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      for (const [node, figure] of drawn) draw(node, figure);
    });
  }

  function localizeTimes() {
    for (const node of document.querySelectorAll("time[data-epoch]")) {
      node.textContent = localTime(Number(node.dataset.epoch));
    }
  }

  // The custom range: two local date-times, sent as epoch seconds.
  function customRange() {
    const form = document.getElementById("custom-range");
    if (!form) return;
    const data = document.body.dataset;
    const local = (epoch) => {
      const date = new Date(epoch * 1000);
      return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
    };
    const now = Date.now() / 1000;
    form.elements.from.value = local(Number(data.from) || now - 3600);
    form.elements.to.value = local(Number(data.to) || now);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const from = new Date(form.elements.from.value).getTime() / 1000;
      const to = new Date(form.elements.to.value).getTime() / 1000;
      if (!(from < to)) {
        form.elements.to.setCustomValidity("the end comes after the start");
        form.reportValidity();
        return;
      }
      const params = new URLSearchParams(window.location.search);
      params.set("range", "custom");
      params.set("from", String(Math.floor(from)));
      params.set("to", String(Math.ceil(to)));
      window.location.search = params.toString();
    });
    form.elements.to.addEventListener("input", () => form.elements.to.setCustomValidity(""));
  }

  document.addEventListener("DOMContentLoaded", () => {
    themeToggle();
    customRange();
    localizeTimes();
    const view = document.body.dataset.view;
    if (Object.hasOwn(PAGES, view)) PAGES[view]();
    else markLive(true);
  });
})();
