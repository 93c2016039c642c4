/*! embedkit status page: per dataset, health, freshness, contract results and SLOs.
 *
 * Draws {prefix}/ops/status.json (fetched by ops.js). Times are shown relative to the
 * report's generated_at (so a server clock that differs from the browser's does not
 * matter), with the exact local time in a title. Charts are drawn by vega-embed with
 * vega-interpreter (the CSP has no 'unsafe-eval') and redrawn when the colour scheme changes.
 */
(function () {
  "use strict";

  const ops = window.EmbedkitOps;
  if (!ops) return;
  const { el, code, num, pct, duration, ago, exact, when, clock } = ops;

  const HEALTH = {
    ok: { label: "Healthy", icon: "✓" },
    warning: { label: "Warning", icon: "!" },
    failing: { label: "Failing", icon: "✕" },
  };
  const darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  let views = []; // vega-embed results of the charts on the page
  let last = null; // the last report, to redraw charts on a colour scheme change

  function badge(health) {
    const h = HEALTH[health] || { label: String(health), icon: "?" };
    return el("span", { class: "ops-badge ops-badge-" + health, "data-health": health }, [
      el("span", { class: "ops-badge-icon", "aria-hidden": "true", text: h.icon }),
      h.label,
    ]);
  }

  function pill(ok, yes, no) {
    return el("span", { class: "ops-pill " + (ok ? "ops-pill-ok" : "ops-pill-bad"), text: ok ? yes : no });
  }

  function fact(term, value) {
    return el("div", { class: "ops-fact" }, [el("dt", { text: term }), el("dd", null, value)]);
  }

  function section(title, note, children) {
    return el("section", { class: "ops-section" }, [
      el("h3", { class: "ops-h3", text: title }),
      note ? el("p", { class: "ops-note" }, note) : null,
      children,
    ]);
  }

  function table(cls, heads, rows) {
    return el("div", { class: "ops-table-wrap" }, el("table", { class: "ops-table " + cls }, [
      el("thead", null, el("tr", null, heads.map((h) => el("th", { scope: "col", class: h[1] || null, text: h[0] })))),
      el("tbody", null, rows),
    ]));
  }

  function cell(label, content, cls) {
    return el("td", { "data-label": label, class: cls || null }, el("span", { class: "ops-cell" }, content));
  }

  // ---------------------------------------------------------------- header

  function header(data) {
    const counts = { ok: 0, warning: 0, failing: 0 };
    for (const d of data.datasets) counts[d.health] = (counts[d.health] || 0) + 1;
    const n = data.datasets.length;
    const chips = ["failing", "warning", "ok"].map((h) =>
      el("li", { class: "ops-count ops-count-" + h + (counts[h] ? "" : " is-zero"), "data-health": h }, [
        el("strong", { text: num(counts[h]) }), " " + HEALTH[h].label.toLowerCase(),
      ]),
    );
    return el("header", { class: "ops-head" }, [
      el("div", { class: "ops-head-text" }, [
        el("h1", { class: "ops-h1", text: "Data status" }),
        el("p", { class: "ops-sub" }, [
          num(n) + (n === 1 ? " dataset" : " datasets"),
          data.tenant ? [" · tenant ", code(String(data.tenant))] : null,
          " · updated ", clock(data.generated_at), " · refreshes every " + ops.REFRESH_S + " s",
        ].flat()),
      ]),
      el("ul", { class: "ops-counts", "aria-label": "Datasets by health" }, chips),
    ]);
  }

  // ---------------------------------------------------------------- one dataset

  function freshness(f) {
    if (!f) return el("span", { class: "ops-muted", text: "not tracked (no time column)" });
    if (f.lag_seconds === null || f.lag_seconds === undefined) {
      return el("span", { class: "ops-muted", text: "no rows yet" });
    }
    const parts = [
      "newest row ",
      el("time", { datetime: f.newest || "", title: f.newest ? exact(f.newest) : null,
        text: ago(f.lag_seconds) }),
      f.limit_seconds ? "; limit " + duration(f.limit_seconds) : "; no limit set",
    ];
    if (f.fresh !== null && f.fresh !== undefined) parts.push(" ", pill(f.fresh, "fresh", "stale"));
    return el("span", { class: "ops-fresh", "data-fresh": String(f.fresh) }, parts);
  }

  function batchLine(b, ref) {
    return [
      num(b.received) + " received · " + num(b.stored) + " stored · " + num(b.quarantined) + " quarantined, ",
      when(b.at, ref),
      b.origin ? " (" + b.origin + ")" : "",
    ];
  }

  function brokenRules(rules) {
    const names = Object.keys(rules || {});
    if (!names.length) return null;
    return el("span", { class: "ops-broken" }, [" Broke: "].concat(
      names.flatMap((r, i) => [i ? ", " : "", code(r), " × " + num(rules[r])]),
    ));
  }

  function contract(c, ref) {
    if (!c.rules.length && !c.held && !c.last_rejected) {
      return section("Contract", "No rules: rows are stored as they come.", null);
    }
    const note = [];
    if (c.reject_above !== null && c.reject_above !== undefined) {
      note.push("A batch is refused whole when more than " + pct(c.reject_above) + " of its rows break it. ");
    }
    note.push(num(c.held) + (c.held === 1 ? " row" : " rows") + " held in quarantine.");
    const rows = c.rules.map((r) =>
      el("tr", { "data-rule": r.rule, class: r.held ? "has-held" : null }, [
        cell("Rule", code(r.rule)),
        cell("Meaning", r.description),
        cell("Held", num(r.held), "ops-num"),
      ]),
    );
    const body = c.rules.length ? table("ops-rules", [["Rule"], ["Meaning"], ["Rows held", "ops-num"]], rows) : null;
    const lines = [];
    if (c.last_batch) {
      lines.push(el("p", { class: "ops-batch", "data-batch": "last" }, [
        el("strong", { text: "Last batch: " }), ...batchLine(c.last_batch, ref), brokenRules(c.last_batch.rules),
      ]));
    }
    if (c.last_rejected) {
      const r = c.last_rejected;
      lines.push(el("p", { class: "ops-alert", role: "note", "data-batch": "rejected" }, [
        el("strong", { text: "Last refused batch: " }),
        num(r.received) + " received, " + num(r.quarantined) + " broke the contract, nothing stored, ",
        when(r.at, ref), r.origin ? " (" + r.origin + ")." : ".", brokenRules(r.rules),
      ]));
    }
    return section("Contract", note, [body, ...lines]);
  }

  function budget(left) {
    const n = Number(left);
    const share = Number.isFinite(n) ? Math.max(0, Math.min(1, n)) : 0;
    const level = n >= 0.25 ? "ok" : n > 0 ? "low" : "out";
    const fill = el("span", { class: "ops-meter-fill" });
    fill.style.width = (share * 100).toFixed(1) + "%"; // CSSOM, allowed by the CSP
    return el("span", { class: "ops-budget ops-budget-" + level }, [
      el("span", { class: "ops-meter", "aria-hidden": "true" }, fill),
      el("span", { class: "ops-budget-text", text: n > 0 ? pct(n, n < 0.1 ? 1 : 0) : "used up" }),
    ]);
  }

  function slo(s, name) {
    if (!s) return section("Service levels", "None declared for this dataset.", null);
    const rows = s.objectives.map((o) =>
      el("tr", { "data-objective": o.name, class: o.met ? null : "is-missed" }, [
        cell("Objective", [el("span", { class: "ops-obj", text: o.description }), " ", code(o.name)]),
        cell("Target", pct(o.target), "ops-num"),
        cell("Attained", o.attainment === null || o.attainment === undefined
          ? el("span", { class: "ops-muted", text: "no data yet" })
          : el("span", { class: "ops-attained", text: pct(o.attainment) }), "ops-num"),
        cell("Error budget left", budget(o.budget_left)),
        cell("Status", pill(o.met, "✓ met", "✕ missed")),
      ]),
    );
    const charts = el("div", { class: "ops-charts" }, s.objectives.map((o) =>
      el("figure", { class: "ops-chart-box", "data-objective": o.name }, [
        el("div", { class: "ops-chart", role: "img",
          "aria-label": o.name + " attainment over " + s.window + " of " + name + ", target " + pct(o.target) }),
      ]),
    ));
    const table_ = table("ops-slo", [["Objective"], ["Target", "ops-num"], ["Attained", "ops-num"],
      ["Error budget left"], ["Status"]], rows);
    return section("Service levels", "Measured over the last " + s.window + ".", [table_, charts]);
  }

  function card(d, ref) {
    const id = "ds-" + d.name;
    return el("article", { class: "ops-card ops-health-" + d.health, id: id, "data-dataset": d.name,
      "aria-labelledby": id + "-name" }, [
      el("header", { class: "ops-card-head" }, [
        el("div", { class: "ops-card-title" }, [el("h2", { class: "ops-h2", id: id + "-name", text: d.name }),
          badge(d.health)]),
        d.description ? el("p", { class: "ops-desc", text: d.description }) : null,
        (d.health_reasons || []).length
          ? el("p", { class: "ops-reasons", "data-reasons": "", text: "Why: " + d.health_reasons.join("; ") + "." })
          : null,
      ]),
      el("dl", { class: "ops-facts" }, [
        fact("Owner", d.owner || el("span", { class: "ops-muted", text: "not set" })),
        fact("Rows", num(d.rows)),
        fact("Data version", num(d.version)),
        fact("Freshness", freshness(d.freshness)),
      ]),
      contract(d.contract, ref),
      slo(d.slo, d.name),
    ]);
  }

  // ---------------------------------------------------------------- charts

  function chartConfig() {
    const css = getComputedStyle(document.documentElement);
    const v = (name) => css.getPropertyValue(name).trim();
    const muted = v("--ops-muted");
    return {
      background: "transparent",
      font: v("--ops-font") || "system-ui, sans-serif",
      view: { stroke: null },
      axis: { labelColor: muted, titleColor: muted, gridColor: v("--ops-grid"), domainColor: v("--ops-border"),
        tickColor: v("--ops-border"), labelFontSize: 10 },
      title: { color: v("--ops-text"), fontWeight: 600 },
      line: { color: v("--ops-accent") },
      point: { color: v("--ops-accent"), size: 10 },
    };
  }

  function finalize() {
    for (const view of views) {
      try {
        view.finalize();
      } catch (_) {
        /* already gone */
      }
    }
    views = [];
  }

  async function drawCharts(data, root) {
    const boxes = root.querySelectorAll(".ops-chart-box");
    if (typeof window.vegaEmbed !== "function" || !window.vegaInterpreter) {
      boxes.forEach((b) => b.replaceChildren(el("p", { class: "ops-muted", text: "Charts couldn't be loaded." })));
      return;
    }
    const config = chartConfig();
    const specs = new Map();
    for (const d of data.datasets) {
      for (const o of (d.slo && d.slo.objectives) || []) specs.set(d.name + "\u0000" + o.name, o.chart);
    }
    const jobs = [];
    for (const box of boxes) {
      const name = box.closest("[data-dataset]").getAttribute("data-dataset");
      const spec = specs.get(name + "\u0000" + box.getAttribute("data-objective"));
      if (!spec) continue;
      const copy = JSON.parse(JSON.stringify(spec));
      if (copy.autosize === undefined) copy.autosize = { type: "fit-x", contains: "padding" };
      const target = box.querySelector(".ops-chart");
      jobs.push(window.vegaEmbed(target, copy, {
        actions: false,
        renderer: "svg",
        ast: true,
        expr: window.vegaInterpreter.expressionInterpreter,
        config: config,
        // CSP: vega-embed and vega-tooltip would otherwise inject <style> elements.
        defaultStyle: false,
        tooltip: { disableDefaultStyle: true },
      }).then((result) => {
        if (target.isConnected) views.push(result);
        else result.finalize();
      }, () => {
        target.replaceChildren(el("p", { class: "ops-muted", text: "This chart couldn't be drawn." }));
      }));
    }
    await Promise.all(jobs);
  }

  function render(data, root) {
    last = data;
    finalize();
    const list = el("div", { class: "ops-list" }, data.datasets.map((d) => card(d, data.generated_at)));
    if (!data.datasets.length) {
      list.append(el("p", { class: "ops-empty", text: "No datasets are registered yet." }));
    }
    root.replaceChildren(header(data), list);
    root.setAttribute("data-generated", data.generated_at);
    root.setAttribute("data-charts", "drawing");
    drawCharts(data, root).then(() => root.setAttribute("data-charts", "ready"));
  }

  if (darkQuery && darkQuery.addEventListener) {
    darkQuery.addEventListener("change", () => {
      if (last) render(last, document.getElementById("ops-root"));
    });
  }

  ops.page("status", render);
})();
