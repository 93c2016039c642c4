/*! embedkit loader: <embedkit-dashboard> and <embedkit-widget>.
 *
 * The one script a host page includes. It shows an embedkit embed URL in an
 * iframe (origin isolation: the host page cannot read the embed's session or
 * restyle its charts, and embedkit's CSP applies inside) and talks to it with
 * postMessage, checking the origin and the source window of every message.
 *
 *   <script src="/analytics/static/loader.js" defer></script>
 *   <embedkit-dashboard src="/analytics/embed/sales#token=..." title="Sales"></embedkit-dashboard>
 *   <script type="module">
 *     await customElements.whenDefined("embedkit-dashboard"); // the loader is deferred
 *     const el = document.querySelector("embedkit-dashboard");
 *     el.tokenProvider = async () => (await fetch("/embed-url/sales")).text();
 *     el.addEventListener("embedkit:filterchange", (e) => console.log(e.detail.filters));
 *     el.setFilters({ period: "last 7 days" });
 *     el.setTheme({ mode: "dark" });
 *   </script>
 *
 * Attributes
 *   src      the embed URL, `{prefix}/embed/{resource}#token=...` (relative URLs resolve
 *            against document.baseURI). Changing it loads a new iframe.
 *   title    the iframe's accessible title (default "Analytics").
 *
 * Properties and methods
 *   el.tokenProvider   async () => string: a fresh embed URL (its `#token=` is used) or a
 *                      bare embed token. Called when the embed asks for one (its session is
 *                      about to expire, or its link has). Without one, or when it throws,
 *                      the element dispatches embedkit:error and the embed shows its
 *                      "expired" state once its session runs out.
 *   el.setFilters(obj) set filter values by name ({period: "last 7 days", category: ["Books"]});
 *                      unknown names, locked filters and invalid values are ignored by the embed.
 *   el.setTheme(obj)   {mode: "light" | "dark" | "auto", primary: "#rrggbb"}.
 *   el.filters         the last filter state the embed reported (a copy), {} before that.
 *   el.iframe          the iframe element (or null).
 *   Calls made before the embed is ready are queued and sent once it is.
 *
 * Events (CustomEvent, on the element; they bubble)
 *   embedkit:ready         the embed page started
 *   embedkit:loaded        detail.widgets: every widget finished loading (first load and each
 *                          filter change)
 *   embedkit:update        detail.widget, detail.rows: a widget redrew with new data pushed
 *                          by the server (live updates), without a reload
 *   embedkit:filterchange  detail.filters: the viewer or setFilters() changed the filters
 *   embedkit:click         detail.widget, detail.datum: a chart mark was clicked
 *   embedkit:resize        detail.height: the iframe was resized to fit its content
 *   embedkit:error         detail.code ("expired" | "invalid" | "revoked" | "network" | "token"
 *                          | "src"), detail.message
 *
 * Styling: the element is display:block (a zero-specificity default the page can
 * override); the iframe is 100% wide, borderless, and as tall as its content.
 */
(function () {
  "use strict";

  if (typeof window === "undefined" || !window.customElements || !window.HTMLElement) return;
  if (window.customElements.get("embedkit-dashboard")) return; // loaded twice

  const NAMES = ["embedkit-dashboard", "embedkit-widget"];
  const SANDBOX = "allow-scripts allow-same-origin allow-popups allow-downloads";
  const INITIAL_HEIGHT = 360;
  const MAX_HEIGHT = 100000;
  const TOKEN_CHARS = /^[A-Za-z0-9._~+/=-]+$/;

  function addDefaultStyles() {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(":where(" + NAMES.join(", ") + ") { display: block; }");
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    } catch (_) {
      /* older browsers: the page styles the element itself */
    }
  }

  /** A token from a provider's answer: a full embed URL (its #token=) or a bare token. */
  function extractToken(value) {
    if (typeof value !== "string") return null;
    const text = value.trim();
    if (!text) return null;
    if (TOKEN_CHARS.test(text) && !text.includes("/")) return text;
    let url;
    try {
      url = new URL(text, document.baseURI);
    } catch (_) {
      return null;
    }
    const token = new URLSearchParams(url.hash.slice(1)).get("token");
    return token && TOKEN_CHARS.test(token) ? token : null;
  }

  function plainCopy(value) {
    try {
      return JSON.parse(JSON.stringify(value));
    } catch (_) {
      return undefined;
    }
  }

  class EmbedkitElement extends HTMLElement {
    static get observedAttributes() {
      return ["src", "title"];
    }

    constructor() {
      super();
      this._iframe = null;
      this._origin = null;
      this._ready = false;
      this._queue = [];
      this._filters = {};
      this._tokenProvider = null;
      this._tokenBusy = false;
      this._initialToken = null;
      this._scrubbed = null;
      this._listening = false;
      this._height = -1;
      this._onMessage = this._onMessage.bind(this);
    }

    connectedCallback() {
      // A tokenProvider set before this script upgraded the element shadows the accessor.
      if (Object.prototype.hasOwnProperty.call(this, "tokenProvider")) {
        const provider = this.tokenProvider;
        delete this.tokenProvider;
        this.tokenProvider = provider;
      }
      if (!this._listening) {
        window.addEventListener("message", this._onMessage);
        this._listening = true;
      }
      if (!this._iframe || !this.contains(this._iframe)) this._load();
    }

    disconnectedCallback() {
      if (this._listening) {
        window.removeEventListener("message", this._onMessage);
        this._listening = false;
      }
      this._ready = false;
      this._tokenBusy = false;
      // A moved iframe reloads anyway: build a fresh one when connected again.
      if (this._iframe) {
        this._iframe.remove();
        this._iframe = null;
      }
    }

    attributeChangedCallback(name, oldValue, newValue) {
      // The loader's own rewrite of src (the token taken out) must not load again; the
      // browser may deliver that change only after _load() has returned.
      if (oldValue === newValue || (name === "src" && newValue === this._scrubbed)) return;
      if (name === "title") {
        if (this._iframe) this._iframe.setAttribute("title", newValue || "Analytics");
        return;
      }
      if (this.isConnected) this._load();
    }

    get tokenProvider() {
      return this._tokenProvider;
    }

    set tokenProvider(fn) {
      this._tokenProvider = typeof fn === "function" ? fn : null;
    }

    get filters() {
      return plainCopy(this._filters) || {};
    }

    get iframe() {
      return this._iframe;
    }

    setFilters(filters) {
      if (!filters || typeof filters !== "object" || Array.isArray(filters)) {
        throw new TypeError("setFilters() takes an object of filter name -> value");
      }
      const copy = plainCopy(filters);
      if (copy) this._send({ type: "set-filters", filters: copy });
    }

    setTheme(theme) {
      if (!theme || typeof theme !== "object" || Array.isArray(theme)) {
        throw new TypeError("setTheme() takes an object such as {mode: 'dark', primary: '#2563eb'}");
      }
      const copy = {};
      if (typeof theme.mode === "string") copy.mode = theme.mode;
      if (typeof theme.primary === "string") copy.primary = theme.primary;
      this._send({ type: "set-theme", theme: copy });
    }

    // ------------------------------------------------------------ internals

    _load() {
      if (this._iframe) {
        this._iframe.remove();
        this._iframe = null;
      }
      this._ready = false;
      this._origin = null;
      this._filters = {};
      this._height = -1;
      this._tokenBusy = false;
      const src = this.getAttribute("src");
      if (!src) return;
      let url;
      try {
        url = new URL(src, document.baseURI);
      } catch (_) {
        this._emit("error", { code: "src", message: "The src attribute is not a valid URL" });
        return;
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") {
        this._emit("error", { code: "src", message: "The src attribute must be an http(s) URL" });
        return;
      }
      this._origin = url.origin;
      this._initialToken = extractToken(url.href);
      const hadFragment = Boolean(url.hash);
      url.hash = "";
      const iframe = document.createElement("iframe");
      iframe.setAttribute("title", this.getAttribute("title") || "Analytics");
      iframe.setAttribute("loading", "eager");
      iframe.setAttribute("referrerpolicy", "no-referrer");
      iframe.setAttribute("sandbox", SANDBOX);
      iframe.style.setProperty("display", "block");
      iframe.style.setProperty("width", "100%");
      iframe.style.setProperty("border", "0");
      iframe.style.setProperty("height", INITIAL_HEIGHT + "px");
      iframe.style.setProperty("color-scheme", "normal");
      iframe.src = url.href;
      this._iframe = iframe;
      this.appendChild(iframe);
      if (hadFragment) {
        // Take the token out of the DOM: scripts of the host page (analytics, session
        // replay) must not be able to read it back from the attribute or the iframe.
        // Last, once this._iframe is set: setAttribute runs pending element callbacks
        // (connectedCallback during an upgrade) before it returns.
        this._scrubbed = url.href;
        this.setAttribute("src", url.href);
      }
    }

    _emit(name, detail) {
      this.dispatchEvent(new CustomEvent("embedkit:" + name, { detail: detail || {}, bubbles: true, composed: true }));
    }

    _send(message) {
      const msg = Object.assign({}, message, { embedkit: 1 });
      if (!this._ready) {
        // Keep only the latest of each kind until the embed says it is ready.
        this._queue = this._queue.filter((m) => m.type !== msg.type || msg.type === "token");
        this._queue.push(msg);
        return;
      }
      this._post(msg);
    }

    _post(msg) {
      const iframe = this._iframe;
      if (!iframe || !iframe.contentWindow || !this._origin) return;
      iframe.contentWindow.postMessage(msg, this._origin);
    }

    _onMessage(event) {
      const iframe = this._iframe;
      if (!iframe || event.source !== iframe.contentWindow || event.origin !== this._origin) return;
      const msg = event.data;
      if (!msg || typeof msg !== "object" || msg.embedkit !== 1 || typeof msg.type !== "string") return;
      switch (msg.type) {
        case "ready": {
          this._ready = true;
          const queued = this._queue;
          this._queue = [];
          for (const m of queued) this._post(m);
          this._emit("ready", {});
          break;
        }
        case "resize": {
          const height = Number(msg.height);
          if (!Number.isFinite(height) || height < 0) return;
          const px = Math.min(MAX_HEIGHT, Math.ceil(height));
          if (px === this._height) return;
          this._height = px;
          iframe.style.setProperty("height", px + "px");
          this._emit("resize", { height: px });
          break;
        }
        case "loaded":
          this._emit("loaded", { widgets: Number(msg.widgets) || 0 });
          break;
        case "filterchange": {
          const filters = msg.filters && typeof msg.filters === "object" ? plainCopy(msg.filters) : undefined;
          if (!filters) return;
          this._filters = filters;
          this._emit("filterchange", { filters: plainCopy(filters) });
          break;
        }
        case "live":
          this._emit("update", {
            widget: typeof msg.widget === "string" ? msg.widget : null,
            rows: Number(msg.rows) || 0,
          });
          break;
        case "click":
          this._emit("click", {
            widget: typeof msg.widget === "string" ? msg.widget : null,
            datum: msg.datum && typeof msg.datum === "object" ? plainCopy(msg.datum) : null,
          });
          break;
        case "error":
          this._emit("error", {
            code: typeof msg.code === "string" ? msg.code : "error",
            message: typeof msg.message === "string" ? msg.message : "",
          });
          break;
        case "token-request":
          this._answerTokenRequest();
          break;
        default:
          break;
      }
    }

    async _answerTokenRequest() {
      if (this._tokenBusy) return;
      if (this._initialToken) {
        // The token of the src attribute, handed over once by message: it never sits in
        // the iframe's URL, and no longer in the page's DOM either.
        const token = this._initialToken;
        this._initialToken = null;
        this._post({ embedkit: 1, type: "token", token: token });
        return;
      }
      const provider = this._tokenProvider;
      if (!provider) {
        this._emit("error", { code: "token", message: "The embed needs a fresh token and no tokenProvider is set" });
        return;
      }
      const iframe = this._iframe;
      this._tokenBusy = true;
      try {
        const token = extractToken(await provider());
        if (!token) throw new Error("tokenProvider returned neither an embed URL with #token= nor a token");
        if (this._iframe !== iframe || !this.isConnected) return;
        this._post({ embedkit: 1, type: "token", token: token });
      } catch (err) {
        if (this._iframe === iframe) {
          this._emit("error", { code: "token", message: String((err && err.message) || err) });
        }
      } finally {
        if (this._iframe === iframe) this._tokenBusy = false;
      }
    }
  }

  // customElements.define() needs one constructor per name.
  class EmbedkitWidgetElement extends EmbedkitElement {}

  addDefaultStyles();
  window.customElements.define("embedkit-dashboard", EmbedkitElement);
  window.customElements.define("embedkit-widget", EmbedkitWidgetElement);
})();
