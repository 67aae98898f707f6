// Audit log: who did what, from where, and what came of it (newest first).
import { dateTime, debounce } from '../format.js';
import { html } from '../vendor/lit-html.js';

const page = { entries: null, error: null, off: null };

async function load(ctx) {
  try {
    page.entries = (await ctx.api('GET', 'audit')).entries;
    page.error = null;
  } catch (error) {
    page.error = error.message;
  }
  ctx.update();
}

export const auditPage = {
  enter(ctx) {
    void load(ctx);
    const soon = debounce(() => load(ctx), 300);
    page.off = ctx.feed.on((event) => {
      if (event.type === 'audit') soon();
    });
  },
  leave() {
    page.off?.();
  },
  view() {
    if (page.error) return html`<p class="error" role="alert">${page.error}</p>`;
    if (page.entries === null) return html`<p class="muted">Loading…</p>`;
    return html`<p class="muted">Kept in memory (the last 1,000) and written to the app's log, one line each.</p>
      <div class="scroll">
        <table class="audit">
          <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">From</th>
            <th scope="col">Action</th><th scope="col">On</th><th scope="col">Result</th></tr></thead>
          <tbody>${page.entries.map(
            (e) => html`<tr class=${e.ok ? '' : 'failed'}>
              <td>${dateTime(e.atMs)}</td>
              <td>${e.who} <span class="muted">(${e.via})</span></td>
              <td><code>${e.from}</code></td>
              <td>${e.action}</td>
              <td><code>${e.target}</code></td>
              <td>${e.ok ? 'done' : 'failed'}${e.detail ? html`: <span class="muted">${e.detail}</span>` : ''}</td>
            </tr>`,
          )}</tbody>
        </table>
      </div>
      ${page.entries.length === 0 ? html`<p class="muted">No action yet.</p>` : ''}`;
  },
};
