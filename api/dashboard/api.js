// The HTTP API client and the live alert stream.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

function detailOf(body, status) {
  const d = body && body.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((e) => e.msg || JSON.stringify(e)).join("; ");
  return `HTTP ${status}`;
}

/** Calls /api/v1 with the bearer token. A 401 anywhere means the token is gone: `onUnauthorized` runs. */
export class Api {
  constructor(token, onUnauthorized = () => {}) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, Accept: "application/json", ...extra };
  }

  url(path, params) {
    const u = new URL(`/api/v1${path}`, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null || v === "") continue;
      for (const item of Array.isArray(v) ? v : [v]) u.searchParams.append(k, item);
    }
    return u.pathname + u.search;
  }

  async request(method, path, { params, body } = {}) {
    const init = { method, headers: this.headers(), cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(this.url(path, params), init);
    let data = null;
    const text = await res.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { detail: text.slice(0, 200) };
      }
    }
    if (res.status === 401) this.onUnauthorized();
    if (!res.ok) throw new ApiError(res.status, detailOf(data, res.status));
    return data;
  }

  get(path, params) {
    return this.request("GET", path, { params });
  }

  post(path, body) {
    return this.request("POST", path, { body });
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });

/**
 * Reads a text/event-stream with fetch(), because EventSource cannot send an Authorization header.
 * Follows the WHATWG event-stream rules (fields, comments, id, retry) and reconnects with Last-Event-ID,
 * so the server replays whatever was missed while the connection was down.
 */
export class EventStream {
  constructor(url, { headers, onEvent, onState, onUnauthorized }) {
    this.url = url;
    this.baseHeaders = headers;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.onUnauthorized = onUnauthorized || (() => {});
    this.lastEventId = "";
    this.retryMs = 1000;
    this.idleTimeoutMs = 45000; // no bytes at all (not even a keep-alive comment) for this long: reconnect
    this.controller = null; // the current connection
    this.stopper = new AbortController(); // the whole stream, including the wait between connections
    this.stopped = false;
  }

  start() {
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    this.stopper.abort();
    this.controller?.abort();
  }

  async loop() {
    let failures = 0;
    let first = true;
    while (!this.stopped) {
      this.onState(first ? "connecting" : "reconnecting");
      first = false;
      try {
        const gotData = await this.connectOnce();
        if (gotData) failures = 0;
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof ApiError && err.status === 401) {
          this.onUnauthorized();
          return;
        }
      }
      if (this.stopped) return;
      failures += 1;
      this.onState("reconnecting");
      // Back off on repeated failures so a restarting server is not hammered; jitter spreads many screens.
      const backoff = Math.min(15000, this.retryMs * 2 ** Math.min(failures - 1, 4));
      await sleep(backoff * (0.8 + Math.random() * 0.4), this.stopper.signal);
    }
  }

  /** One connection; resolves when it ends. Returns whether any byte arrived. */
  async connectOnce() {
    this.controller = new AbortController();
    const headers = { ...this.baseHeaders, Accept: "text/event-stream" };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    const res = await fetch(this.url, { headers, signal: this.controller.signal, cache: "no-store" });
    if (!res.ok || !res.body) {
      res.body?.cancel().catch(() => {});
      throw new ApiError(res.status, `stream: HTTP ${res.status}`);
    }
    this.onState("live");
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new EventStreamParser((ev) => this.dispatch(ev), (ms) => { this.retryMs = ms; });
    let gotData = false;
    let idle = null;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => this.controller.abort(), this.idleTimeoutMs);
    };
    arm();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        gotData = true;
        arm();
        parser.push(value);
      }
    } catch (err) {
      if (this.stopped) return gotData;
      if (err.name !== "AbortError") throw err;
    } finally {
      clearTimeout(idle);
    }
    return gotData;
  }

  dispatch(ev) {
    if (ev.id !== undefined) this.lastEventId = ev.id;
    if (ev.data !== undefined) this.onEvent(ev);
  }
}

/** Incremental text/event-stream parser: push text chunks, get {id, event, data} per dispatched event. */
export class EventStreamParser {
  constructor(onEvent, onRetry) {
    this.onEvent = onEvent;
    this.onRetry = onRetry || (() => {});
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.data = [];
    this.event = "";
    this.id = undefined;
  }

  push(chunk) {
    this.buffer += chunk;
    const re = /\r\n|\r|\n/g;
    let start = 0;
    let m;
    while ((m = re.exec(this.buffer)) !== null) {
      // A CR at the very end may be the first half of a CRLF split across chunks: wait for more.
      if (m[0] === "\r" && m.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, m.index));
      start = m.index + m[0].length;
    }
    this.buffer = this.buffer.slice(start);
  }

  line(line) {
    if (line === "") {
      const ev = { event: this.event || "message", id: this.id };
      if (this.data.length) ev.data = this.data.join("\n");
      if (ev.data !== undefined || ev.id !== undefined) this.onEvent(ev);
      this.reset();
      return;
    }
    if (line.startsWith(":")) return; // a comment: keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.onRetry(Number(value));
  }
}
