// Live: the feed of bans, unbans and refusals as they happen (server-sent events), and charts of
// failures, bans and refusals per minute and per jail over the last hour (uPlot).
import { clock, count, duration } from '../format.js';
import { html } from '../vendor/lit-html.js';
import uPlot from '../vendor/uPlot.esm.js';

const CHARTS = [
  ['failures', 'Failures per minute'],
  ['bans', 'Bans per minute'],
  ['refusals', 'Refused requests per minute'],
];
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];

const page = { timeline: null, error: null, timer: null, off: null, plots: new Map() };

function line(event) {
  switch (event.type) {
    case 'ban':
      return html`banned <code>${event.client}</code> in ${event.jail}
        ${event.endMs === null ? 'permanently' : html`for ${duration(event.endMs - event.atMs)}`}
        <span class="muted">(${event.reason}; ${event.origin}; ban #${event.banCount})</span>`;
    case 'unban':
      return html`unbanned <code>${event.client}</code> in ${event.jail}
        <span class="muted">(${event.cause === 'expired' ? 'expired' : 'lifted'}; ${event.origin})</span>`;
    case 'refusal':
      return event.client === undefined
        ? html`refused ${count(event.count)} more request(s) from ${count(event.clients)} other client(s)`
        : html`refused ${count(event.count)} request(s) from <code>${event.client}</code> (${event.jail})`;
    case 'wouldBan':
      return html`dry run: would ban <code>${event.client}</code> in ${event.jail}`;
    case 'store':
      return event.state === 'down'
        ? html`the ${event.store} store stopped answering`
        : html`the ${event.store} store answers again`;
    case 'audit':
      return html`${event.who} ${event.action} <code>${event.target}</code>
        <span class="muted">(${event.ok ? 'done' : 'failed'}${event.detail ? `: ${event.detail}` : ''})</span>`;
    default:
      return html`${event.type}`;
  }
}

async function loadTimeline(ctx) {
  try {
    page.timeline = await ctx.api('GET', 'timeline');
    page.error = null;
  } catch (error) {
    page.error = error.message;
  }
  ctx.update();
  queueMicrotask(drawCharts);
}

function drawCharts() {
  const t = page.timeline;
  if (!t) return;
  for (const [kind, title] of CHARTS) {
    const box = document.getElementById(`chart-${kind}`);
    if (!box || !t.charted.includes(kind)) continue;
    const jails = Object.keys(t.series[kind]).sort();
    const data = [t.minutes, ...jails.map((j) => t.series[kind][j])];
    const held = page.plots.get(kind);
    const shape = jails.join('\u0000');
    if (held && held.shape === shape && held.box === box) {
      held.plot.setData(data);
      continue;
    }
    held?.plot.destroy();
    const plot = new uPlot(
      {
        title,
        width: Math.max(320, box.clientWidth || 640),
        height: 200,
        scales: { x: { time: true } },
        series: [{}, ...jails.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2 }))],
        axes: [
          {
            space: 70,
            values: (_u, ticks) =>
              ticks.map((t) =>
                new Date(t * 1000).toLocaleTimeString([], {
                  hour: '2-digit',
                  minute: '2-digit',
                  hour12: false,
                }),
              ),
          },
          { size: 50 },
        ],
      },
      data,
      box,
    );
    page.plots.set(kind, { plot, shape, box });
  }
}

function totals(t, kind) {
  return Object.entries(t.series[kind])
    .map(([jail, counts]) => [jail, counts.reduce((a, b) => a + b, 0)])
    .filter(([, n]) => n > 0);
}

export const livePage = {
  enter(ctx) {
    void loadTimeline(ctx);
    page.timer = setInterval(() => loadTimeline(ctx), 10_000);
  },
  leave() {
    clearInterval(page.timer);
    for (const { plot } of page.plots.values()) plot.destroy();
    page.plots.clear();
  },
  view(ctx) {
    const t = page.timeline;
    const events = ctx.feed.events.slice(0, 100);
    return html`
      <section aria-labelledby="feed-title">
        <h3 id="feed-title">Feed</h3>
        <ol class="feed" role="log" aria-label="Live events, newest first">
          ${events.map(
            (e) => html`<li class="event ${e.type}" data-id=${e.id}>
              <time>${clock(e.atMs)}</time> <span class="kind">${e.type}</span> ${line(e)}</li>`,
          )}
        </ol>
        ${events.length === 0 ? html`<p class="muted">Nothing yet: events appear here as they happen.</p>` : ''}
      </section>
      <section aria-labelledby="charts-title">
        <h3 id="charts-title">The last hour</h3>
        ${page.error ? html`<p class="error" role="alert">${page.error}</p>` : ''}
        <div class="charts">
          ${CHARTS.map(
            ([kind, title]) => html`<figure>
              ${
                t && !t.charted.includes(kind)
                  ? html`<figcaption>${title}</figcaption>
                      <p class="muted">Not counted in this view: each app's own console has it.</p>`
                  : html`<div class="chart" id=${`chart-${kind}`} role="img" aria-label=${title}></div>
                      <figcaption class="sr-only">${title}</figcaption>`
              }
            </figure>`,
          )}
        </div>
        ${
          t
            ? html`<table class="totals">
                <caption>Totals over the last hour</caption>
                <thead><tr><th scope="col">Figure</th><th scope="col">Per jail</th></tr></thead>
                <tbody>${CHARTS.map(
                  ([kind, title]) =>
                    html`<tr><th scope="row">${title.replace(' per minute', '')}</th><td>${
                      t.charted.includes(kind)
                        ? totals(t, kind)
                            .map(([jail, n]) => `${jail}: ${count(n)}`)
                            .join(', ') || 'none'
                        : 'not counted here'
                    }</td></tr>`,
                )}</tbody>
              </table>`
            : ''
        }
      </section>`;
  },
};
