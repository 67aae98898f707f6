// Bans: the active bans, paged, sorted and searched on the server (fast at a million bans), with
// time left counting down, and the actions unban and ban for a duration, each confirmed.
import { count, dateTime, debounce, duration } from '../format.js';
import { jailTag } from '../jail-color.js';
import { html } from '../vendor/lit-html.js';

const COLUMNS = [
  ['client', 'Address'],
  ['jail', 'Jail'],
  [null, 'Reason'],
  [null, 'Origin'],
  ['banCount', 'Ban #'],
  ['startMs', 'Since'],
  ['endMs', 'Time left'],
];
const DURATIONS = ['10m', '1h', '6h', '1d', '1w', 'permanent'];

const page = {
  q: '',
  jail: '',
  sort: 'endMs',
  order: 'asc',
  offset: 0,
  limit: 50,
  data: null,
  error: null,
  version: 0,
  lastMs: null,
  seq: 0,
  jails: [],
  tick: null,
  off: null,
  retry: null,
  busy: false,
};

async function load(ctx) {
  const seq = ++page.seq;
  const started = performance.now();
  try {
    const data = await ctx.api('GET', 'bans', {
      query: {
        q: page.q.trim(),
        jail: page.jail,
        sort: page.sort,
        order: page.order,
        offset: page.offset,
        limit: page.limit,
      },
    });
    if (seq !== page.seq) return; // an answer to an older question
    page.data = data;
    page.error = null;
    clearTimeout(page.retry);
    if (data.stale) page.retry = setTimeout(() => load(ctx), 600);
  } catch (error) {
    if (seq !== page.seq) return;
    page.error = error.message;
  }
  page.version++;
  ctx.update();
  requestAnimationFrame(() => {
    if (seq !== page.seq) return;
    page.lastMs = Math.round(performance.now() - started);
    ctx.update();
  });
}

function sortBy(ctx, key) {
  if (page.sort === key) page.order = page.order === 'asc' ? 'desc' : 'asc';
  else {
    page.sort = key;
    page.order = 'asc';
  }
  page.offset = 0;
  void load(ctx);
}

function move(ctx, delta) {
  const total = page.data?.total ?? 0;
  const next = page.offset + delta * page.limit;
  if (next < 0 || next >= total) return;
  page.offset = next;
  void load(ctx);
}

const searchSoon = debounce((ctx) => {
  page.offset = 0;
  void load(ctx);
}, 250);

async function unban(ctx, ban) {
  const yes = await ctx.confirm({
    title: 'Lift this ban?',
    body: `${ban.client} will be served again at once (jail ${ban.jail}).`,
    action: 'Unban',
  });
  if (!yes) return;
  try {
    const { lifted } = await ctx.api('DELETE', 'bans', { query: { address: ban.client, jail: ban.jail } });
    ctx.notify(
      lifted.length > 0 ? `Unbanned ${ban.client} in ${ban.jail}.` : `${ban.client} was no longer banned.`,
    );
  } catch (error) {
    ctx.notify(`Unban failed: ${error.message}`, 'error');
  }
  void load(ctx);
}

async function ban(ctx, event) {
  event.preventDefault();
  const form = event.target;
  const address = form.address.value.trim();
  const jail = form.jail.value;
  const time = form.duration.value;
  const reason = form.reason.value.trim();
  const yes = await ctx.confirm({
    title: 'Ban this address?',
    body: `${address} will be refused ${time === 'permanent' ? 'permanently' : `for ${time}`} (jail ${jail}).`,
    action: 'Ban',
  });
  if (!yes) return;
  page.busy = true;
  ctx.update();
  try {
    const { ban: made } = await ctx.api('POST', 'bans', {
      body: { address, jail, duration: time, reason: reason || undefined },
    });
    ctx.notify(`Banned ${made.client} in ${made.jail}.`);
    form.address.value = '';
    form.reason.value = '';
  } catch (error) {
    ctx.notify(`Ban failed: ${error.message}`, 'error');
  } finally {
    page.busy = false;
  }
  void load(ctx);
}

function timeLeft(ctx, row) {
  if (row.endMs === null) return 'permanent';
  return duration(row.endMs - ctx.now());
}

function headerCell(ctx, [key, label]) {
  if (key === null) return html`<th scope="col">${label}</th>`;
  const sorted = page.sort === key;
  const aria = sorted ? (page.order === 'asc' ? 'ascending' : 'descending') : 'none';
  return html`<th scope="col" aria-sort=${aria}>
    <button type="button" class="sort" data-sort=${key} @click=${() => sortBy(ctx, key)}>
      ${label}<span aria-hidden="true">${sorted ? (page.order === 'asc' ? ' ▲' : ' ▼') : ''}</span>
    </button>
  </th>`;
}

function banForm(ctx) {
  return html`<form class="ban-form" @submit=${(e) => ban(ctx, e)} aria-labelledby="ban-title">
    <h3 id="ban-title">Ban an address</h3>
    <label>Address <input name="address" required maxlength="100" placeholder="203.0.113.7" /></label>
    <label>Jail
      <select name="jail">${page.jails.map((j) => html`<option ?selected=${j === 'manual'}>${j}</option>`)}</select>
    </label>
    <label>For
      <select name="duration">${DURATIONS.map((d) => html`<option ?selected=${d === '1h'}>${d}</option>`)}</select>
    </label>
    <label>Reason <input name="reason" maxlength="200" placeholder="manual ban" /></label>
    <button type="submit" ?disabled=${page.busy}>Ban…</button>
  </form>`;
}

export const bansPage = {
  enter(ctx) {
    void load(ctx);
    ctx.api('GET', 'jails').then(
      ({ jails }) => {
        page.jails = jails;
        ctx.update();
      },
      () => {},
    );
    page.tick = setInterval(() => ctx.update(), 1000);
    const soon = debounce(() => load(ctx), 150);
    page.off = ctx.feed.on((event) => {
      if (event.type === 'ban' || event.type === 'unban') soon();
    });
  },
  leave() {
    clearInterval(page.tick);
    clearTimeout(page.retry);
    page.off?.();
  },
  view(ctx) {
    const data = page.data;
    const total = data?.total ?? 0;
    const first = total === 0 ? 0 : page.offset + 1;
    const last = Math.min(total, page.offset + page.limit);
    return html`
      <form role="search" class="search" @submit=${(e) => {
        e.preventDefault();
        page.q = e.target.querySelector('#ban-search').value;
        page.offset = 0;
        void load(ctx);
      }}>
        <label for="ban-search">Address or network</label>
        <input id="ban-search" type="search" .value=${page.q} placeholder="203.0.113.7, 203.0.113.0/24, 2001:db8::/32"
          maxlength="100" @input=${(e) => {
            page.q = e.target.value;
            searchSoon(ctx);
          }} />
        <label for="ban-jail">Jail</label>
        <select id="ban-jail" @change=${(e) => {
          page.jail = e.target.value;
          page.offset = 0;
          void load(ctx);
        }}>
          <option value="" ?selected=${page.jail === ''}>every jail</option>
          ${page.jails.map((j) => html`<option ?selected=${page.jail === j}>${j}</option>`)}
        </select>
        <button type="submit">Search</button>
      </form>
      ${page.error ? html`<p class="error" role="alert">${page.error}</p>` : ''}
      <div class="pager">
        <span id="range" aria-live="polite">${
          data
            ? `${count(first)}–${count(last)} of ${count(total)}${total !== data.all ? ` (of ${count(data.all)} active)` : ''}`
            : 'Loading…'
        }</span>
        <button type="button" id="prev" @click=${() => move(ctx, -1)} ?disabled=${page.offset === 0}>Previous</button>
        <button type="button" id="next" @click=${() => move(ctx, 1)} ?disabled=${last >= total}>Next</button>
        <label>Per page
          <select @change=${(e) => {
            page.limit = Number(e.target.value);
            page.offset = 0;
            void load(ctx);
          }}>${[25, 50, 100, 200].map((n) => html`<option ?selected=${page.limit === n}>${n}</option>`)}</select>
        </label>
        <span class="muted timing">${page.lastMs === null ? '' : `answered and drawn in ${page.lastMs} ms`}</span>
      </div>
      <div class="scroll">
        <table class="bans" data-version=${page.version} aria-describedby="range">
          <thead><tr>${COLUMNS.map((c) => headerCell(ctx, c))}<th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            ${(data?.bans ?? []).map(
              (row) => html`<tr>
                <td><code class="client">${row.client}</code></td>
                <td>${jailTag(row.jail)}${row.scope === 'jail' ? html` <span class="pill">jail scope</span>` : ''}</td>
                <td class="reason">${row.reason}</td>
                <td>${row.origin ?? html`<span class="muted">–</span>`}</td>
                <td class="num">${row.banCount}</td>
                <td class="since" title=${dateTime(row.startMs)}>${duration(ctx.now() - row.startMs)} ago</td>
                <td class="num countdown">${timeLeft(ctx, row)}</td>
                <td><button type="button" class="small" aria-label=${`Unban ${row.client} in ${row.jail}`}
                  @click=${() => unban(ctx, row)}>Unban</button></td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>
      ${data && total === 0 ? html`<p class="muted">No ban matches.</p>` : ''}
      ${banForm(ctx)}`;
  },
};
