/*! embedkit catalog page: every dataset as a data product, with a search box.
 *
 * Draws {prefix}/ops/catalog.json (fetched by ops.js): per dataset its owner, tenant
 * key, columns, contract and SLOs in words, and each measure, dimension and segment
 * with its meaning and SQL. The search box keeps the datasets, and the rows inside
 * them, whose text has every word typed; a dataset whose own name, description or
 * owner matches stays whole.
 */
(function () {
  "use strict";

  const ops = window.EmbedkitOps;
  if (!ops) return;
  const { el, code, num, clock } = ops;

  let entries = []; // one per dataset: {node, text, rows: [{node, text}], sections: [node]}
  let input = null;
  let count = null;

  function words(...parts) {
    return parts.filter((p) => p !== null && p !== undefined).join(" \u0000 ").toLowerCase();
  }

  function fact(term, value) {
    return el("div", { class: "ops-fact" }, [el("dt", { text: term }), el("dd", null, value)]);
  }

  function muted(text) {
    return el("span", { class: "ops-muted", text: text });
  }

  function sql(text) {
    return text ? el("code", { class: "ops-sql", text: text }) : muted("—");
  }

  /** A table section; rows: [{cells: [[label, content, cls]], text, attrs}]. */
  function tableSection(entry, title, heads, rows) {
    if (!rows.length) return null;
    const trs = rows.map((r) => {
      const tr = el("tr", r.attrs, r.cells.map((c) =>
        el("td", { "data-label": c[0], class: c[2] || null }, el("span", { class: "ops-cell" }, c[1]))));
      entry.rows.push({ node: tr, text: r.text });
      return tr;
    });
    const node = el("section", { class: "ops-section" }, [
      el("h3", { class: "ops-h3" }, [title + " ", el("span", { class: "ops-count-small", text: num(rows.length) })]),
      el("div", { class: "ops-table-wrap" }, el("table", { class: "ops-table ops-catalog-table" }, [
        el("thead", null, el("tr", null, heads.map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", null, trs),
      ])),
    ]);
    entry.sections.push(node);
    return node;
  }

  /** A list section; items: [{content, text}]. */
  function listSection(entry, title, items, empty) {
    const lis = items.map((i) => {
      const li = el("li", null, i.content);
      entry.rows.push({ node: li, text: i.text });
      return li;
    });
    const node = el("section", { class: "ops-section" }, [
      el("h3", { class: "ops-h3", text: title }),
      lis.length ? el("ul", { class: "ops-list-plain" }, lis) : el("p", { class: "ops-muted", text: empty }),
    ]);
    entry.sections.push(node);
    return node;
  }

  function member(m, withType) {
    const cells = [
      ["Name", [el("span", { class: "ops-member-title", text: m.title || m.name }), " ", code(m.name)]],
      ["Meaning", [m.description ? m.description : muted("no description"),
        m.visible_when ? el("span", { class: "ops-restricted", text: " visible when " + m.visible_when }) : null]],
    ];
    if (withType) cells.push(["Type", m.type ? m.type : "—"]);
    cells.push(["SQL", sql(m.sql), "ops-sql-cell"]);
    return { cells: cells, text: words(m.name, m.title, m.description, m.sql, m.type, m.visible_when), attrs: { "data-member": m.name } };
  }

  function joinText(j) {
    const on = j.on && typeof j.on === "object"
      ? Object.keys(j.on).map((k) => k + " = " + j.to + "." + j.on[k]).join(" and ")
      : j.on ? String(j.on) : "";
    return [String(j.relationship || "").replace(/_/g, " "), on ? "on " + on : ""].filter(Boolean).join(", ");
  }

  function product(d) {
    const entry = { text: words(d.name, d.description, d.owner), rows: [], sections: [], node: null };
    const id = "ds-" + d.name;
    const scope = d.public
      ? el("span", { class: "ops-tag", text: "public" })
      : el("span", { class: "ops-tag" }, ["per tenant: ", code(d.tenant_key || "?")]);
    const measures = tableSection(entry, "Measures", ["Measure", "Meaning", "SQL"], d.measures.map((m) => member(m)));
    const dimensions = tableSection(entry, "Dimensions", ["Dimension", "Meaning", "Type", "SQL"],
      d.dimensions.map((m) => member(m, true)));
    const segments = tableSection(entry, "Segments", ["Segment", "Meaning", "SQL"], d.segments.map((s) => ({
      cells: [["Name", code(s.name)], ["Meaning", s.description || muted("no description")],
        ["SQL", sql(s.sql), "ops-sql-cell"]],
      text: words(s.name, s.description, s.sql),
      attrs: { "data-member": s.name },
    })));
    const columns = tableSection(entry, "Columns", ["Column", "Type", "Who sees it"], d.columns.map((c) => ({
      cells: [["Column", code(c.name)], ["Type", code(c.type)],
        ["Who sees it", c.visible_when ? el("span", { class: "ops-restricted", text: "visible when " + c.visible_when })
          : muted("everyone with access")]],
      text: words(c.name, c.type, c.visible_when),
      attrs: { "data-column": c.name },
    })));
    const contract = listSection(entry, "Contract", d.contract.map((r) => ({
      content: [r.description, " ", code(r.rule)], text: words(r.rule, r.description),
    })), "No contract: rows are stored as they come.");
    const slo = listSection(entry, "Service levels", d.slo.map((s) => ({
      content: [s.description, " ", code(s.name)],
      text: words(s.name, s.description),
    })), "None declared.");
    const joins = d.joins.length ? listSection(entry, "Joins", d.joins.map((j) => ({
      content: ["→ ", code(j.to), " " + joinText(j)], text: words(j.to, joinText(j)),
    })), "") : null;
    entry.node = el("article", { class: "ops-card ops-product", id: id, "data-dataset": d.name,
      "aria-labelledby": id + "-name" }, [
      el("header", { class: "ops-card-head" }, [
        el("div", { class: "ops-card-title" }, [el("h2", { class: "ops-h2", id: id + "-name", text: d.name }), scope]),
        d.description ? el("p", { class: "ops-desc", text: d.description }) : null,
      ]),
      el("dl", { class: "ops-facts" }, [
        fact("Owner", d.owner || muted("not set")),
        fact("Tenant key", d.public ? muted("none (public)") : code(d.tenant_key || "?")),
        fact("Time column", d.time ? code(d.time) : muted("none")),
        fact("Primary key", d.primary_key.length ? d.primary_key.map((k, i) => [i ? ", " : "", code(k)]).flat()
          : muted("none")),
      ]),
      measures, dimensions, segments, columns,
      el("div", { class: "ops-two" }, [contract, slo]),
      joins,
    ]);
    return entry;
  }

  function filter() {
    const terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    const has = (text) => terms.every((t) => text.includes(t));
    let shown = 0;
    for (const e of entries) {
      const whole = !terms.length || has(e.text);
      let any = false;
      for (const r of e.rows) {
        r.node.hidden = !(whole || has(r.text));
        any = any || !r.node.hidden;
      }
      for (const s of e.sections) s.hidden = !whole && !s.querySelector("tr:not([hidden]) td, li:not([hidden])");
      e.node.hidden = !(whole || any);
      if (!e.node.hidden) shown += 1;
    }
    const n = entries.length;
    if (!terms.length) count.textContent = num(n) + (n === 1 ? " dataset" : " datasets");
    else if (!shown) count.textContent = "Nothing matches “" + input.value.trim() + "”.";
    else count.textContent = num(shown) + " of " + num(n) + " datasets match";
  }

  function render(data, root) {
    const previous = input ? input.value : "";
    entries = data.datasets.map(product);
    const nMeasures = data.datasets.reduce((sum, d) => sum + d.measures.length, 0);
    input = el("input", { type: "search", id: "ops-search", class: "ops-search", autocomplete: "off",
      spellcheck: "false", placeholder: "Search datasets, measures, columns…", "aria-describedby": "ops-search-count",
      oninput: filter });
    input.value = previous;
    count = el("p", { id: "ops-search-count", class: "ops-sub", role: "status", "aria-live": "polite" });
    const toc = el("nav", { class: "ops-toc", "aria-label": "Datasets" }, data.datasets.map((d) =>
      el("a", { href: "#ds-" + d.name, class: "ops-toc-link", text: d.name })));
    root.replaceChildren(
      el("header", { class: "ops-head" }, [
        el("div", { class: "ops-head-text" }, [
          el("h1", { class: "ops-h1", text: "Data catalog" }),
          el("p", { class: "ops-sub" }, [
            num(data.datasets.length) + " datasets · " + num(nMeasures) + " measures · as of ",
            clock(data.generated_at),
          ]),
        ]),
      ]),
      el("div", { class: "ops-searchbar" }, [
        el("label", { for: "ops-search", class: "ops-label", text: "Search the catalog" }), input, count, toc,
      ]),
      el("div", { class: "ops-list" }, entries.map((e) => e.node)),
    );
    filter();
  }

  document.addEventListener("keydown", (event) => {
    const typing = event.target && /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
    if (event.key === "/" && input && !typing && !event.metaKey && !event.ctrlKey) {
      event.preventDefault();
      input.focus();
    }
  });

  ops.page("catalog", render);
})();
