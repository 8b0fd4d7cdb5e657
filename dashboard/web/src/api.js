// The service's HTTP API as the dashboard uses it: JSON routes under /v1
// and the Server-Sent Events push stream (/v1/stream). The dashboard is
// served by the same listener, so every path is relative to its origin.
//
// The push stream is read with fetch rather than EventSource: fetch can send
// the bearer token the API may require (EventSource cannot set headers), and
// the reconnect policy is ours (exponential backoff with jitter, a
// watchdog for a stream that goes silent) instead of the browser's fixed
// retry.

let token = sessionStorage.getItem('orderflow.token') || '';

// setToken sets the bearer token sent with every request (kept for the
// browser tab's session only).
export function setToken(t) {
  token = t || '';
  if (token) sessionStorage.setItem('orderflow.token', token);
  else sessionStorage.removeItem('orderflow.token');
}

function headers(extra) {
  const h = Object.assign({ Accept: 'application/json' }, extra);
  if (token) h.Authorization = 'Bearer ' + token;
  return h;
}

// ApiError is an answer other than 2xx: status and the API's stable code.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code} (${status}): ${message}`);
    this.status = status;
    this.code = code;
  }
}

// getJSON fetches path (with query params q) and decodes the answer.
// timeoutMs bounds the whole request so a hung service shows as an error.
export async function getJSON(path, q, timeoutMs = 8000) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(q || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error(`GET ${path}: no answer in ${timeoutMs} ms`)), timeoutMs);
  try {
    const resp = await fetch(url, { headers: headers(), signal: ctl.signal, cache: 'no-store' });
    const text = await resp.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (e) {
      throw new ApiError(resp.status, 'bad_json', `GET ${path}: ${e.message}`);
    }
    if (!resp.ok) {
      const err = (body && body.error) || {};
      throw new ApiError(resp.status, err.code || 'http_' + resp.status, err.message || text.slice(0, 200));
    }
    return body;
  } finally {
    clearTimeout(timer);
  }
}

const sym = (s) => '/v1/symbols/' + encodeURIComponent(s);

// The routes the dashboard reads (see the API's OpenAPI document).
export const api = {
  status: () => getJSON('/v1/status'),
  symbols: () => getJSON('/v1/symbols'),
  metrics: (s) => getJSON(sym(s) + '/metrics'),
  bars: (s, limit, footprint) => getJSON(sym(s) + '/bars', { limit, footprint: footprint ? 'true' : '' }),
  trades: (s, limit) => getJSON(sym(s) + '/trades', { limit }),
  large: (s, limit) => getJSON(sym(s) + '/large-trades', { limit }),
  book: (s, depth) => getJSON(sym(s) + '/book', { depth }),
  signals: (s) => getJSON(sym(s) + '/signals'),
  bookHistory: (s, from) => getJSON(sym(s) + '/book/history', { from }),
  walls: (s) => getJSON(sym(s) + '/walls'),
};

// optional runs a request whose route a service may have turned off
// (409: book metrics or book history off): that answers null, anything
// else is an error as usual.
export async function optional(p) {
  try {
    return await p;
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) return null;
    throw e;
  }
}

// Backoff computes reconnect delays: base doubling up to max, each drawn
// uniformly from [d/2, d] (jitter), so many dashboards do not reconnect in
// step after the service restarts.
export class Backoff {
  constructor(base = 500, max = 15000, rand = Math.random) {
    this.base = base;
    this.max = max;
    this.rand = rand;
    this.attempt = 0;
  }
  next() {
    const d = Math.min(this.max, this.base * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    return Math.round(d / 2 + (this.rand() * d) / 2);
  }
  reset() {
    this.attempt = 0;
  }
}

// parseSSE feeds text chunks and calls onData with each event's data. It
// keeps the unfinished tail between chunks (an event can span reads).
export class SSEParser {
  constructor(onData) {
    this.onData = onData;
    this.buf = '';
    this.data = [];
  }
  push(chunk) {
    this.buf += chunk;
    let i;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      let line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (this.data.length) this.onData(this.data.join('\n'));
        this.data = [];
      } else if (line.startsWith('data:')) {
        this.data.push(line.slice(line[5] === ' ' ? 6 : 5));
      } // "event:", "id:", "retry:" and ":" comments (keep-alives) carry nothing we use
    }
  }
}

// PushStream keeps one push connection open for a symbol and reconnects
// with backoff until close(). Callbacks: onMessage(msg) for each decoded
// message, onState({state, attempt, retryIn, error}) on every change:
// "connecting", "live", "retrying", "closed".
export class PushStream {
  constructor({ symbol, topics, onMessage, onState, watchdogMs = 12000 }) {
    this.symbol = symbol;
    this.topics = topics;
    this.onMessage = onMessage;
    this.onState = onState;
    this.watchdogMs = watchdogMs;
    this.backoff = new Backoff();
    this.closed = false;
    this.ctl = null;
    this.timer = null;
    this.connects = 0;
    this.badMessages = 0;
    this.run();
  }

  setState(s) {
    this.state = s;
    this.onState(s);
  }

  async run() {
    while (!this.closed) {
      this.setState({ state: 'connecting', attempt: this.backoff.attempt });
      let err = null;
      try {
        await this.readOnce();
        err = new Error('the service closed the stream');
      } catch (e) {
        err = e;
      }
      if (this.closed) break;
      const wait = this.backoff.next();
      this.setState({ state: 'retrying', attempt: this.backoff.attempt, retryIn: wait, retryAt: Date.now() + wait, error: String(err && err.message ? err.message : err) });
      await new Promise((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, wait);
      });
    }
    this.setState({ state: 'closed' });
  }

  async readOnce() {
    this.ctl = new AbortController();
    const url = new URL('/v1/stream', location.origin);
    url.searchParams.set('symbols', this.symbol);
    url.searchParams.set('topics', this.topics.join(','));
    const resp = await fetch(url, { headers: headers({ Accept: 'text/event-stream' }), signal: this.ctl.signal, cache: 'no-store' });
    if (!resp.ok) {
      let code = 'http_' + resp.status;
      let message = resp.statusText;
      try {
        const e = (await resp.json()).error;
        code = e.code;
        message = e.message;
      } catch {
        // not a JSON error: keep the status line
      }
      throw new ApiError(resp.status, code, message);
    }
    this.connects++;
    this.backoff.reset();
    this.setState({ state: 'live', attempt: 0, since: Date.now() });
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SSEParser((data) => {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        this.badMessages++;
        return;
      }
      this.onMessage(msg);
    });
    // The watchdog: book tops arrive several times a second while the
    // service runs, so a silent stream is a dead one (a half-open TCP
    // connection after the service's host went away never errors).
    let last = Date.now();
    const dog = setInterval(() => {
      if (Date.now() - last > this.watchdogMs) this.ctl.abort(new Error(`no message for ${this.watchdogMs} ms`));
    }, 1000);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        last = Date.now();
        parser.push(value);
      }
    } finally {
      clearInterval(dog);
    }
  }

  // retryNow skips the current backoff wait.
  retryNow() {
    if (this.timer) clearTimeout(this.timer);
    if (this.wake) this.wake();
  }

  close() {
    this.closed = true;
    if (this.ctl) this.ctl.abort(new Error('closed'));
    this.retryNow();
  }
}
