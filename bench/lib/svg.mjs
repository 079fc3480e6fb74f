// Minimal SVG line charts for docs/benchmarks.md (no dependencies).

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#7f7f7f'];

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceStep(range, target = 6) {
  const raw = range / target;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

function fmt(v) {
  if (Math.abs(v) >= 1e4) return `${Math.round(v / 1000)}k`;
  if (Math.abs(v) >= 100) return String(Math.round(v));
  return String(Math.round(v * 100) / 100);
}

/**
 * series: [{name, points: [[x, y], ...], color?, dash?}]
 * bands:  [{x0, x1, label, color?}]  shaded x ranges (e.g. the backup window)
 * marks:  [{x, label}]               vertical lines (e.g. the cut)
 */
export function lineChart(o) {
  const W = o.width ?? 760;
  const H = o.height ?? 300;
  const m = { l: 64, r: 16, t: 34, b: 46 };
  const pts = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = pts.map((p) => p[0]).concat((o.bands ?? []).flatMap((b) => [b.x0, b.x1]));
  const ys = pts.map((p) => p[1]).concat(o.yLines?.map((l) => l.y) ?? []);
  let x0 = o.xMin ?? Math.min(...xs, 0);
  let x1 = o.xMax ?? Math.max(...xs, 1);
  let y0 = o.yMin ?? 0;
  let y1 = o.yMax ?? Math.max(...ys, 1) * 1.08;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  const sx = (x) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${esc(o.title ?? '')}</text>`);
  for (const [i, b] of (o.bands ?? []).entries()) {
    const c = b.color ?? ['#ffd54f', '#90caf9', '#a5d6a7', '#ef9a9a'][i % 4];
    if (o.bandStyle === 'bars') {
      // one strip per band along the bottom of the plot, so windows of different lengths stay readable
      const y = H - m.b - 12 * (o.bands.length - i);
      out.push(`<rect x="${sx(b.x0)}" y="${y}" width="${Math.max(1, sx(b.x1) - sx(b.x0))}" height="10" fill="${c}" fill-opacity="0.8"/>`);
      if (b.label) out.push(`<text x="${sx(b.x1) + 4}" y="${y + 9}" fill="#333">${esc(b.label)}</text>`);
      continue;
    }
    out.push(`<rect x="${sx(b.x0)}" y="${m.t}" width="${Math.max(1, sx(b.x1) - sx(b.x0))}" height="${H - m.t - m.b}" fill="${c}" fill-opacity="0.35"/>`);
    if (b.label) out.push(`<text x="${sx(b.x0) + 3}" y="${m.t + 12 + 12 * i}" fill="#555">${esc(b.label)}</text>`);
  }
  // axes and grid
  const xstep = niceStep(x1 - x0);
  for (let x = Math.ceil(x0 / xstep) * xstep; x <= x1 + 1e-9; x += xstep) {
    out.push(`<line x1="${sx(x)}" y1="${m.t}" x2="${sx(x)}" y2="${H - m.b}" stroke="#eee"/>`);
    out.push(`<text x="${sx(x)}" y="${H - m.b + 14}" text-anchor="middle">${fmt(x)}</text>`);
  }
  const ystep = niceStep(y1 - y0, 5);
  for (let y = Math.ceil(y0 / ystep) * ystep; y <= y1 + 1e-9; y += ystep) {
    out.push(`<line x1="${m.l}" y1="${sy(y)}" x2="${W - m.r}" y2="${sy(y)}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 4}" y="${sy(y) + 4}" text-anchor="end">${fmt(y)}</text>`);
  }
  out.push(`<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#333"/>`);
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel ?? '')}</text>`);
  out.push(`<text transform="translate(14,${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel ?? '')}</text>`);
  for (const l of o.yLines ?? []) {
    out.push(`<line x1="${m.l}" y1="${sy(l.y)}" x2="${W - m.r}" y2="${sy(l.y)}" stroke="#999" stroke-dasharray="2,3"/>`);
    if (l.label) out.push(`<text x="${W - m.r - 2}" y="${sy(l.y) - 3}" text-anchor="end" fill="#666">${esc(l.label)}</text>`);
  }
  for (const mk of o.marks ?? []) {
    out.push(`<line x1="${sx(mk.x)}" y1="${m.t}" x2="${sx(mk.x)}" y2="${H - m.b}" stroke="#000" stroke-dasharray="4,2"/>`);
    if (mk.label) out.push(`<text x="${sx(mk.x) + 3}" y="${H - m.b - 4}" fill="#000">${esc(mk.label)}</text>`);
  }
  o.series.forEach((s, i) => {
    const c = s.color ?? PALETTE[i % PALETTE.length];
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (!p.length) return;
    const d = p.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(Math.min(y, y1)).toFixed(1)}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.6"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    if (s.dots) for (const [x, y] of p) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${c}"/>`);
    const ly = m.t + 4 + 14 * i;
    out.push(`<line x1="${W - m.r - 170}" y1="${ly}" x2="${W - m.r - 150}" y2="${ly}" stroke="${c}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${W - m.r - 146}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
