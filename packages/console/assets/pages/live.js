// Live: the feed of bans, unbans and refusals as they happen (server-sent events), and charts of
// failures, bans, refusals and unbans per minute and per jail over the last hour (uPlot), the
// current minute included: it is drawn whole from its first event, and taken again a moment after
// each event of the feed, so the charts and their totals follow the feed.
import { clock, count, debounce, duration } from '../format.js';
import { jailColor, jailTag } from '../jail-color.js';
import { html } from '../vendor/lit-html.js';
import uPlot from '../vendor/uPlot.esm.js';

/** Each chart: its figure, its title, and what will appear in it (its empty state). */
const CHARTS = [
  [
    'failures',
    'Failures per minute',
    'No failures in the last hour.',
    'Each response a jail counts as a failure (a 401 on a login path, a 404 from a scanner) appears here within seconds, per jail.',
  ],
  [
    'bans',
    'Bans per minute',
    'No bans in the last hour.',
    'Each ban a jail makes, or one made by hand, appears here as soon as the feed shows it, per jail.',
  ],
  [
    'refusals',
    'Refused requests per minute',
    'No refused requests in the last hour.',
    'Each request refused because its client is banned appears here within seconds, per jail.',
  ],
  [
    'unbans',
    'Unbans per minute',
    'No unbans in the last hour.',
    'Each ban that ends (it expired, or was lifted) appears here as soon as the feed shows it, per jail.',
  ],
];
/** Chart again this long after an event of the feed: several events in a burst make one request. */
const AFTER_EVENT_MS = 300;
const POLL_MS = 5000;

const page = { timeline: null, error: null, timer: null, off: null, plots: new Map() };

function line(event) {
  switch (event.type) {
    case 'ban':
      return html`banned <code>${event.client}</code> in ${jailTag(event.jail)}
        ${event.endMs === null ? 'permanently' : html`for ${duration(event.endMs - event.atMs)}`}
        <span class="muted">(${event.reason}; ${event.origin}; ban #${event.banCount})</span>`;
    case 'unban':
      return html`unbanned <code>${event.client}</code> in ${jailTag(event.jail)}
        <span class="muted">(${event.cause === 'expired' ? 'expired' : 'lifted'}; ${event.origin})</span>`;
    case 'restored':
      return html`${count(event.count)} active ban(s) restored from the store
        <span class="muted">(${Object.entries(event.jails)
          .map(([jail, n]) => `${jail}: ${count(n)}`)
          .join(', ')}; made before this process started, so not counted as bans here)</span>`;
    case 'refusal':
      return event.client === undefined
        ? html`refused ${count(event.count)} more request(s) from ${count(event.clients)} other client(s)`
        : html`refused ${count(event.count)} request(s) from <code>${event.client}</code> (${jailTag(event.jail)})`;
    case 'wouldBan':
      return html`dry run: would ban <code>${event.client}</code> in ${jailTag(event.jail)}`;
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

/** The jails with a count in the hour, by name; their counts summed over the hour. */
function active(t, kind) {
  return Object.entries(t.series[kind])
    .map(([jail, counts]) => [jail, counts.reduce((a, b) => a + b, 0), counts.at(-1) ?? 0])
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function drawCharts() {
  const t = page.timeline;
  if (!t) return;
  for (const [kind, title] of CHARTS) {
    const box = document.getElementById(`chart-${kind}`);
    const held = page.plots.get(kind);
    if (!box) {
      held?.plot.destroy();
      page.plots.delete(kind);
      continue;
    }
    const jails = active(t, kind).map(([jail]) => jail);
    // Each minute is a step from its start to the next; the current one is drawn to its end, so a
    // ban in its first second is as wide as any other minute's.
    // The jails are stacked, so that two jails with the same count in one minute are both seen,
    // and the top line is the minute's total.
    const end = (t.minutes.at(-1) ?? 0) + 60;
    let below = t.minutes.map(() => 0);
    const stacked = jails.map((j) => {
      below = below.map((n, i) => n + (t.series[kind][j][i] ?? 0));
      return [...below, below.at(-1) ?? 0];
    });
    const data = [[...t.minutes, end], ...stacked];
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
        // The legend names the jails in their colours; the figures are in the totals below.
        legend: { live: false },
        cursor: { show: false },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        // Each jail's band is filled from the jail below it.
        bands: jails.slice(1).map((_, i) => ({ series: [i + 2, i + 1] })),
        series: [
          {},
          ...jails.map((label) => ({
            label,
            stroke: jailColor(label),
            fill: `${jailColor(label)}40`,
            width: 2,
            paths: uPlot.paths.stepped({ align: 1 }),
            points: { show: false },
          })),
        ],
        axes: [
          {
            space: 70,
            values: (_u, ticks) =>
              ticks.map((s) =>
                new Date(s * 1000).toLocaleTimeString([], {
                  hour: '2-digit',
                  minute: '2-digit',
                  hour12: false,
                }),
              ),
          },
          // Counts are whole: ticks at whole steps only.
          { size: 50, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 100_000] },
        ],
      },
      data,
      box,
    );
    page.plots.set(kind, { plot, shape, box });
  }
}

function chartView(t, kind, title, emptyTitle, emptyText) {
  if (t && active(t, kind).length === 0) {
    return html`<figure>
      <figcaption class="chart-title">${title}</figcaption>
      <div class="empty-chart" data-empty=${kind}><strong>${emptyTitle}</strong>${emptyText}</div>
    </figure>`;
  }
  return html`<figure>
    <div class="chart" id=${`chart-${kind}`} role="img" aria-label=${title}></div>
    <figcaption class="sr-only">${title}</figcaption>
  </figure>`;
}

function totalsView(t) {
  const charted = CHARTS.filter(([kind]) => t.charted.includes(kind));
  const cell = (rows, pick) =>
    rows.length === 0
      ? html`<span class="muted">none</span>`
      : rows
          .filter((row) => pick(row) > 0)
          .map((row, i) => html`${i > 0 ? ', ' : ''}${jailTag(row[0])}: ${count(pick(row))}`);
  return html`<table class="totals">
    <caption>Totals per jail (the current minute is counted as it goes)</caption>
    <thead><tr><th scope="col">Figure</th><th scope="col">This minute</th><th scope="col">The last hour</th></tr></thead>
    <tbody>${charted.map(([kind, title]) => {
      const rows = active(t, kind);
      const now = rows.filter(([, , current]) => current > 0);
      return html`<tr data-kind=${kind}>
        <th scope="row">${title.replace(' per minute', '')}</th>
        <td class="now">${now.length === 0 ? html`<span class="muted">none</span>` : cell(now, (r) => r[2])}</td>
        <td class="hour">${cell(rows, (r) => r[1])}</td>
      </tr>`;
    })}</tbody>
  </table>`;
}

export const livePage = {
  enter(ctx) {
    void loadTimeline(ctx);
    page.timer = setInterval(() => loadTimeline(ctx), POLL_MS);
    const soon = debounce(() => loadTimeline(ctx), AFTER_EVENT_MS);
    page.off = ctx.feed.on((event) => {
      if (event.type === 'ban' || event.type === 'unban' || event.type === 'refusal') soon();
    });
  },
  leave() {
    clearInterval(page.timer);
    page.off?.();
    for (const { plot } of page.plots.values()) plot.destroy();
    page.plots.clear();
  },
  view(ctx) {
    const t = page.timeline;
    const events = ctx.feed.events.slice(0, 100);
    const charted = CHARTS.filter(([kind]) => !t || t.charted.includes(kind));
    return html`
      <section aria-labelledby="feed-title">
        <h3 id="feed-title">Feed</h3>
        <ol class="feed" role="log" aria-label="Live events, newest first" ?hidden=${events.length === 0}>
          ${events.map(
            (e) => html`<li class="event ${e.type}" data-id=${e.id}>
              <time>${clock(e.atMs)}</time> <span class="kind">${e.type}</span> ${line(e)}</li>`,
          )}
        </ol>
        ${
          events.length === 0
            ? html`<p class="muted">Nothing yet: bans, unbans and refused requests appear here as they happen.</p>`
            : ''
        }
      </section>
      <section aria-labelledby="charts-title">
        <h3 id="charts-title">The last hour</h3>
        ${page.error ? html`<p class="error" role="alert">${page.error}</p>` : ''}
        ${
          t && charted.length < CHARTS.length
            ? html`<p class="muted">Failures and refused requests are counted by each app: its own console
                (the admin API's console option) charts them.</p>`
            : ''
        }
        <div class="charts">${charted.map(([kind, title, emptyTitle, emptyText]) =>
          chartView(t, kind, title, emptyTitle, emptyText),
        )}</div>
        ${t ? totalsView(t) : ''}
      </section>`;
  },
};
