// The console's shell: sign-in, the header and navigation, the confirmation dialog, the live
// event stream, and the page in view. Every value is put in lit-html templates, which escape it.
import { ApiError, api, setCsrf } from './api.js';
import { auditPage } from './pages/audit.js';
import { bansPage } from './pages/bans.js';
import { ignorePage } from './pages/ignore.js';
import { livePage } from './pages/live.js';
import { overviewPage } from './pages/overview.js';
import { html, render } from './vendor/lit-html.js';

const PAGES = {
  overview: overviewPage,
  bans: bansPage,
  live: livePage,
  ignore: ignorePage,
  audit: auditPage,
};
const LABELS = {
  overview: 'Overview',
  bans: 'Bans',
  live: 'Live',
  ignore: 'Ignore list',
  audit: 'Audit log',
};

const root = document.getElementById('app');
const state = {
  session: null,
  checking: true,
  route: 'overview',
  signInError: null,
  signingIn: false,
  notice: null,
  dialog: null,
  connected: false,
};

// The live feed: recent events (newest first) and who listens to new ones.
const feed = {
  events: [],
  listeners: new Set(),
  on(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  },
};
let source = null;

const ctx = {
  api,
  feed,
  update: () => draw(),
  /** Server time now, from the offset measured at sign-in. */
  now: () => Date.now() + (state.session?.skewMs ?? 0),
  notify(message, kind = 'ok') {
    state.notice = { message, kind, at: Date.now() };
    draw();
  },
  /** Asks before acting: resolves true when the operator confirms. */
  confirm({ title, body, action }) {
    return new Promise((resolve) => {
      state.dialog = { title, body, action, resolve, opener: document.activeElement };
      draw();
      const dialog = document.getElementById('confirm');
      if (dialog && !dialog.open) dialog.showModal();
      dialog?.querySelector('[data-cancel]')?.focus();
    });
  },
};

function closeDialog(answer) {
  const current = state.dialog;
  if (!current) return;
  state.dialog = null;
  document.getElementById('confirm')?.close();
  draw();
  current.opener?.focus?.();
  current.resolve(answer);
}

function routeFromHash() {
  const name = location.hash.replace(/^#\/?/, '');
  return Object.hasOwn(PAGES, name) ? name : 'overview';
}

function enterRoute(next) {
  if (state.session === null) return;
  PAGES[state.route]?.leave?.();
  state.route = next;
  PAGES[next].enter(ctx);
  draw();
  document.getElementById('main')?.focus();
}

function openFeed() {
  source?.close();
  source = new EventSource(new URL('api/events', document.baseURI));
  source.addEventListener('open', () => {
    state.connected = true;
    draw();
  });
  source.addEventListener('error', () => {
    state.connected = false;
    draw();
  });
  source.addEventListener('feed', (message) => {
    const event = JSON.parse(message.data);
    if (feed.events.some((e) => e.id === event.id)) return;
    feed.events.unshift(event);
    if (feed.events.length > 300) feed.events.length = 300;
    for (const listener of feed.listeners) listener(event);
    draw();
  });
}

async function started(session) {
  setCsrf(session.csrf);
  state.session = { ...session, skewMs: session.nowMs - Date.now() };
  try {
    feed.events = (await api('GET', 'feed')).events;
  } catch {
    feed.events = [];
  }
  openFeed();
  state.route = routeFromHash();
  PAGES[state.route].enter(ctx);
  draw();
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  state.signingIn = true;
  state.signInError = null;
  draw();
  try {
    const session = await api('POST', 'session', {
      body: { token: form.token.value, name: form.name.value },
    });
    form.token.value = '';
    await started(session);
  } catch (error) {
    state.signInError =
      error instanceof ApiError && error.status === 429
        ? `Too many wrong tokens from this address: try again in ${error.retryAfter} s.`
        : error instanceof ApiError && error.status === 401
          ? 'That token is not right.'
          : error.message;
    draw();
    form.token.focus();
  } finally {
    state.signingIn = false;
    draw();
  }
}

async function signOut() {
  try {
    await api('DELETE', 'session');
  } catch {
    // the session may have ended already
  }
  source?.close();
  PAGES[state.route]?.leave?.();
  setCsrf(null);
  state.session = null;
  draw();
}

function signInView() {
  return html`<main class="sign-in" id="main" tabindex="-1">
    <h1>jailkeeper console</h1>
    <form @submit=${signIn} aria-describedby="sign-in-help">
      <p id="sign-in-help">Sign in with the admin token. It is sent once; the session is kept in a cookie scripts cannot read.</p>
      <label for="name">Your name, for the audit log</label>
      <input id="name" name="name" autocomplete="username" maxlength="40" placeholder="operator" />
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required />
      ${state.signInError ? html`<p class="error" role="alert">${state.signInError}</p>` : ''}
      <button type="submit" ?disabled=${state.signingIn}>Sign in</button>
    </form>
  </main>`;
}

function dialogView() {
  const d = state.dialog;
  return html`<dialog id="confirm" aria-labelledby="confirm-title" @cancel=${(e) => {
    e.preventDefault();
    closeDialog(false);
  }}>
    ${
      d
        ? html`<h2 id="confirm-title">${d.title}</h2>
          <p>${d.body}</p>
          <div class="actions">
            <button type="button" data-cancel @click=${() => closeDialog(false)}>Cancel</button>
            <button type="button" class="danger" data-confirm @click=${() => closeDialog(true)}>${d.action}</button>
          </div>`
        : ''
    }
  </dialog>`;
}

function shellView() {
  const page = PAGES[state.route];
  const notice = state.notice && Date.now() - state.notice.at < 8000 ? state.notice : null;
  return html`<a class="skip" href="#main" @click=${(e) => {
    e.preventDefault();
    document.getElementById('main')?.focus();
  }}>Skip to content</a>
    <header>
      <h1>jailkeeper</h1>
      <span class="where">${state.session.where}</span>
      <span class="live ${state.connected ? 'on' : 'off'}" title="live feed">${state.connected ? 'live' : 'reconnecting…'}</span>
      <span class="who">Signed in as ${state.session.who}</span>
      <button type="button" @click=${signOut}>Sign out</button>
    </header>
    <nav aria-label="Console pages">
      ${Object.keys(PAGES).map(
        (name) =>
          html`<a href="#/${name}" aria-current=${state.route === name ? 'page' : 'false'}>${LABELS[name]}</a>`,
      )}
    </nav>
    <div class="notice ${notice?.kind ?? ''}" role="status" aria-live="polite">${notice ? notice.message : ''}</div>
    <main id="main" tabindex="-1" aria-labelledby="page-title">
      <h2 id="page-title">${LABELS[state.route]}</h2>
      ${page.view(ctx)}
    </main>
    ${dialogView()}`;
}

let cleared = false;
function draw() {
  if (state.checking) return;
  if (!cleared) {
    root.replaceChildren(); // lit-html renders beside what is there: drop the loading line once
    cleared = true;
  }
  render(state.session === null ? signInView() : shellView(), root);
}

window.addEventListener('hashchange', () => enterRoute(routeFromHash()));

(async () => {
  try {
    const session = await api('GET', 'session');
    state.checking = false;
    await started(session);
  } catch {
    state.checking = false;
    draw();
  }
})();
