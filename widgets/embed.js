/*! embedkit embed page: the script inside the iframe (or the page opened on its own).
 *
 * Reads data-prefix, data-resource and data-host-origins from <body>, trades the
 * embed token from the URL fragment (or from a `token` message of the host page)
 * for a session (POST {prefix}/session), and draws the dashboard or widget the
 * session grants: filter bar, cards with charts (vega-embed), KPIs and tables.
 *
 * Security: the session token lives only in a closure variable below (never in
 * storage, cookies or the URL); the embed token is removed from the address bar
 * at once. Tenant data is only ever put in the DOM with textContent/setAttribute
 * (no innerHTML), styles only through classes and CSSOM (the page's CSP has no
 * 'unsafe-inline'), and expressions run through vega-interpreter (no eval).
 * postMessage: messages are sent to window.parent once per allowed host origin
 * and accepted only from window.parent with an allowed origin.
 */
(function () {
  "use strict";

  const doc = document;
  const html = doc.documentElement;
  const body = doc.body;
  const root = doc.getElementById("ek-root") || body;

  const PREFIX = (body.getAttribute("data-prefix") || "").replace(/\/+$/, "");
  const RESOURCE = body.getAttribute("data-resource") || "";
  const HAS_PARENT = window.parent !== window;
  const ALLOWED_ORIGINS = readOrigins(body.getAttribute("data-host-origins"));

  const INITIAL_TOKEN_WAIT_MS = 5000;
  const REFRESH_TOKEN_WAIT_MS = 10000;
  const BACKOFF_S = [5, 10, 20, 30];
  const MAX_TABLE_FALLBACK_ROWS = 500;
  const SVG_NS = "http://www.w3.org/2000/svg";

  // ---------------------------------------------------------------- state

  let session = null; // the session JWT: this variable is the only place it is kept
  let expiresAt = 0; // performance.now() time the session expires
  let refreshTimer = 0;
  let expiryTimer = 0;
  let refreshing = null; // the running refresh (a promise), if any
  let phase = "starting"; // starting | ready | expired | invalid
  let def = null; // the Definition, without its session
  const filterState = {}; // filter name -> current value
  let pendingHostFilters = null; // set-filters received before the page was ready
  const hostTheme = {}; // mode / primary set by the host (set-theme)
  let locale = "en-US";
  let currency = "USD";
  let fmtCache = new Map();
  let currentMode = null; // "light" | "dark" as last applied
  let tokenWaiters = [];
  let initialTokenTimer = 0;
  let connectAttempt = 0;
  let askedForFreshToken = false;

  const widgets = new Map(); // widget name -> widget state
  let generation = 0; // one per filter application
  let pendingLoaded = null; // {gen, names: Set} not yet settled for `loaded`
  const retryQueue = new Set();
  let retryTimer = 0;
  let retryAttempt = 0;
  let networkReported = false;

  let dom = {}; // page elements: header, filters, note, grid
  let lastHeight = -1;
  let openPopover = null; // the open multi-select, if any
  const darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  // ---------------------------------------------------------------- small helpers

  function readOrigins(text) {
    let list = [];
    try {
      const parsed = JSON.parse(text || "[]");
      if (Array.isArray(parsed)) list = parsed;
    } catch (_) {
      list = [];
    }
    const out = [];
    for (const item of list) {
      if (typeof item !== "string" || item === "*" || item === "null") continue;
      try {
        const origin = new URL(item).origin;
        if (origin && origin !== "null" && !out.includes(origin)) out.push(origin);
      } catch (_) {
        /* not an origin: ignored */
      }
    }
    return out.length ? out : [location.origin];
  }

  /** Build an element. attrs: class, text, hidden/disabled/checked (booleans), on<event>, others as attributes. */
  function el(tag, attrs, children) {
    const node = doc.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svgEl(tag, attrs, children) {
    const node = doc.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    for (const key of Object.keys(attrs)) {
      const value = attrs[key];
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.setAttribute("class", value);
      else if (key === "text") node.textContent = String(value);
      else if (key === "hidden" || key === "disabled" || key === "checked") node[key] = Boolean(value);
      else if (key.length > 2 && key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "style") throw new Error("no style attributes (CSP)");
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function append(node, children) {
    if (children === undefined || children === null) return;
    const list = Array.isArray(children) ? children : [children];
    for (const child of list) {
      if (child === undefined || child === null || child === false) continue;
      node.append(typeof child === "string" ? doc.createTextNode(child) : child);
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function deepCopy(value) {
    return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  }

  function backoff(attempt) {
    return BACKOFF_S[Math.min(attempt, BACKOFF_S.length - 1)] * 1000;
  }

  function clampDelay(ms) {
    return Math.min(Math.max(0, ms), 2147483000);
  }

  function capitalize(text) {
    const s = String(text);
    return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
  }

  function valueKey(v) {
    return typeof v + ":" + String(v);
  }

  /** A plain, cloneable copy of a Vega datum: own scalar fields only. */
  function plainDatum(datum) {
    if (!datum || typeof datum !== "object") return null;
    const out = {};
    for (const key of Object.keys(datum)) {
      const v = datum[key];
      if (v === null || typeof v === "string" || typeof v === "boolean") out[key] = v;
      else if (typeof v === "number") out[key] = Number.isFinite(v) ? v : null;
      else if (v instanceof Date) out[key] = Number.isNaN(v.getTime()) ? null : v.toISOString();
    }
    return out;
  }

  const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

  function isIsoDate(s) {
    if (typeof s !== "string" || !ISO_DATE.test(s)) return false;
    const d = new Date(s + "T00:00:00Z");
    return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
  }

  function todayIso(offsetDays) {
    const now = new Date();
    const d = new Date(Date.UTC(now.getFullYear(), now.getMonth(), now.getDate() + (offsetDays || 0)));
    return d.toISOString().slice(0, 10);
  }

  // ---------------------------------------------------------------- messages

  function post(type, payload) {
    if (!HAS_PARENT) return;
    const msg = Object.assign({}, payload || {}, { embedkit: 1, type: type });
    for (const origin of ALLOWED_ORIGINS) {
      try {
        window.parent.postMessage(msg, origin);
      } catch (_) {
        /* a parent that went away */
      }
    }
  }

  function onMessage(event) {
    if (!HAS_PARENT || event.source !== window.parent) return;
    if (!ALLOWED_ORIGINS.includes(event.origin)) return;
    const msg = event.data;
    if (!msg || typeof msg !== "object" || msg.embedkit !== 1 || typeof msg.type !== "string") return;
    if (msg.type === "token") onTokenMessage(msg.token);
    else if (msg.type === "set-filters") onSetFilters(msg.filters);
    else if (msg.type === "set-theme") onSetTheme(msg.theme);
  }

  function cleanToken(value) {
    if (typeof value !== "string") return null;
    let token = value.trim();
    if (token.includes("token=") && /[#?&]/.test(token)) {
      token = new URLSearchParams(token.slice(token.lastIndexOf("#") + 1)).get("token") || "";
    }
    if (!token || token.length > 16384 || !/^[A-Za-z0-9._~+/=-]+$/.test(token)) return null;
    return token;
  }

  function onTokenMessage(raw) {
    const token = cleanToken(raw);
    if (!token) return;
    if (tokenWaiters.length) {
      const waiters = tokenWaiters;
      tokenWaiters = [];
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.resolve(token);
      }
      return;
    }
    if (phase === "ready") {
      // An unasked-for fresh token: swap the session with it.
      refreshWith(token);
    } else {
      clearTimeout(initialTokenTimer);
      connect(token);
    }
  }

  /** Ask the host for a fresh embed token; resolves to it, or null after `ms`. */
  function requestToken(ms) {
    if (!HAS_PARENT) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter = { resolve: resolve, timer: 0 };
      waiter.timer = setTimeout(() => {
        tokenWaiters = tokenWaiters.filter((w) => w !== waiter);
        resolve(null);
      }, ms);
      tokenWaiters.push(waiter);
      post("token-request", {});
    });
  }

  // ---------------------------------------------------------------- session

  function problemCode(problem) {
    const type = problem && typeof problem.type === "string" ? problem.type : "";
    if (/\/expired$/.test(type)) return "expired";
    if (/\/revoked$/.test(type)) return "revoked";
    return "invalid";
  }

  /** POST /session. Throws on a network error; otherwise {ok, def, t0} or {ok: false, code}. */
  async function openSession(token) {
    const res = await fetch(PREFIX + "/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ token: token, resource: RESOURCE }),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
    const t0 = performance.now();
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (res.ok && data && typeof data.session === "string") return { ok: true, def: data, t0: t0 };
    if (res.status >= 500) throw new Error("server error " + res.status);
    return { ok: false, code: res.status === 401 ? problemCode(data) : "invalid" };
  }

  function takeTokenFromHash() {
    const hash = location.hash || "";
    if (!hash) return null;
    const token = new URLSearchParams(hash.slice(1)).get("token");
    try {
      history.replaceState(history.state, "", location.pathname + location.search);
    } catch (_) {
      /* sandboxed without history: the token still never leaves the page */
    }
    return cleanToken(token);
  }

  async function connect(token) {
    phase = "starting";
    let r;
    try {
      r = await openSession(token);
    } catch (_) {
      showLoading("Reconnecting…");
      reportNetwork();
      await sleep(backoff(connectAttempt++));
      if (phase === "starting") connect(token);
      return;
    }
    connectAttempt = 0;
    if (!r.ok) {
      if (r.code === "expired" && HAS_PARENT && !askedForFreshToken) {
        // An old link (page restored, element moved): ask the host once for a fresh one.
        askedForFreshToken = true;
        const fresh = await requestToken(REFRESH_TOKEN_WAIT_MS);
        if (fresh) {
          connect(fresh);
          return;
        }
      }
      showPageState(r.code);
      return;
    }
    const first = !def;
    applySession(r);
    phase = "ready";
    networkReported = false;
    if (first || !dom.grid || !dom.grid.isConnected) buildPage();
    if (pendingHostFilters) {
      const wanted = pendingHostFilters;
      pendingHostFilters = null;
      if (mergeFilters(wanted)) post("filterchange", { filters: currentFilters() });
    }
    loadAll();
  }

  /** Take a POST /session answer: session, refresh schedule, definition. */
  function applySession(r) {
    const data = r.def;
    session = data.session;
    delete data.session;
    const ttl = Math.max(0, Number(data.expires_in) || 0);
    expiresAt = r.t0 + ttl * 1000;
    scheduleRefresh(r.t0, ttl);
    const old = def;
    def = data;
    locale = pickLocale(data.locale);
    currency = typeof data.currency === "string" && /^[A-Za-z]{3}$/.test(data.currency) ? data.currency.toUpperCase() : "USD";
    fmtCache = new Map();
    html.lang = locale;
    syncFilterState(old);
    applyTheme();
    if (old && dom.filters && filterShape(old) !== filterShape(def)) renderFilterBar();
  }

  function pickLocale(value) {
    try {
      if (typeof value === "string" && Intl.NumberFormat.supportedLocalesOf([value]).length) return value;
    } catch (_) {
      /* malformed tag */
    }
    return "en-US";
  }

  function scheduleRefresh(t0, ttl) {
    clearTimeout(refreshTimer);
    clearTimeout(expiryTimer);
    // When the session runs out with no fresh one, say so (a later `token` message recovers).
    expiryTimer = setTimeout(() => {
      if (phase === "ready" && performance.now() >= expiresAt - 50) showPageState("expired");
    }, clampDelay(t0 + ttl * 1000 - performance.now()));
    const lead = Math.max(30, ttl * 0.2);
    const dueIn = Math.max(ttl - lead, ttl / 2) * 1000; // never sooner than half the lifetime
    refreshTimer = setTimeout(() => refreshSession(), clampDelay(t0 + dueIn - performance.now()));
  }

  function refreshSession() {
    if (!refreshing) {
      refreshing = runRefresh().finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  async function runRefresh() {
    clearTimeout(refreshTimer);
    for (let attempt = 0; ; attempt++) {
      if (phase !== "ready") return false;
      const left0 = expiresAt - performance.now();
      const token = await requestToken(left0 > 0 ? Math.min(REFRESH_TOKEN_WAIT_MS, left0) : REFRESH_TOKEN_WAIT_MS);
      if (phase !== "ready") return false;
      if (token) {
        const outcome = await trySession(token);
        if (outcome === "ok") return true;
        if (outcome === "revoked") {
          showPageState("revoked");
          return false;
        }
      }
      const left = expiresAt - performance.now();
      if (left <= 0) {
        showPageState("expired");
        return false;
      }
      await sleep(Math.min(backoff(attempt), left));
    }
  }

  async function trySession(token) {
    let r;
    try {
      r = await openSession(token);
    } catch (_) {
      return "network";
    }
    if (!r.ok) return r.code;
    if (phase !== "ready") return "stale";
    applySession(r);
    return "ok";
  }

  async function refreshWith(token) {
    if (refreshing) return;
    let outcome = "";
    refreshing = trySession(token)
      .then((o) => {
        outcome = o;
        return o === "ok";
      })
      .finally(() => {
        refreshing = null;
      });
    await refreshing;
    if (outcome === "revoked") showPageState("revoked");
  }

  /** After a 401: the session is no good; refresh (waits for the host) or show the expired state. */
  async function recoverFrom401(usedSession) {
    if (session !== usedSession && phase === "ready") return true; // already swapped meanwhile
    expiresAt = Math.min(expiresAt, performance.now());
    return refreshSession();
  }

  function onVisible() {
    if (doc.visibilityState !== "visible" || phase !== "ready" || !def) return;
    // Timers can sleep with the device; catch up when the page is seen again.
    const ttl = Math.max(0, Number(def.expires_in) || 0);
    const lead = Math.max(30, ttl * 0.2);
    if (expiresAt - performance.now() <= lead * 1000) refreshSession();
  }

  // ---------------------------------------------------------------- theme

  function effectiveMode() {
    const mode = hostTheme.mode || (def && def.theme && def.theme.mode) || "auto";
    if (mode === "light" || mode === "dark") return mode;
    return darkQuery && darkQuery.matches ? "dark" : "light";
  }

  function applyTheme() {
    const mode = effectiveMode();
    const dark = mode === "dark";
    const theme = (def && def.theme) || {};
    const surfaces = (def && def.surfaces && def.surfaces[mode]) || {};
    const style = html.style;
    const set = (name, value) => {
      if (typeof value === "string" && value) style.setProperty(name, value);
    };
    set("--ek-bg", surfaces.background);
    set("--ek-text", surfaces.text);
    set("--ek-muted", surfaces.muted);
    set("--ek-grid", surfaces.grid);
    const primary = hostTheme.primary || theme.primary;
    set("--ek-primary", primary);
    if (typeof primary === "string") set("--ek-on-primary", readableOn(primary));
    set("--ek-font", theme.font);
    if (Number.isFinite(theme.radius)) style.setProperty("--ek-radius", Math.max(0, Math.min(32, theme.radius)) + "px");
    style.setProperty("color-scheme", dark ? "dark" : "light");
    html.classList.toggle("ek-dark", dark);
    html.classList.toggle("ek-light", !dark);
    const changed = currentMode !== null && currentMode !== mode;
    currentMode = mode;
    return changed;
  }

  function readableOn(hex) {
    const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(hex);
    if (!m) return "#ffffff";
    let h = m[1];
    if (h.length === 3) h = h.replace(/./g, "$&$&");
    const [r, g, b] = [0, 2, 4].map((i) => {
      const c = parseInt(h.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return lum > 0.45 ? "#111827" : "#ffffff";
  }

  function onSetTheme(theme) {
    if (!theme || typeof theme !== "object") return;
    let touched = false;
    if (theme.mode === "light" || theme.mode === "dark" || theme.mode === "auto") {
      hostTheme.mode = theme.mode;
      touched = true;
    }
    if (typeof theme.primary === "string" && /^#[0-9a-fA-F]{6}$/.test(theme.primary)) {
      hostTheme.primary = theme.primary.toLowerCase();
      touched = true;
    }
    if (!touched) return;
    applyTheme();
    if (phase === "ready") redrawCharts();
  }

  function onSystemScheme() {
    if (applyTheme() && phase === "ready") redrawCharts();
  }

  function vegaConfig() {
    const config = deepCopy((def && def.vega && def.vega[currentMode || effectiveMode()]) || {});
    if (hostTheme.primary) {
      config.mark = Object.assign({}, config.mark, { color: hostTheme.primary });
    }
    return config;
  }

  // ---------------------------------------------------------------- formatting

  function formatter(key, options) {
    const id = key + JSON.stringify(options);
    let f = fmtCache.get(id);
    if (!f) {
      try {
        f = key === "date" ? new Intl.DateTimeFormat(locale, options) : new Intl.NumberFormat(locale, options);
      } catch (_) {
        f = key === "date" ? new Intl.DateTimeFormat("en-US", options) : new Intl.NumberFormat("en-US", options);
      }
      fmtCache.set(id, f);
    }
    return f;
  }

  function numberOptions(format, compact) {
    const base = compact ? { notation: "compact", maximumFractionDigits: 1 } : {};
    if (format === "currency") {
      return Object.assign({ style: "currency", currency: currency }, base,
        compact ? { maximumFractionDigits: 1 } : {});
    }
    if (format === "percent") return { style: "percent", maximumFractionDigits: 1 };
    if (format === "integer") return Object.assign({ maximumFractionDigits: 0 }, base);
    return Object.assign({ maximumFractionDigits: 2 }, base);
  }

  function formatNumber(value, format, compact) {
    const n = typeof value === "number" ? value : Number(value);
    if (!Number.isFinite(n)) return String(value);
    return formatter("num", numberOptions(format, compact)).format(n);
  }

  const GRAIN_FORMATS = {
    year: { year: "numeric" },
    month: { year: "numeric", month: "short" },
    week: { year: "numeric", month: "short", day: "numeric" },
    day: { year: "numeric", month: "short", day: "numeric" },
    hour: { year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit" },
    minute: { year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit" },
  };

  function formatTime(value, grain) {
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) return String(value);
    if (grain === "quarter") {
      const q = Math.floor(d.getUTCMonth() / 3) + 1;
      return "Q" + q + " " + formatter("date", { timeZone: "UTC", year: "numeric" }).format(d);
    }
    let options = GRAIN_FORMATS[grain];
    if (!options) {
      const midnight = d.getUTCHours() === 0 && d.getUTCMinutes() === 0 && d.getUTCSeconds() === 0;
      options = midnight ? GRAIN_FORMATS.day : GRAIN_FORMATS.minute;
    }
    return formatter("date", Object.assign({ timeZone: "UTC" }, options)).format(d);
  }

  function formatCell(field, value) {
    if (value === null || value === undefined || value === "") return "—";
    if (field.role === "time") return formatTime(value, field.grain);
    if (field.grain === "day_of_week" && Number.isInteger(value) && value >= 1 && value <= 7) {
      // ISO weekday (1 = Monday); 1 January 2024 was a Monday.
      return formatter("date", { timeZone: "UTC", weekday: "short" }).format(new Date(Date.UTC(2024, 0, value)));
    }
    if (typeof value === "number") return formatNumber(value, field.format);
    if (field.role === "measure" && typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) {
      return formatNumber(Number(value), field.format);
    }
    if (typeof value === "boolean") return value ? "Yes" : "No";
    return String(value);
  }

  function isNumericField(field) {
    return field.role === "measure";
  }

  function cellClass(field) {
    return isNumericField(field) ? "ek-num" : field.role === "time" ? "ek-time" : "";
  }

  /** d3-format locale (decimal, thousands, grouping, currency) from Intl, for Vega's `$` formats. */
  function d3FormatLocale() {
    let decimal = ".";
    let thousands = ",";
    try {
      for (const part of formatter("num", { useGrouping: true, minimumFractionDigits: 1 }).formatToParts(1234567.5)) {
        if (part.type === "decimal") decimal = part.value;
        else if (part.type === "group") thousands = part.value;
      }
    } catch (_) {
      /* keep defaults */
    }
    let prefix = "";
    let suffix = "";
    try {
      let seenNumber = false;
      for (const part of formatter("num", { style: "currency", currency: currency }).formatToParts(1)) {
        if (part.type === "integer" || part.type === "decimal" || part.type === "fraction" || part.type === "group") {
          seenNumber = true;
        } else if (part.type === "minusSign" || part.type === "plusSign") {
          continue;
        } else if (seenNumber) {
          suffix += part.value;
        } else {
          prefix += part.value;
        }
      }
    } catch (_) {
      prefix = "$";
    }
    return { decimal: decimal, thousands: thousands, grouping: [3], currency: [prefix, suffix] };
  }

  // ---------------------------------------------------------------- filters

  function filterDefs() {
    return (def && def.dashboard && Array.isArray(def.dashboard.filters)) ? def.dashboard.filters : [];
  }

  function filterShape(d) {
    const list = (d && d.dashboard && d.dashboard.filters) || [];
    return JSON.stringify(list.map((f) => [f.name, f.kind, !!f.locked, f.presets, f.options, f.custom, f.multiple,
      f.locked ? f.value : null]));
  }

  function normalizeValue(f, value) {
    if (f.kind === "select") {
      if (value === null || value === undefined) return [];
      return Array.isArray(value) ? value.slice() : [value];
    }
    return Array.isArray(value) ? value.slice() : value;
  }

  /** Keep the viewer's choices across a session refresh; locked values follow the definition. */
  function syncFilterState(old) {
    const names = new Set();
    for (const f of filterDefs()) {
      names.add(f.name);
      if (!old || f.locked || !(f.name in filterState)) filterState[f.name] = normalizeValue(f, f.value);
    }
    for (const name of Object.keys(filterState)) if (!names.has(name)) delete filterState[name];
  }

  function currentFilters() {
    return deepCopy(filterState);
  }

  /** Validate one host-given value against a filter's definition; undefined when not acceptable. */
  function validFilterValue(f, value) {
    if (f.kind === "date_range") {
      if (typeof value === "string") return (f.presets || []).includes(value) ? value : undefined;
      if (f.custom && Array.isArray(value) && value.length === 2 && isIsoDate(value[0]) && isIsoDate(value[1]) &&
          value[0] <= value[1]) {
        return [value[0], value[1]];
      }
      return undefined;
    }
    if (f.kind === "grain") {
      return typeof value === "string" && (f.options || []).includes(value) ? value : undefined;
    }
    if (f.kind === "select") {
      const list = value === null ? [] : Array.isArray(value) ? value : [value];
      if (list.length > 1000) return undefined;
      if (!list.every((v) => typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v)))) {
        return undefined;
      }
      const unique = [];
      const seen = new Set();
      for (const v of list) {
        if (!seen.has(valueKey(v))) {
          seen.add(valueKey(v));
          unique.push(v);
        }
      }
      if (f.multiple === false && unique.length > 1) return undefined;
      return unique;
    }
    return undefined;
  }

  /** Apply host filters; returns true when something changed. */
  function mergeFilters(wanted) {
    let changed = false;
    for (const f of filterDefs()) {
      if (f.locked || !Object.prototype.hasOwnProperty.call(wanted, f.name)) continue;
      const value = validFilterValue(f, wanted[f.name]);
      if (value === undefined) continue;
      if (JSON.stringify(value) !== JSON.stringify(filterState[f.name])) {
        filterState[f.name] = value;
        changed = true;
      }
    }
    if (changed) syncFilterControls();
    return changed;
  }

  function onSetFilters(wanted) {
    if (!wanted || typeof wanted !== "object" || Array.isArray(wanted)) return;
    if (phase !== "ready" || !def) {
      pendingHostFilters = Object.assign(pendingHostFilters || {}, wanted);
      return;
    }
    if (mergeFilters(wanted)) {
      post("filterchange", { filters: currentFilters() });
      loadAll();
    }
  }

  /** A viewer's change from the filter bar. */
  function setFilter(name, value) {
    const f = filterDefs().find((x) => x.name === name);
    if (!f || f.locked) return;
    const clean = validFilterValue(f, value);
    if (clean === undefined) return;
    if (JSON.stringify(clean) === JSON.stringify(filterState[name])) return;
    filterState[name] = clean;
    syncFilterControls();
    post("filterchange", { filters: currentFilters() });
    loadAll();
  }

  const filterControls = new Map(); // name -> {sync()}

  function syncFilterControls() {
    for (const control of filterControls.values()) control.sync();
  }

  function lockIcon() {
    return svgEl("svg", { class: "ek-lock", viewBox: "0 0 16 16", width: "12", height: "12", "aria-hidden": "true",
      focusable: "false" }, [
      svgEl("path", { d: "M4.5 7V5a3.5 3.5 0 0 1 7 0v2", fill: "none", stroke: "currentColor", "stroke-width": "1.6",
        "stroke-linecap": "round" }),
      svgEl("rect", { x: "3", y: "7", width: "10", height: "7.5", rx: "1.5", fill: "currentColor" }),
    ]);
  }

  function chevronIcon() {
    return svgEl("svg", { class: "ek-chevron", viewBox: "0 0 16 16", width: "14", height: "14", "aria-hidden": "true",
      focusable: "false" }, [
      svgEl("path", { d: "M4 6l4 4 4-4", fill: "none", stroke: "currentColor", "stroke-width": "1.6",
        "stroke-linecap": "round", "stroke-linejoin": "round" }),
    ]);
  }

  let idCounter = 0;
  function uid(prefix) {
    idCounter += 1;
    return "ek-" + prefix + "-" + idCounter;
  }

  function filterLabel(f, id, tag) {
    const label = el(tag || "label", { class: "ek-filter-label", id: id + "-label" }, [String(f.label || f.name)]);
    if (tag !== "span") label.setAttribute("for", id);
    if (f.locked) {
      label.append(lockIcon(), el("span", { class: "ek-sr", text: " (locked)" }));
    }
    return label;
  }

  function presetLabel(preset) {
    return capitalize(preset);
  }

  function buildDateRange(f) {
    const id = uid("f");
    const wrap = el("div", { class: "ek-filter ek-filter-date" + (f.locked ? " is-locked" : "") });
    const select = el("select", { id: id, class: "ek-control ek-select" });
    const presets = Array.isArray(f.presets) ? f.presets.slice() : [];
    const from = el("input", { type: "date", class: "ek-control ek-date", "aria-label": f.label + ": start date" });
    const to = el("input", { type: "date", class: "ek-control ek-date", "aria-label": f.label + ": end date" });
    const custom = el("span", { class: "ek-custom", hidden: true }, [from, el("span", { class: "ek-dash", "aria-hidden": "true", text: "–" }), to]);
    const CUSTOM = "\u0000custom";

    function options() {
      clear(select);
      const value = filterState[f.name];
      const list = presets.slice();
      if (typeof value === "string" && !list.includes(value)) list.unshift(value);
      for (const p of list) select.append(el("option", { value: p, text: presetLabel(p) }));
      if (f.custom || Array.isArray(value)) select.append(el("option", { value: CUSTOM, text: "Custom…" }));
    }

    function sync() {
      options();
      const value = filterState[f.name];
      if (Array.isArray(value)) {
        select.value = CUSTOM;
        from.value = value[0] || "";
        to.value = value[1] || "";
        custom.hidden = false;
      } else {
        select.value = value;
        custom.hidden = true;
      }
      from.removeAttribute("aria-invalid");
      to.removeAttribute("aria-invalid");
    }

    function applyCustom() {
      const a = from.value;
      const b = to.value;
      const ok = isIsoDate(a) && isIsoDate(b) && a <= b;
      from.setAttribute("aria-invalid", String(!ok && a !== "" && b !== ""));
      to.setAttribute("aria-invalid", String(!ok && a !== "" && b !== ""));
      if (ok) setFilter(f.name, [a, b]);
    }

    select.addEventListener("change", () => {
      if (select.value === CUSTOM) {
        custom.hidden = false;
        if (!from.value) from.value = todayIso(-29);
        if (!to.value) to.value = todayIso(0);
        applyCustom();
        from.focus();
      } else {
        custom.hidden = true;
        setFilter(f.name, select.value);
      }
    });
    from.addEventListener("change", applyCustom);
    to.addEventListener("change", applyCustom);

    if (f.locked) {
      for (const c of [select, from, to]) {
        c.disabled = true;
        c.setAttribute("aria-disabled", "true");
      }
    }
    wrap.append(filterLabel(f, id), el("div", { class: "ek-filter-controls" }, [select, custom]));
    filterControls.set(f.name, { sync: sync });
    sync();
    return wrap;
  }

  function buildGrain(f) {
    const id = uid("f");
    const wrap = el("div", { class: "ek-filter ek-filter-grain" + (f.locked ? " is-locked" : "") });
    const group = el("div", { class: "ek-seg", role: "group", "aria-labelledby": id + "-label" });
    const buttons = [];
    const opts = Array.isArray(f.options) ? f.options.slice() : [];
    if (typeof filterState[f.name] === "string" && !opts.includes(filterState[f.name])) opts.push(filterState[f.name]);
    for (const option of opts) {
      const b = el("button", { type: "button", class: "ek-seg-btn", text: capitalize(option) });
      b.addEventListener("click", () => setFilter(f.name, option));
      if (f.locked) {
        b.disabled = true;
        b.setAttribute("aria-disabled", "true");
      }
      buttons.push([option, b]);
      group.append(b);
    }
    if (f.locked) group.setAttribute("aria-disabled", "true");
    function sync() {
      for (const [option, b] of buttons) b.setAttribute("aria-pressed", String(filterState[f.name] === option));
    }
    wrap.append(filterLabel(f, id, "span"), group);
    filterControls.set(f.name, { sync: sync });
    sync();
    return wrap;
  }

  function selectSummary(values) {
    if (!values.length) return "All";
    if (values.length === 1) return String(values[0]);
    if (values.length === 2) return String(values[0]) + ", " + String(values[1]);
    return String(values[0]) + " +" + (values.length - 1) + " more";
  }

  function buildSelect(f) {
    const id = uid("f");
    const popId = id + "-pop";
    const wrap = el("div", { class: "ek-filter ek-filter-select" + (f.locked ? " is-locked" : "") });
    const text = el("span", { class: "ek-ms-text" });
    const count = el("span", { class: "ek-ms-count", hidden: true });
    const button = el("button", {
      type: "button", id: id, class: "ek-control ek-ms-button", "aria-haspopup": "dialog",
      "aria-expanded": "false", "aria-controls": popId,
    }, [text, count, chevronIcon()]);
    button.setAttribute("aria-describedby", id + "-label");
    const search = el("input", { type: "search", class: "ek-control ek-ms-search", placeholder: "Search…",
      "aria-label": "Search " + f.label, autocomplete: "off", spellcheck: "false" });
    const list = el("div", { class: "ek-ms-list", role: "group", "aria-label": f.label });
    const note = el("p", { class: "ek-ms-note", role: "status", "aria-live": "polite" });
    const clearBtn = el("button", { type: "button", class: "ek-btn ek-btn-ghost", text: "Clear" });
    const doneBtn = el("button", { type: "button", class: "ek-btn ek-btn-primary", text: "Apply" });
    const pop = el("div", { id: popId, class: "ek-popover", role: "dialog", "aria-label": f.label, hidden: true }, [
      search, list, note, el("div", { class: "ek-ms-foot" }, [clearBtn, doneBtn]),
    ]);
    let pending = [];
    let choices = [];
    let fetchSeq = 0;
    let searchTimer = 0;
    const multiple = f.multiple !== false;

    function sync() {
      const values = filterState[f.name] || [];
      text.textContent = selectSummary(values);
      button.classList.toggle("has-value", values.length > 0);
      button.setAttribute("aria-label", f.label + ": " + (values.length ? values.map(String).join(", ") : "All"));
      button.title = values.length ? values.map(String).join(", ") : "";
    }

    function renderList() {
      clear(list);
      const seen = new Set();
      const q = search.value.trim().toLowerCase();
      const items = [];
      for (const v of pending) {
        if (!q || String(v).toLowerCase().includes(q)) {
          items.push(v);
          seen.add(valueKey(v));
        }
      }
      for (const v of choices) if (!seen.has(valueKey(v))) {
        items.push(v);
        seen.add(valueKey(v));
      }
      const name = id + "-opt";
      for (const v of items) {
        const checked = pending.some((p) => valueKey(p) === valueKey(v));
        const input = el("input", { type: multiple ? "checkbox" : "radio", name: name, checked: checked });
        input.addEventListener("change", () => {
          if (multiple) {
            pending = input.checked ? pending.concat([v]) : pending.filter((p) => valueKey(p) !== valueKey(v));
          } else {
            pending = input.checked ? [v] : [];
            close(true);
          }
        });
        list.append(el("label", { class: "ek-ms-option" }, [input, el("span", { text: String(v) })]));
      }
      return items.length;
    }

    async function fetchChoices() {
      const seq = ++fetchSeq;
      note.textContent = "Loading…";
      const url = PREFIX + "/values/" + encodeURIComponent(f.name) + "?q=" + encodeURIComponent(search.value.trim());
      let data = null;
      try {
        const res = await authedGet(url);
        if (res && res.ok) data = await res.json();
      } catch (_) {
        data = null;
      }
      if (seq !== fetchSeq || pop.hidden) return;
      if (!data || !Array.isArray(data.values)) {
        choices = [];
        renderList();
        note.textContent = "Couldn't load the choices. Try again.";
        return;
      }
      choices = data.values.filter((v) => v !== null && v !== undefined);
      const shown = renderList();
      note.textContent = shown === 0 ? "No matches" : data.truncated ? "Showing the first " + choices.length + " — type to narrow down" : "";
      positionPopover();
    }

    function positionPopover() {
      pop.style.removeProperty("left");
      pop.style.removeProperty("right");
      const rect = pop.getBoundingClientRect();
      const vw = doc.documentElement.clientWidth;
      if (rect.right > vw - 8) {
        const wrapRect = wrap.getBoundingClientRect();
        pop.style.setProperty("left", Math.max(8 - wrapRect.left, vw - 8 - rect.width - wrapRect.left) + "px");
      }
      // The iframe is only as tall as the page: make room for the popover below.
      const bottom = pop.getBoundingClientRect().bottom + window.scrollY;
      const rootTop = root.getBoundingClientRect().top + window.scrollY;
      const need = Math.ceil(bottom - rootTop + 12);
      root.style.setProperty("min-height", need + "px");
    }

    function open() {
      if (f.locked) return;
      if (openPopover && openPopover !== api) openPopover.close(true);
      pending = (filterState[f.name] || []).slice();
      choices = [];
      search.value = "";
      pop.hidden = false;
      button.setAttribute("aria-expanded", "true");
      wrap.classList.add("is-open");
      openPopover = api;
      renderList();
      positionPopover();
      fetchChoices();
      search.focus();
    }

    function close(apply, keepFocus) {
      if (pop.hidden) return;
      pop.hidden = true;
      button.setAttribute("aria-expanded", "false");
      wrap.classList.remove("is-open");
      root.style.removeProperty("min-height");
      if (openPopover === api) openPopover = null;
      fetchSeq++;
      if (!keepFocus) button.focus();
      if (apply) setFilter(f.name, pending);
    }

    const api = { close: close, contains: (node) => wrap.contains(node), sync: sync };

    button.addEventListener("click", () => (pop.hidden ? open() : close(true)));
    search.addEventListener("input", () => {
      clearTimeout(searchTimer);
      renderList();
      searchTimer = setTimeout(fetchChoices, 200);
    });
    clearBtn.addEventListener("click", () => {
      pending = [];
      renderList();
      search.focus();
    });
    doneBtn.addEventListener("click", () => close(true));
    pop.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        close(true);
      }
    });

    if (f.locked) {
      button.disabled = true;
      button.setAttribute("aria-disabled", "true");
    }
    wrap.append(filterLabel(f, id), el("div", { class: "ek-ms" }, [button, pop]));
    filterControls.set(f.name, api);
    sync();
    return wrap;
  }

  function renderFilterBar() {
    if (!dom.filters) return;
    if (openPopover) openPopover.close(false, true);
    filterControls.clear();
    clear(dom.filters);
    const list = filterDefs();
    dom.filters.hidden = list.length === 0;
    for (const f of list) {
      if (f.kind === "date_range") dom.filters.append(buildDateRange(f));
      else if (f.kind === "select") dom.filters.append(buildSelect(f));
      else if (f.kind === "grain") dom.filters.append(buildGrain(f));
    }
  }

  function onDocumentPointerDown(event) {
    if (openPopover && !openPopover.contains(event.target)) openPopover.close(true, true);
  }

  // ---------------------------------------------------------------- page

  function setBusy(busy) {
    root.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function showLoading(text) {
    clear(root);
    dom = {};
    setBusy(true);
    root.append(el("div", { class: "ek-state ek-state-loading", role: "status" }, [
      el("span", { class: "ek-spinner", "aria-hidden": "true" }),
      el("p", { class: "ek-state-hint", text: text || "Loading…" }),
    ]));
  }

  const PAGE_STATES = {
    expired: { title: "This link has expired", hint: "Reload the page to see this again.", code: "expired" },
    invalid: { title: "This link is not valid", hint: "Ask the site that showed it for a new link.", code: "invalid" },
    revoked: { title: "This link is not valid", hint: "Ask the site that showed it for a new link.", code: "revoked" },
  };

  function showPageState(code) {
    const state = PAGE_STATES[code] || PAGE_STATES.invalid;
    phase = code === "expired" ? "expired" : "invalid";
    session = null;
    clearTimeout(refreshTimer);
    clearTimeout(expiryTimer);
    const waiters = tokenWaiters;
    tokenWaiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve(null);
    }
    clearTimeout(retryTimer);
    clearTimeout(initialTokenTimer);
    stopLive();
    retryTimer = 0;
    retryQueue.clear();
    for (const w of widgets.values()) finalizeView(w);
    widgets.clear();
    if (openPopover) openPopover.close(false, true);
    filterControls.clear();
    pendingLoaded = null;
    clear(root);
    dom = {};
    setBusy(false);
    const icon = svgEl("svg", { viewBox: "0 0 24 24", width: "28", height: "28", "aria-hidden": "true", focusable: "false" }, [
      svgEl("circle", { cx: "12", cy: "12", r: "9", fill: "none", stroke: "currentColor", "stroke-width": "1.8" }),
      code === "expired"
        ? svgEl("path", { d: "M12 7v5l3 2", fill: "none", stroke: "currentColor", "stroke-width": "1.8", "stroke-linecap": "round" })
        : svgEl("path", { d: "M9 9l6 6M15 9l-6 6", fill: "none", stroke: "currentColor", "stroke-width": "1.8", "stroke-linecap": "round" }),
    ]);
    root.append(el("div", { class: "ek-state ek-state-" + (code === "expired" ? "expired" : "invalid"), role: "alert" }, [
      el("div", { class: "ek-state-icon" }, [icon]),
      el("h1", { class: "ek-state-title", text: state.title }),
      el("p", { class: "ek-state-hint", text: state.hint }),
    ]));
    doc.title = state.title;
    post("error", { code: state.code, message: state.title });
  }

  function buildPage() {
    clear(root);
    for (const w of widgets.values()) finalizeView(w);
    widgets.clear();
    filterControls.clear();
    const dash = def.dashboard || {};
    const single = Boolean(def.resource && def.resource.widget);
    const title = typeof dash.title === "string" ? dash.title : "";
    doc.title = title || "Analytics";
    const header = el("header", { class: "ek-header" });
    if (!single && title) header.append(el("h1", { class: "ek-title", text: title }));
    if (!single && dash.description) header.append(el("p", { class: "ek-desc", text: dash.description }));
    const note = el("div", { class: "ek-note", role: "status", "aria-live": "polite", hidden: true }, [
      el("span", { class: "ek-note-dot", "aria-hidden": "true" }), el("span", { text: "Reconnecting…" }),
    ]);
    header.append(note);
    const filters = el("div", { class: "ek-filters", role: "group", "aria-label": "Filters" });
    const columns = Math.max(1, Math.min(4, Number(dash.columns) || 3));
    const grid = el("div", { class: "ek-grid ek-cols-" + columns });
    root.append(header, filters, grid);
    root.classList.toggle("ek-single", single);
    body.classList.toggle("ek-single-page", single);
    dom = { header: header, note: note, filters: filters, grid: grid };
    renderFilterBar();
    header.hidden = !header.querySelector(".ek-title, .ek-desc");
    for (const wd of Array.isArray(dash.widgets) ? dash.widgets : []) {
      if (!wd || typeof wd.name !== "string") continue;
      const w = buildCard(wd, columns);
      widgets.set(w.name, w);
      grid.append(w.card);
    }
    setBusy(false);
  }

  function updateNote() {
    if (!dom.note) return;
    const show = retryQueue.size > 0 || Boolean(retryTimer);
    if (dom.note.hidden === show) {
      dom.note.hidden = !show;
      dom.header.hidden = !show && !dom.header.querySelector(".ek-title, .ek-desc");
    }
  }

  function reportNetwork() {
    if (networkReported) return;
    networkReported = true;
    post("error", { code: "network", message: "Connection lost; retrying" });
  }

  // ---------------------------------------------------------------- cards

  const CHART_KINDS = ["line", "area", "bar", "heatmap", "altair"];

  function buildCard(wd, columns) {
    const span = Math.max(1, Math.min(columns, Number(wd.span) || 1));
    const kind = String(wd.kind || "");
    const titleId = uid("t");
    const card = el("article", { class: "ek-card ek-span-" + span + " ek-kind-" + kind.replace(/[^a-z]/g, ""),
      "aria-labelledby": titleId, "data-state": "loading", "data-widget": wd.name });
    const title = el("h2", { class: "ek-card-title", id: titleId, text: wd.title || "" });
    const desc = el("p", { class: "ek-card-desc", text: wd.description || "", hidden: !wd.description });
    const content = el("div", { class: "ek-content" });
    const skeleton = el("div", { class: "ek-skeleton", "aria-hidden": "true" }, [
      el("div", { class: "ek-sk-bar ek-sk-w60" }), el("div", { class: "ek-sk-bar ek-sk-w90" }),
      el("div", { class: "ek-sk-block" }),
    ]);
    const loadingText = el("span", { class: "ek-sr", role: "status", text: "Loading " + (wd.title || "widget") });
    const empty = el("div", { class: "ek-empty" }, [
      svgEl("svg", { viewBox: "0 0 24 24", width: "22", height: "22", "aria-hidden": "true", focusable: "false" }, [
        svgEl("path", { d: "M4 19h16M7 16V11M12 16V7M17 16v-3", fill: "none", stroke: "currentColor", "stroke-width": "1.8",
          "stroke-linecap": "round" }),
      ]),
      el("p", { text: "No data for this selection" }),
    ]);
    const errorText = el("p", { class: "ek-error-title" });
    const errorHint = el("p", { class: "ek-error-hint" });
    const retry = el("button", { type: "button", class: "ek-btn", text: "Retry" });
    const error = el("div", { class: "ek-error", role: "alert" }, [errorText, errorHint, retry]);
    const body = el("div", { class: "ek-card-body" }, [skeleton, loadingText, content, empty, error]);
    card.append(el("header", { class: "ek-card-head" }, [title, desc]), body);
    const w = {
      name: wd.name, kind: kind, title: wd.title || "", card: card, titleEl: title, descEl: desc, content: content,
      errorText: errorText, errorHint: errorHint, fallback: null, data: null, page: 0, order: null, seq: 0,
      view: null, drawSeq: 0,
    };
    retry.addEventListener("click", () => loadWidget(w, false));
    return w;
  }

  function setCardState(w, state) {
    w.card.setAttribute("data-state", state);
    w.card.classList.remove("is-busy");
  }

  function showCardError(w, title, hint) {
    finalizeView(w);
    clear(w.content);
    if (w.fallback) {
      w.fallback.remove();
      w.fallback = null;
    }
    w.errorText.textContent = title;
    w.errorHint.textContent = hint || "";
    w.errorHint.hidden = !hint;
    setCardState(w, "error");
  }

  function finalizeView(w) {
    if (w.view) {
      try {
        w.view.finalize();
      } catch (_) {
        /* already gone */
      }
      w.view = null;
    }
  }

  // ---------------------------------------------------------------- data

  async function authedGet(url) {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!session) return null;
      const used = session;
      const res = await fetch(url, {
        headers: { Authorization: "Bearer " + used, Accept: "application/json" },
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
      if (res.status !== 401) return res;
      if (attempt === 1) {
        let problem = null;
        try {
          problem = await res.json();
        } catch (_) {
          problem = null;
        }
        showPageState(problemCode(problem) === "revoked" ? "revoked" : "expired");
        return null;
      }
      const ok = await recoverFrom401(used);
      if (!ok) return null;
    }
    return null;
  }

  function dataUrl(w) {
    let url = PREFIX + "/data/" + encodeURIComponent(w.name) + "?params=" + encodeURIComponent(JSON.stringify(filterState));
    if (w.kind === "table") {
      if (w.page > 0) url += "&page=" + w.page;
      if (w.order) url += "&order=" + encodeURIComponent(w.order[0] + ":" + w.order[1]);
    }
    return url;
  }

  function loadAll() {
    generation += 1;
    pendingLoaded = { gen: generation, names: new Set(widgets.keys()) };
    if (!widgets.size) {
      pendingLoaded = null;
      post("loaded", { widgets: 0 });
      return;
    }
    for (const w of widgets.values()) {
      w.page = 0;
      loadWidget(w, true);
    }
  }

  function settle(w, gen) {
    if (!pendingLoaded || pendingLoaded.gen !== gen) return;
    pendingLoaded.names.delete(w.name);
    if (pendingLoaded.names.size === 0) {
      pendingLoaded = null;
      postResize(true);
      post("loaded", { widgets: widgets.size });
      startLive();
    }
  }

  async function loadWidget(w, countsForLoaded) {
    const seq = ++w.seq;
    const gen = countsForLoaded === false ? -1 : generation;
    retryQueue.delete(w);
    if (w.data) w.card.classList.add("is-busy");
    else setCardState(w, "loading");
    let res;
    try {
      res = await authedGet(dataUrl(w));
    } catch (_) {
      if (seq !== w.seq || phase !== "ready") return;
      onNetworkTrouble(w);
      return;
    }
    if (seq !== w.seq || phase !== "ready" || !widgets.has(w.name)) return;
    if (!res) return; // the page shows expired / invalid
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (seq !== w.seq || phase !== "ready") return;
    onNetworkOk();
    if (!res.ok || !data) {
      const problemTitle = data && typeof data.title === "string" && data.title ? data.title : "";
      const title = (res.status === 400 || res.status === 403) && problemTitle ? problemTitle : "Couldn't load this widget";
      let hint = "";
      if (res.status === 403) hint = "This view isn't available with the current filters or access.";
      else if (res.status === 400) hint = "Try a different filter selection.";
      else hint = "Something went wrong. Try again in a moment.";
      w.data = null;
      w.etag = null; // not followed live until it loads again
      showCardError(w, title, hint);
    } else {
      w.data = data;
      w.etag = res.headers.get("etag") || null;
      if (data.page && w.kind === "table") {
        const limit = Number(data.page.limit) || 0;
        w.page = limit > 0 ? Math.floor((Number(data.page.offset) || 0) / limit) : 0;
        if (Array.isArray(data.page.order) && data.page.order.length === 2) w.order = data.page.order.slice();
      }
      await renderWidget(w, seq);
    }
    if (seq !== w.seq) return;
    postResize(true);
    settle(w, gen);
  }

  function onNetworkTrouble(w) {
    retryQueue.add(w);
    reportNetwork();
    if (!w.data) setCardState(w, "loading");
    else w.card.classList.remove("is-busy");
    if (!retryTimer) {
      retryTimer = setTimeout(runRetry, backoff(retryAttempt));
      retryAttempt += 1;
    }
    updateNote();
  }

  function onNetworkOk() {
    if (retryQueue.size === 0 && !retryTimer) {
      retryAttempt = 0;
      networkReported = false;
    }
    updateNote();
  }

  function runRetry() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    const list = Array.from(retryQueue);
    retryQueue.clear();
    updateNote();
    for (const w of list) loadWidget(w, pendingLoaded ? true : false);
  }

  function onOnline() {
    if (retryTimer || retryQueue.size) {
      retryAttempt = 0;
      runRetry();
    }
  }


  // ---------------------------------------------------------------- live

  // The server pushes a widget's new answer when its tenant's data changes
  // (GET /live, Server-Sent Events read with fetch so the session stays in a header).
  // Bursts are coalesced on the server; a dropped stream reconnects with
  // Last-Event-ID and the ETags the page holds, so it gets what it missed once.
  // When streaming fails three times in a row (a proxy that buffers, say) the page
  // polls /data with If-None-Match instead.

  const LIVE_OPEN_TIMEOUT_MS = 10000;
  let liveGen = 0;
  let liveCtrl = null;
  let liveLastId = null;
  let liveFailures = 0;
  let pollTimer = 0;

  function liveSettings() {
    const l = def && def.live;
    return l && typeof l === "object" && l.enabled ? l : null;
  }

  function stopLive() {
    liveGen += 1;
    if (liveCtrl) liveCtrl.abort();
    liveCtrl = null;
    clearTimeout(pollTimer);
    pollTimer = 0;
    root.removeAttribute("data-live");
  }

  function startLive() {
    stopLive();
    const l = liveSettings();
    if (!l || phase !== "ready") return;
    liveLastId = null;
    if (liveFailures >= 3 || typeof ReadableStream === "undefined" || typeof TextDecoder === "undefined") {
      schedulePoll(liveGen);
      return;
    }
    runLive(liveGen);
  }

  function liveShown(w) {
    // A table on another page or order than the first is refetched, not replaced.
    return !(w.kind === "table" && (w.page > 0 || w.order));
  }

  function liveUrl() {
    const have = {};
    for (const w of widgets.values()) if (w.etag && liveShown(w)) have[w.name] = w.etag;
    return PREFIX + "/live?params=" + encodeURIComponent(JSON.stringify(filterState)) + "&have=" + encodeURIComponent(JSON.stringify(have));
  }

  async function runLive(gen) {
    while (gen === liveGen && phase === "ready" && session) {
      const ctrl = new AbortController();
      liveCtrl = ctrl;
      let streamed = false;
      try {
        const used = session;
        const headers = { Authorization: "Bearer " + used, Accept: "text/event-stream" };
        if (liveLastId) headers["Last-Event-ID"] = liveLastId;
        // A browser holds at most six HTTP/1.1 connections per origin; a stream that
        // cannot get one waits forever. Give up after a while: three times, then poll.
        const waiting = setTimeout(() => ctrl.abort(), LIVE_OPEN_TIMEOUT_MS);
        let res;
        try {
          res = await fetch(liveUrl(), { headers: headers, signal: ctrl.signal, credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
        } finally {
          clearTimeout(waiting);
        }
        if (res.status === 401) {
          if (!(await recoverFrom401(used))) return;
          continue;
        }
        const type = res.headers.get("content-type") || "";
        if (!res.ok || !res.body || type.indexOf("text/event-stream") !== 0) throw new Error("no stream");
        liveFailures = 0;
        root.setAttribute("data-live", "streaming");
        streamed = true;
        await readEvents(res.body, gen);
      } catch (_) {
        if (gen !== liveGen) return;
      }
      if (gen !== liveGen) return;
      root.setAttribute("data-live", "reconnecting");
      if (!streamed) liveFailures += 1;
      if (liveFailures >= 3) {
        schedulePoll(gen);
        return;
      }
      await sleep(streamed ? 250 : 1000 * liveFailures);
    }
  }

  async function readEvents(stream, gen) {
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done || gen !== liveGen) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const ev = { id: null, event: "message", data: [] };
        for (const line of block.split("\n")) {
          if (!line || line[0] === ":") continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "id") ev.id = text;
          else if (field === "event") ev.event = text;
          else if (field === "data") ev.data.push(text);
        }
        if (ev.event === "expired") return; // reconnect with the refreshed session
        if (ev.event === "update") {
          if (ev.id !== null) liveLastId = ev.id;
          onLiveUpdate(ev.data.join("\n"));
        }
      }
    }
  }

  function onLiveUpdate(text) {
    let payload = null;
    try {
      payload = JSON.parse(text);
    } catch (_) {
      return;
    }
    const changed = payload && payload.widgets && typeof payload.widgets === "object" ? payload.widgets : {};
    for (const name of Object.keys(changed)) {
      const w = widgets.get(name);
      const item = changed[name];
      if (!w || !item || typeof item !== "object") continue;
      if (!liveShown(w)) {
        loadWidget(w, false);
        continue;
      }
      if (item.etag && item.etag === w.etag) continue;
      applyLive(w, item.data, item.etag || null);
    }
  }

  function rowKey(fields, row) {
    return JSON.stringify(fields.filter((f) => f.role !== "measure").map((f) => row[f.key]));
  }

  function applyLive(w, data, etag) {
    if (!data || typeof data !== "object" || pendingLoaded) return;
    const old = w.data;
    w.data = data;
    w.etag = etag;
    w.liveUpdates = (w.liveUpdates || 0) + 1;
    w.card.setAttribute("data-live-updates", String(w.liveUpdates));
    const kind = data.kind || w.kind;
    const view = w.view && w.view.view;
    const sameChart = view && typeof view.changeset === "function" && old && old.spec && JSON.stringify(old.spec) === JSON.stringify(data.spec);
    if (sameChart && (kind === "line" || kind === "area") && Array.isArray(data.rows) && data.rows.length) {
      // Extend the drawn line: remove rows that changed, insert new ones; no redraw.
      const fields = Array.isArray(data.fields) ? data.fields : [];
      const before = new Map((Array.isArray(old.rows) ? old.rows : []).map((r) => [rowKey(fields, r), JSON.stringify(r)]));
      const after = new Set();
      const gone = new Set(); // rows to take out: changed, or no longer in the answer
      const insert = [];
      for (const row of data.rows) {
        const key = rowKey(fields, row);
        after.add(key);
        const was = before.get(key);
        if (was === JSON.stringify(row)) continue;
        if (was !== undefined) gone.add(key);
        insert.push(deepCopy(row));
      }
      for (const key of before.keys()) if (!after.has(key)) gone.add(key);
      const change = view.changeset().remove((t) => gone.has(rowKey(fields, t))).insert(insert);
      view.change("rows", change).runAsync().then(() => updateFallback(w, fields, data.rows));
      post("live", { widget: w.name, rows: data.rows.length });
      return;
    }
    renderWidget(w, w.seq).then(() => postResize(false));
    post("live", { widget: w.name, rows: Array.isArray(data.rows) ? data.rows.length : 0 });
  }

  function schedulePoll(gen) {
    const l = liveSettings();
    if (!l || gen !== liveGen) return;
    root.setAttribute("data-live", "polling");
    pollTimer = setTimeout(() => pollOnce(gen), Math.max(1000, Number(l.poll_ms) || 5000));
  }

  async function pollOnce(gen) {
    for (const w of Array.from(widgets.values())) {
      if (gen !== liveGen || phase !== "ready" || !session) return;
      if (!liveShown(w) || !w.etag) continue;
      let res;
      try {
        res = await fetch(dataUrl(w), {
          headers: { Authorization: "Bearer " + session, Accept: "application/json", "If-None-Match": w.etag },
          credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer",
        });
      } catch (_) {
        break;
      }
      if (res.status === 200 && gen === liveGen) {
        try {
          applyLive(w, await res.json(), res.headers.get("etag"));
        } catch (_) {
          /* the next poll tries again */
        }
      }
    }
    schedulePoll(gen);
  }

  // ---------------------------------------------------------------- render

  async function renderWidget(w, seq) {
    const data = w.data;
    if (data.title && !w.title) {
      w.title = data.title;
      w.titleEl.textContent = data.title;
    }
    if (data.description && !w.descEl.textContent) {
      w.descEl.textContent = data.description;
      w.descEl.hidden = false;
    }
    const rows = Array.isArray(data.rows) ? data.rows : [];
    const fields = Array.isArray(data.fields) ? data.fields : [];
    const kind = data.kind || w.kind;
    const isEmpty = Boolean(data.empty) || (kind === "kpi" ? !data.kpi || data.kpi.value === null || data.kpi.value === undefined : rows.length === 0);
    if (isEmpty && !(kind === "table" && data.page && (Number(data.page.offset) || 0) > 0)) {
      finalizeView(w);
      clear(w.content);
      updateFallback(w, [], []);
      setCardState(w, "empty");
      return;
    }
    if (kind === "kpi") {
      finalizeView(w);
      renderKpi(w, data, fields);
      updateFallback(w, fields, rows);
      setCardState(w, "ready");
    } else if (kind === "table") {
      finalizeView(w);
      renderTable(w, data, fields, rows);
      setCardState(w, "ready");
    } else if (data.spec && typeof data.spec === "object") {
      updateFallback(w, fields, rows);
      await drawChart(w, seq);
    } else {
      finalizeView(w);
      clear(w.content);
      updateFallback(w, fields, rows, true);
      setCardState(w, "ready");
    }
  }

  function sizeSpec(spec) {
    const composite = ["facet", "hconcat", "vconcat", "concat", "repeat"].some((k) => k in spec);
    if (composite) return;
    if (spec.width === undefined) spec.width = "container";
    if (spec.height === undefined) spec.height = 240;
    if (spec.autosize === undefined) spec.autosize = { type: "fit", contains: "padding" };
  }

  async function drawChart(w, seq) {
    const data = w.data;
    const drawSeq = ++w.drawSeq;
    if (typeof window.vegaEmbed !== "function" || !window.vegaInterpreter) {
      showCardError(w, "Charts couldn't be loaded", "The data is in the table below.");
      updateFallback(w, data.fields || [], data.rows || [], true);
      return;
    }
    const spec = deepCopy(data.spec);
    spec.datasets = { rows: deepCopy(Array.isArray(data.rows) ? data.rows : []) };
    sizeSpec(spec);
    const mode = currentMode || effectiveMode();
    const chart = el("div", { class: "ek-chart", role: "img", "aria-label": w.title || data.title || "Chart" });
    const target = el("div", { class: "ek-vega" });
    chart.append(target);
    const old = w.view;
    w.view = null;
    clear(w.content);
    w.content.append(chart);
    setCardState(w, "ready");
    if (old) {
      try {
        old.finalize();
      } catch (_) {
        /* gone */
      }
    }
    const options = {
      config: vegaConfig(),
      actions: false,
      renderer: "svg",
      ast: true,
      expr: window.vegaInterpreter.expressionInterpreter,
      formatLocale: d3FormatLocale(),
      // CSP: vega-embed and vega-tooltip would otherwise inject <style> elements.
      defaultStyle: false,
      tooltip: { disableDefaultStyle: true, theme: mode === "dark" ? "dark" : "light" },
    };
    if (def && def.time_format_locale && typeof def.time_format_locale === "object") {
      options.timeFormatLocale = def.time_format_locale;
    }
    let result;
    try {
      result = await window.vegaEmbed(target, spec, options);
    } catch (err) {
      if (drawSeq !== w.drawSeq || seq !== w.seq) return;
      showCardError(w, "This chart couldn't be drawn", "The data is in the table below.");
      updateFallback(w, data.fields || [], data.rows || [], true);
      return;
    }
    if (drawSeq !== w.drawSeq || seq !== w.seq || !chart.isConnected) {
      result.finalize();
      return;
    }
    w.view = result;
    result.view.addEventListener("click", (event, item) => {
      post("click", { widget: w.name, datum: item && item.datum ? plainDatum(item.datum) : null });
    });
  }

  function redrawCharts() {
    for (const w of widgets.values()) {
      if (w.data && w.data.spec && CHART_KINDS.includes(w.data.kind || w.kind) && w.card.getAttribute("data-state") === "ready") {
        drawChart(w, w.seq).then(() => postResize(true));
      }
    }
  }

  function updateFallback(w, fields, rows, open) {
    if (w.kind === "table") return; // the table is its own data table
    if (!rows.length || !fields.length) {
      if (w.fallback) {
        w.fallback.remove();
        w.fallback = null;
      }
      return;
    }
    const details = el("details", { class: "ek-datatable" });
    if (open || (w.fallback && w.fallback.open)) details.open = true;
    details.append(el("summary", { text: "Data table" }));
    const table = buildTable(fields, rows.slice(0, MAX_TABLE_FALLBACK_ROWS), w.title || "Data", null);
    details.append(el("div", { class: "ek-scroll", tabindex: "0", role: "region", "aria-label": (w.title || "Data") + " table" }, [table]));
    if (rows.length > MAX_TABLE_FALLBACK_ROWS) {
      details.append(el("p", { class: "ek-muted ek-small", text: "Showing the first " + formatNumber(MAX_TABLE_FALLBACK_ROWS, "integer") + " of " + formatNumber(rows.length, "integer") + " rows." }));
    }
    if (w.fallback) w.fallback.replaceWith(details);
    else w.card.append(details);
    w.fallback = details;
  }

  /** A <table> of rows; `sort` = {order, onSort} makes header buttons that sort. */
  function buildTable(fields, rows, caption, sort) {
    const table = el("table", { class: "ek-table" });
    table.append(el("caption", { class: "ek-sr", text: caption }));
    const headRow = el("tr");
    for (const field of fields) {
      const th = el("th", { scope: "col", class: cellClass(field) });
      const label = String(field.title || field.key);
      if (sort) {
        const active = sort.order && sort.order[0] === field.key ? sort.order[1] : null;
        th.setAttribute("aria-sort", active === "asc" ? "ascending" : active === "desc" ? "descending" : "none");
        const indicator = el("span", { class: "ek-sort-ind" + (active ? " is-active" : ""), "aria-hidden": "true",
          text: active === "asc" ? "▲" : active === "desc" ? "▼" : "↕" });
        const btn = el("button", { type: "button", class: "ek-sort", "data-key": field.key }, [el("span", { text: label }), indicator]);
        btn.addEventListener("click", () => sort.onSort(field));
        th.append(btn);
      } else {
        th.textContent = label;
      }
      headRow.append(th);
    }
    table.append(el("thead", null, [headRow]));
    const tbody = el("tbody");
    for (const row of rows) {
      const tr = el("tr");
      for (const field of fields) {
        const value = row ? row[field.key] : null;
        tr.append(el("td", { class: cellClass(field), text: formatCell(field, value) }));
      }
      tbody.append(tr);
    }
    table.append(tbody);
    return table;
  }

  function renderTable(w, data, fields, rows) {
    const focusedKey = doc.activeElement && w.card.contains(doc.activeElement) && doc.activeElement.getAttribute("data-key");
    const focusedPager = doc.activeElement && w.card.contains(doc.activeElement) && doc.activeElement.getAttribute("data-pager");
    const order = data.page && Array.isArray(data.page.order) ? data.page.order : w.order;
    const table = buildTable(fields, rows, w.title || data.title || "Table", {
      order: order,
      onSort: (field) => {
        const current = w.order && w.order[0] === field.key ? w.order[1] : null;
        const dir = current ? (current === "asc" ? "desc" : "asc") : isNumericField(field) ? "desc" : "asc";
        w.order = [field.key, dir];
        w.page = 0;
        loadWidget(w, false);
      },
    });
    const scroll = el("div", { class: "ek-scroll ek-table-scroll", tabindex: "0", role: "region",
      "aria-label": (w.title || "Table") + " (scrolls sideways)" }, [table]);
    const parts = [scroll];
    if (data.page) {
      const offset = Number(data.page.offset) || 0;
      const limit = Number(data.page.limit) || rows.length || 1;
      const total = data.page.total === null || data.page.total === undefined ? null : Number(data.page.total);
      const first = rows.length ? offset + 1 : 0;
      const last = offset + rows.length;
      const hasNext = total !== null ? last < total : rows.length >= limit;
      const range = formatNumber(first, "integer") + "–" + formatNumber(last, "integer") +
        (total !== null ? " of " + formatNumber(total, "integer") : "");
      const prev = el("button", { type: "button", class: "ek-btn ek-btn-small", "data-pager": "prev", text: "Prev",
        "aria-label": "Previous page", disabled: offset <= 0 });
      const next = el("button", { type: "button", class: "ek-btn ek-btn-small", "data-pager": "next", text: "Next",
        "aria-label": "Next page", disabled: !hasNext });
      prev.addEventListener("click", () => {
        w.page = Math.max(0, w.page - 1);
        loadWidget(w, false);
      });
      next.addEventListener("click", () => {
        w.page += 1;
        loadWidget(w, false);
      });
      if (total !== null && total <= limit && offset === 0) {
        parts.push(el("div", { class: "ek-pager" }, [el("span", { class: "ek-range", text: range })]));
      } else {
        parts.push(el("div", { class: "ek-pager" }, [
          el("span", { class: "ek-range", role: "status", text: range }), el("span", { class: "ek-pager-btns" }, [prev, next]),
        ]));
      }
    }
    clear(w.content);
    append(w.content, parts);
    if (focusedKey) {
      const again = w.content.querySelector('button[data-key="' + cssEscape(focusedKey) + '"]');
      if (again) again.focus();
    } else if (focusedPager) {
      const again = w.content.querySelector('button[data-pager="' + focusedPager + '"]');
      if (again && !again.disabled) again.focus();
      else if (again) {
        const other = w.content.querySelector('button[data-pager]:not([disabled])');
        if (other) other.focus();
      }
    }
  }

  function cssEscape(s) {
    return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, "\\$&");
  }

  function renderKpi(w, data, fields) {
    const kpi = data.kpi;
    const field = fields.find((f) => f.key === kpi.key) || {};
    const format = kpi.format || field.format || null;
    const value = Number(kpi.value);
    const big = Math.abs(value) >= 1e6 && format !== "percent";
    const valueEl = el("div", { class: "ek-kpi-value", text: formatNumber(value, format, big) });
    if (big) valueEl.title = formatNumber(value, format);
    let delta = kpi.delta;
    const previous = kpi.previous;
    if ((delta === null || delta === undefined) && Number.isFinite(Number(previous)) && Number(previous) !== 0 && previous !== null) {
      delta = (value - Number(previous)) / Math.abs(Number(previous));
    }
    let deltaEl = null;
    if (kpi.compared === false) {
      // No date range (a stock level, say): nothing to compare with, so no delta line.
    } else if (previous === null || previous === undefined || delta === null || delta === undefined || !Number.isFinite(Number(delta))) {
      deltaEl = el("p", { class: "ek-kpi-delta is-none", text: "No previous data" });
    } else {
      const d = Number(delta);
      const dir = d > 0.0005 ? "up" : d < -0.0005 ? "down" : "flat";
      const pct = formatter("num", { style: "percent", maximumFractionDigits: 1, signDisplay: "exceptZero" }).format(d);
      const arrow = dir === "up" ? "▲" : dir === "down" ? "▼" : "●";
      const word = dir === "up" ? "Up" : dir === "down" ? "Down" : "No change";
      // Direction in text, not only colour: "▲ +12.3% vs previous period" (+ "Up" for screen readers).
      deltaEl = el("p", { class: "ek-kpi-delta is-" + dir }, [
        el("span", { class: "ek-delta-text" }, [
          el("span", { class: "ek-delta-badge" }, [el("span", { "aria-hidden": "true", text: arrow + "\u00a0" }),
            el("span", { class: "ek-sr", text: word + " " }), pct]),
          " vs previous period",
        ]),
      ]);
      deltaEl.title = "Previous period: " + formatNumber(previous, format);
    }
    const parts = deltaEl ? [valueEl, deltaEl] : [valueEl];
    if (kpi.range) parts.push(el("p", { class: "ek-kpi-range", text: capitalize(kpi.range) }));
    const spark = sparkline(Array.isArray(kpi.sparkline) ? kpi.sparkline : []);
    if (spark) parts.push(spark);
    clear(w.content);
    w.content.append(el("div", { class: "ek-kpi" }, parts));
  }

  function sparkline(points) {
    const pts = points
      .map((p) => ({ t: new Date(p && p.t).getTime(), v: p ? Number(p.v) : NaN }))
      .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v))
      .sort((a, b) => a.t - b.t);
    if (pts.length < 2) return null;
    const W = 100;
    const H = 32;
    const pad = 2;
    const t0 = pts[0].t;
    const t1 = pts[pts.length - 1].t;
    let lo = Math.min(...pts.map((p) => p.v));
    let hi = Math.max(...pts.map((p) => p.v));
    if (hi === lo) {
      hi += 1;
      lo -= 1;
    }
    const x = (t) => (t1 === t0 ? W / 2 : ((t - t0) / (t1 - t0)) * W);
    const y = (v) => pad + (1 - (v - lo) / (hi - lo)) * (H - 2 * pad);
    const line = pts.map((p, i) => (i ? "L" : "M") + x(p.t).toFixed(2) + " " + y(p.v).toFixed(2)).join(" ");
    const area = line + " L" + x(t1).toFixed(2) + " " + H + " L" + x(t0).toFixed(2) + " " + H + " Z";
    return svgEl("svg", { class: "ek-spark", viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none",
      "aria-hidden": "true", focusable: "false" }, [
      svgEl("path", { class: "ek-spark-area", d: area }),
      svgEl("path", { class: "ek-spark-line", d: line, fill: "none", "vector-effect": "non-scaling-stroke" }),
    ]);
  }

  // ---------------------------------------------------------------- size

  function postResize(force) {
    const rect = root.getBoundingClientRect();
    const height = Math.ceil(rect.bottom + window.scrollY + parseFloat(getComputedStyle(body).marginBottom || "0"));
    if (!force && height === lastHeight) return;
    lastHeight = height;
    post("resize", { height: height });
  }

  // ---------------------------------------------------------------- start

  function start() {
    window.addEventListener("message", onMessage);
    window.addEventListener("online", onOnline);
    doc.addEventListener("visibilitychange", onVisible);
    doc.addEventListener("pointerdown", onDocumentPointerDown, true);
    if (darkQuery) {
      if (darkQuery.addEventListener) darkQuery.addEventListener("change", onSystemScheme);
      else if (darkQuery.addListener) darkQuery.addListener(onSystemScheme);
    }
    applyTheme();
    if (window.ResizeObserver) {
      new ResizeObserver(() => postResize(false)).observe(root);
    } else {
      window.addEventListener("resize", () => postResize(false));
    }
    const token = takeTokenFromHash();
    post("ready", {});
    if (token) {
      connect(token);
      return;
    }
    if (!HAS_PARENT) {
      showPageState("invalid");
      return;
    }
    initialTokenTimer = setTimeout(() => {
      if (phase === "starting" && !def) showPageState("invalid");
    }, INITIAL_TOKEN_WAIT_MS);
    post("token-request", {});
  }

  start();
})();
