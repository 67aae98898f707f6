// The peer comparison as an SVG: per scenario, each configuration's requests per server
// CPU-second as a share of bare's (the median over rounds as a bar, its 95% interval as a
// whisker; jailkeeper in green, the no-op reference in blue, the peers in grey, a line at 100%),
// and the spray's heap over time.

const esc = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const TITLES = {
  clean: 'Clean traffic: requests per server CPU-second, % of bare',
  banned: 'Banned client flood: refusals per server CPU-second, % of bare serving it',
  mixed: 'Mixed traffic (10% attackers): requests per server CPU-second, % of bare',
  failures: 'Failure-heavy (every request a 401): requests per server CPU-second, % of bare',
};

export function chart(summary, spray, caption) {
  const width = 900;
  const labelWidth = 330;
  const barMax = width - labelWidth - 90;
  const rowH = 18;
  const parts = [];
  let y = 30;
  parts.push(
    `<text x="10" y="20" font-size="15" font-weight="bold">jailkeeper against the peers (${esc(caption)})</text>`,
  );
  for (const scenario of ['clean', 'banned', 'mixed', 'failures']) {
    const rows = summary.filter((s) => s.scenario === scenario && s.config !== 'bare');
    if (rows.length === 0) continue;
    y += 22;
    parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">${esc(TITLES[scenario])}</text>`);
    y += 8;
    const maxRatio = Math.max(
      1.2,
      ...rows.map((r) => (Number.isFinite(r.capacity?.hi) ? r.capacity.hi : r.ratio) || 0),
    );
    const scale = barMax / maxRatio;
    const top = y;
    for (const r of rows) {
      const ratio = Number.isFinite(r.ratio) ? r.ratio : 0;
      const mine = r.config.startsWith('jailkeeper');
      const fill = mine ? '#2e8b57' : r.config === 'noop' ? '#4a78b5' : '#9a9a9a';
      const lo = r.capacity?.lo;
      const hi = r.capacity?.hi;
      const whisker = Number.isFinite(lo) && Number.isFinite(hi);
      const labelX = labelWidth + (whisker ? Math.max(ratio, hi) : ratio) * scale + 4;
      parts.push(
        `<text x="${labelWidth - 8}" y="${y + 13}" font-size="11" text-anchor="end">${esc(`${r.framework}: ${r.label}`)}</text>`,
        `<rect x="${labelWidth}" y="${y + 3}" width="${(ratio * scale).toFixed(1)}" height="${rowH - 5}" fill="${fill}"/>`,
        ...(whisker
          ? [
              `<line x1="${(labelWidth + lo * scale).toFixed(1)}" y1="${y + 9.5}" x2="${(labelWidth + hi * scale).toFixed(1)}" y2="${y + 9.5}" stroke="#222"/>`,
            ]
          : []),
        `<text x="${labelX.toFixed(1)}" y="${y + 13}" font-size="11">${(ratio * 100).toFixed(1)}%</text>`,
      );
      y += rowH;
    }
    const x100 = labelWidth + scale;
    parts.push(
      `<line x1="${x100}" y1="${top}" x2="${x100}" y2="${y}" stroke="#c0392b" stroke-dasharray="4 3"/>`,
    );
  }
  // the spray: heap over addresses
  const points = spray.filter((s) => s.addresses !== undefined);
  if (points.length > 1) {
    y += 30;
    parts.push(
      `<text x="10" y="${y}" font-size="13" font-weight="bold">Memory store, 1,000,000 distinct failing addresses: heap after GC (MB)</text>`,
    );
    const h = 120;
    const top = y + 10;
    const maxX = points[points.length - 1].addresses;
    const maxY = Math.max(...points.map((p) => p.heapMB)) * 1.2;
    const px = (a) => labelWidth + (a / maxX) * barMax;
    const py = (m) => top + h - (m / maxY) * h;
    parts.push(
      `<line x1="${labelWidth}" y1="${top + h}" x2="${labelWidth + barMax}" y2="${top + h}" stroke="#555"/>`,
      `<line x1="${labelWidth}" y1="${top}" x2="${labelWidth}" y2="${top + h}" stroke="#555"/>`,
      `<polyline fill="none" stroke="#2e8b57" stroke-width="2" points="${points.map((p) => `${px(p.addresses).toFixed(1)},${py(p.heapMB).toFixed(1)}`).join(' ')}"/>`,
    );
    for (const p of points) {
      if (p.addresses % 200_000 !== 0) continue;
      parts.push(
        `<text x="${px(p.addresses)}" y="${top + h + 14}" font-size="10" text-anchor="middle">${p.addresses / 1000}k</text>`,
        `<text x="${px(p.addresses)}" y="${py(p.heapMB) - 5}" font-size="10" text-anchor="middle">${p.heapMB.toFixed(0)}</text>`,
      );
    }
    y = top + h + 24;
  }
  const height = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" role="img">\n<title>jailkeeper against the peers: requests per server CPU-second as a share of the bare framework per scenario, with 95% intervals, and the memory store's heap during a 1,000,000-address spray (${esc(caption)})</title>\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}
