/*! embedkit operator pages: the shared part of /ops/status and /ops/catalog.
 *
 * The page is opened with an operator link (`.../ops/status#token=<operator JWT>`,
 * from kit.operator_url()). This script takes the token from the fragment, removes
 * the fragment from the address bar at once, and fetches `{prefix}/ops/<page>.json`
 * with `Authorization: Bearer <token>`. The page's own script (ops-status.js or
 * ops-catalog.js) registers a renderer with EmbedkitOps.page() and gets only the data.
 *
 * Security: the token lives only in the `token` variable of this closure (never in
 * storage, cookies, the DOM or the URL). Data is put in the DOM with textContent and
 * setAttribute only (no innerHTML); styles only through classes and CSSOM (the CSP has
 * no 'unsafe-inline'). The status page refreshes every 30 s, and not while it is hidden.
 */
(function () {
  "use strict";

  const doc = document;
  const body = doc.body;
  const root = doc.getElementById("ops-root") || body;
  const PREFIX = (body.getAttribute("data-prefix") || "").replace(/\/+$/, "");
  const PAGE = body.getAttribute("data-page") === "catalog" ? "catalog" : "status";
  const REFRESH_MS = 30000;
  const RETRY_S = [5, 10, 30];

  let token = null; // the operator token: this variable is the only place it is kept
  let renderer = null;
  let shown = false; // has data been drawn at least once
  let lastLoad = 0; // Date.now() of the last successful load
  let timer = 0;
  let failures = 0;
  let busy = false;

  // ---------------------------------------------------------------- DOM helpers

  /** Build an element. attrs: class, text, hidden (boolean), on<event>, others as attributes. */
  function el(tag, attrs, children) {
    const node = doc.createElement(tag);
    for (const key of Object.keys(attrs || {})) {
      const value = attrs[key];
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "hidden") node.hidden = Boolean(value);
      else if (key.length > 2 && key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "style") throw new Error("no style attributes (CSP)");
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    if (children === undefined || children === null) return;
    for (const child of Array.isArray(children) ? children : [children]) {
      if (child === undefined || child === null || child === false || child === "") continue;
      if (Array.isArray(child)) append(node, child);
      else node.append(typeof child === "string" ? doc.createTextNode(child) : child);
    }
  }

  function code(text) {
    return el("code", { text: text });
  }

  // ---------------------------------------------------------------- formatting (browser locale)

  const formats = new Map();

  function intl(kind, options) {
    const id = kind + JSON.stringify(options);
    if (!formats.has(id)) {
      const make = { num: Intl.NumberFormat, date: Intl.DateTimeFormat, rel: Intl.RelativeTimeFormat }[kind];
      formats.set(id, new make(undefined, options));
    }
    return formats.get(id);
  }

  function num(value, digits) {
    const n = Number(value);
    return Number.isFinite(n) ? intl("num", { maximumFractionDigits: digits || 0 }).format(n) : "–";
  }

  function pct(value, digits) {
    const n = Number(value);
    const d = digits === undefined ? 2 : digits;
    return Number.isFinite(n) ? intl("num", { style: "percent", maximumFractionDigits: d }).format(n) : "–";
  }

  const UNITS = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];

  function unitOf(seconds) {
    const s = Math.abs(seconds);
    for (const [unit, size] of UNITS) if (s >= size) return [unit, size];
    return ["second", 1];
  }

  /** "2 hours", "90 minutes" → the largest unit that fits, at most one decimal. */
  function duration(seconds) {
    const [unit, size] = unitOf(seconds);
    const digits = unit === "second" ? 0 : 1;
    return intl("num", { style: "unit", unit: unit, unitDisplay: "long", maximumFractionDigits: digits })
      .format(seconds / size);
  }

  /** "32 minutes ago" for a number of seconds in the past. */
  function ago(seconds) {
    const s = Math.max(0, Number(seconds) || 0);
    if (s < 60) return intl("rel", { numeric: "always" }).format(-Math.round(s), "second");
    const [unit, size] = unitOf(s);
    return intl("rel", { numeric: "auto" }).format(-Math.round(s / size), unit);
  }

  function exact(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return intl("date", { dateStyle: "medium", timeStyle: "long" }).format(d);
  }

  /** <time> saying how long before `ref` (an ISO time; default now) `iso` was, exact time in the title. */
  function when(iso, ref) {
    if (!iso) return el("span", { class: "ops-muted", text: "unknown" });
    const base = ref ? Date.parse(ref) : Date.now();
    const seconds = (base - Date.parse(iso)) / 1000;
    return el("time", { datetime: iso, title: exact(iso), text: ago(seconds) });
  }

  /** <time> showing the exact local time (date too when not today). */
  function clock(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return el("span", { text: String(iso) });
    const today = d.toDateString() === new Date().toDateString();
    const options = today ? { timeStyle: "medium" } : { dateStyle: "medium", timeStyle: "short" };
    return el("time", { datetime: iso, title: exact(iso), text: intl("date", options).format(d) });
  }

  // ---------------------------------------------------------------- page states

  const CALL = "kit.operator_url('" + PAGE + "', subject=...)";

  function showState(kind, title, hint) {
    root.setAttribute("aria-busy", "false");
    const icon = { link: "🔑", invalid: "⏱", error: "!" }[kind] || "";
    root.replaceChildren(
      el("section", { class: "ops-state ops-state-" + kind, role: "alert", "data-state": kind }, [
        el("span", { class: "ops-state-icon", "aria-hidden": "true", text: icon }),
        el("h1", { class: "ops-state-title", text: title }),
        el("p", { class: "ops-state-hint" }, hint),
      ]),
    );
  }

  function showNoToken() {
    showState("link", "This page needs an operator link", [
      "On your server call ", code(CALL), " and open the link it returns.",
    ]);
  }

  function showInvalid() {
    showState("invalid", "The link has expired or is not valid", [
      "Ask for a new one: on your server call ", code(CALL), ".",
    ]);
  }

  function notice(text) {
    let bar = doc.getElementById("ops-notice");
    if (!text) {
      if (bar) bar.remove();
      return;
    }
    if (!bar) {
      bar = el("p", { id: "ops-notice", class: "ops-notice", role: "status" });
      root.prepend(bar);
    }
    bar.textContent = text;
  }

  // ---------------------------------------------------------------- token and data

  function takeToken() {
    const hash = location.hash || "";
    if (!/(^#|&)token=/.test(hash)) return null;
    const value = new URLSearchParams(hash.slice(1)).get("token") || "";
    try {
      history.replaceState(history.state, "", location.pathname + location.search);
    } catch (_) {
      /* no history API: the fragment never reaches a server anyway */
    }
    const clean = value.trim();
    return clean.length <= 16384 && /^[A-Za-z0-9._~+/=-]+$/.test(clean) ? clean : ""; // "" = unusable
  }

  async function load() {
    if (!token || busy) return;
    busy = true;
    clearTimeout(timer);
    try {
      await fetchAndRender();
    } finally {
      busy = false;
    }
  }

  /** The JSON route; the status page passes on ?tenant= to show one tenant's figures. */
  function dataUrl() {
    const tenant = PAGE === "status" ? new URLSearchParams(location.search).get("tenant") : null;
    return PREFIX + "/ops/" + PAGE + ".json" + (tenant ? "?tenant=" + encodeURIComponent(tenant) : "");
  }

  async function fetchAndRender() {
    let res;
    try {
      res = await fetch(dataUrl(), {
        headers: { Authorization: "Bearer " + token, Accept: "application/json" },
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch (_) {
      return failed("The server could not be reached");
    }
    if (res.status === 401 || res.status === 403) {
      token = null;
      showInvalid();
      return;
    }
    if (!res.ok) return failed("The server answered " + res.status);
    let data;
    try {
      data = await res.json();
    } catch (_) {
      return failed("The server's answer could not be read");
    }
    failures = 0;
    lastLoad = Date.now();
    root.setAttribute("aria-busy", "false");
    renderer(data, root);
    shown = true;
    if (PAGE === "status") schedule(REFRESH_MS);
  }

  function failed(reason) {
    const wait = RETRY_S[Math.min(failures++, RETRY_S.length - 1)];
    if (shown) notice(reason + "; the data below may be out of date. Trying again in " + wait + " s.");
    else showState("error", "Couldn't load this page", reason + ". Trying again in " + wait + " s.");
    schedule(wait * 1000);
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = 0;
    if (token && !doc.hidden) timer = setTimeout(load, ms);
  }

  function onVisibility() {
    if (doc.hidden) {
      clearTimeout(timer); // paused while nobody looks
      timer = 0;
    } else if (token && (PAGE === "status" || !shown)) {
      const due = lastLoad + REFRESH_MS - Date.now();
      if (due <= 0 || failures) load();
      else schedule(due);
    }
  }

  /** Links to the other operator page carry the token along in the fragment, as the operator link did. */
  function onNavClick(event) {
    const link = event.target.closest ? event.target.closest("a[data-ops-nav]") : null;
    if (!link || !token || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    if (link.getAttribute("aria-current") === "page") return;
    event.preventDefault();
    location.assign(link.href.split("#")[0] + "#token=" + encodeURIComponent(token));
  }

  function start() {
    doc.addEventListener("click", onNavClick);
    doc.addEventListener("visibilitychange", onVisibility);
    if (token === null) showNoToken();
    else if (!token) showInvalid();
    else load();
  }

  window.EmbedkitOps = Object.freeze({
    /** Register the page's renderer: render(data, root), called after each load. */
    page(name, render) {
      if (name !== PAGE || renderer) return;
      renderer = render;
      start();
    },
    el: el,
    code: code,
    num: num,
    pct: pct,
    duration: duration,
    ago: ago,
    exact: exact,
    when: when,
    clock: clock,
    REFRESH_S: REFRESH_MS / 1000,
  });

  // The token leaves the address bar before anything else runs.
  token = takeToken();
  doc.addEventListener("DOMContentLoaded", () => {
    // Deferred scripts have all run by now: without a renderer the page script failed to load.
    if (!renderer) showState("error", "Couldn't load this page", "Its script is missing; reload the page.");
  });
})();
