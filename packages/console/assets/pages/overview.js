// Overview: each jail's thresholds and counts, and the store's health.
import { count, dateTime, debounce, duration } from '../format.js';
import { jailTag } from '../jail-color.js';
import { html } from '../vendor/lit-html.js';

const page = { data: null, error: null, timer: null, off: null };

async function load(ctx) {
  try {
    page.data = await ctx.api('GET', 'overview');
    page.error = null;
  } catch (error) {
    page.error = error.message;
  }
  ctx.update();
}

/** The counted columns of the jails table: the field, its heading. */
const FIGURES = [
  ['currentlyFailed', 'Failing now'],
  ['currentlyBanned', 'Banned now'],
  ['totalFailed', 'Failures (total)'],
  ['totalBanned', 'Bans (total)'],
  ['refused', 'Refused'],
  ['held', 'Slots held now'],
  ['wouldBan', 'Would ban (dry run)'],
];

function threshold(jail) {
  if (!jail.known) return html`<span class="muted">unknown (give --config)</span>`;
  if (jail.maxRetry === null) return html`<span class="muted">by hand</span>`;
  return `${jail.maxRetry} in ${duration(jail.findTimeMs)}`;
}

function banTime(jail) {
  if (!jail.known || jail.maxRetry === null) return html`<span class="muted">–</span>`;
  const base = jail.banTimeMs === null ? 'permanent' : duration(jail.banTimeMs);
  return jail.maxBanTimeMs ? `${base}, up to ${duration(jail.maxBanTimeMs)}` : base;
}

function healthView(health) {
  const state = health.refusing ? 'refusing' : health.degraded ? 'degraded' : 'ok';
  const label = {
    ok: 'Answering',
    degraded: 'Degraded: working from what this process knows',
    refusing: 'Down, and refusing every client (onStoreError: deny)',
  }[state];
  return html`<section aria-labelledby="health-title">
    <h3 id="health-title">Store</h3>
    <p><span class="pill ${state}">${label}</span> <span class="muted">${health.store} store;
      ${count(health.errors)} error(s) since the console started</span></p>
    ${
      health.lastError
        ? html`<p class="muted">Last error ${dateTime(health.lastError.atMs)} in ${health.lastError.operation}:
            <code>${health.lastError.message}</code></p>`
        : ''
    }
    ${
      health.outages.length === 0
        ? html`<p class="muted">No outage seen.</p>`
        : html`<table>
            <caption>Outages, newest first</caption>
            <thead><tr><th scope="col">From</th><th scope="col">To</th><th scope="col">Lasted</th></tr></thead>
            <tbody>
              ${health.outages.map(
                (o) => html`<tr>
                  <td>${dateTime(o.startMs)}</td>
                  <td>${o.endMs === null ? 'ongoing' : dateTime(o.endMs)}</td>
                  <td>${duration((o.endMs ?? Date.now()) - o.startMs)}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

export const overviewPage = {
  enter(ctx) {
    void load(ctx);
    page.timer = setInterval(() => load(ctx), 5000);
    const soon = debounce(() => load(ctx), 400);
    page.off = ctx.feed.on((event) => {
      if (event.type === 'ban' || event.type === 'unban' || event.type === 'store') soon();
    });
  },
  leave() {
    clearInterval(page.timer);
    page.off?.();
  },
  view() {
    if (page.error && !page.data) return html`<p class="error" role="alert">${page.error}</p>`;
    if (!page.data) return html`<p class="muted">Loading…</p>`;
    const { jails, health, ignore, lockedOut, where } = page.data;
    // A figure no jail has here (the fleet view: totals, refusals and dry runs are each app's) is
    // left out, with one line saying where it is, rather than shown as a column of dashes.
    const columns = FIGURES.filter(([key]) => jails.some((j) => j[key] !== null));
    const missing = FIGURES.filter(([key]) => !columns.some(([k]) => k === key));
    return html`
      ${page.error ? html`<p class="error" role="alert">${page.error}</p>` : ''}
      <p class="muted">Figures from ${where}. ${
        missing.length > 0
          ? 'Totals, refused requests and dry-run counts are kept by each app: its own console shows them.'
          : '"Refused" and "would ban" are this process\'s own counts.'
      }</p>
      <section aria-labelledby="jails-title">
        <h3 id="jails-title">Jails</h3>
        <div class="scroll">
          <table class="jails">
            <thead>
              <tr>
                <th scope="col">Jail</th>
                <th scope="col">Threshold</th>
                <th scope="col">Ban time</th>
                ${columns.map(([, label]) => html`<th scope="col" class="num">${label}</th>`)}
              </tr>
            </thead>
            <tbody>
              ${jails.map(
                (jail) => html`<tr>
                  <th scope="row">${jailTag(jail.name)} ${jail.dryRun ? html`<span class="pill dry">dry run</span>` : ''}
                    ${jail.scope === 'jail' ? html`<span class="pill">jail scope</span>` : ''}</th>
                  <td>${threshold(jail)}</td>
                  <td>${banTime(jail)}</td>
                  ${columns.map(([key]) =>
                    key === 'wouldBan'
                      ? html`<td class="num">${jail.dryRun || jail.wouldBan ? count(jail.wouldBan) : '–'}</td>`
                      : html`<td class="num">${count(jail[key])}</td>`,
                  )}
                </tr>`,
              )}
            </tbody>
          </table>
        </div>
      </section>
      ${healthView(health)}
      <section aria-labelledby="gate-title">
        <h3 id="gate-title">Access</h3>
        <p class="muted">${ignore.length} ignore entr${ignore.length === 1 ? 'y' : 'ies'} in force.
          ${
            lockedOut.length === 0
              ? 'No caller is locked out for wrong tokens.'
              : html`Locked out for wrong tokens: ${lockedOut.map(
                  (l, i) => html`${i > 0 ? ', ' : ''}<code>${l.key}</code> until ${dateTime(l.untilMs)}`,
                )}`
          }</p>
      </section>`;
  },
};
