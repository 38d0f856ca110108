/** Inline SVG bar charts: no script, no external fetch, readable without colour. */

export interface Bar {
  label: string;
  value: number;
  /** Text shown next to the bar, e.g. a formatted amount. */
  display: string;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Horizontal bars: categories with long names (decline category, path, attempt number). */
export function horizontalBars(id: string, title: string, bars: Bar[], max?: number): string {
  const rowH = 22;
  const labelW = 150;
  const barW = 300;
  const height = Math.max(1, bars.length) * rowH + 8;
  const top = max ?? Math.max(0, ...bars.map((b) => b.value));
  const rows = bars.map((b, i) => {
    const w = top > 0 ? Math.max(0, (b.value / top) * barW) : 0;
    const y = 4 + i * rowH;
    return (
      `<g class="bar" data-label="${escapeHtml(b.label)}" data-value="${b.value}">` +
      `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${escapeHtml(b.label)}</text>` +
      `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}"><title>${escapeHtml(b.label)}: ${escapeHtml(b.display)}</title></rect>` +
      `<text x="${labelW + w + 6}" y="${y + 15}">${escapeHtml(b.display)}</text></g>`
    );
  });
  const body = bars.length === 0 ? `<text x="10" y="18">no data</text>` : rows.join('');
  return figure(
    id,
    title,
    `<svg role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${labelW + barW + 120} ${height}" width="${labelW + barW + 120}" height="${height}">${body}</svg>`,
  );
}

/** Vertical bars over time; every bucket of the period is drawn so gaps show as gaps. */
export function columnChart(id: string, title: string, bars: Bar[]): string {
  const width = 620;
  const height = 180;
  const base = height - 24;
  const top = Math.max(0, ...bars.map((b) => b.value));
  const step = bars.length > 0 ? (width - 20) / bars.length : 0;
  const cols = bars.map((b, i) => {
    const h = top > 0 ? (b.value / top) * (base - 10) : 0;
    const x = 10 + i * step;
    return `<rect class="bar" data-label="${escapeHtml(b.label)}" data-value="${b.value}" x="${x.toFixed(1)}" y="${(base - h).toFixed(1)}" width="${Math.max(1, step - 2).toFixed(1)}" height="${h.toFixed(1)}"><title>${escapeHtml(b.label)}: ${escapeHtml(b.display)}</title></rect>`;
  });
  const first = bars[0]?.label ?? '';
  const last = bars[bars.length - 1]?.label ?? '';
  const axis =
    `<line x1="10" y1="${base}" x2="${width - 10}" y2="${base}" class="axis"/>` +
    `<text x="10" y="${height - 6}">${escapeHtml(first)}</text><text x="${width - 10}" y="${height - 6}" text-anchor="end">${escapeHtml(last)}</text>`;
  return figure(
    id,
    title,
    `<svg role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">${cols.join('')}${axis}</svg>`,
  );
}

function figure(id: string, title: string, svg: string): string {
  return `<figure class="chart" id="${escapeHtml(id)}"><figcaption>${escapeHtml(title)}</figcaption>${svg}</figure>`;
}

export interface TrendPoint {
  label: string;
  /** Bars: e.g. recovered revenue in minor units. */
  value: number;
  display: string;
  /** The line, 0..1; null where there is nothing to measure (no cases that month). */
  rate: number | null;
  rateDisplay: string;
}

/**
 * Bars (an amount) with a line over them (a rate, 0..100 % on its own scale), one column per
 * month; months without data stay on the axis so gaps show as gaps and the line breaks there.
 */
export function trendChart(id: string, title: string, points: TrendPoint[]): string {
  const width = 720;
  const height = 220;
  const left = 76;
  const right = 44;
  const base = height - 30;
  const plot = base - 12;
  const top = Math.max(0, ...points.map((p) => p.value));
  const step = points.length > 0 ? (width - left - right) / points.length : 0;
  const xOf = (i: number) => left + i * step;
  const bars = points.map((p, i) => {
    const bh = top > 0 ? (p.value / top) * plot : 0;
    return `<rect class="bar" data-label="${escapeHtml(p.label)}" data-value="${p.value}" x="${(xOf(i) + 3).toFixed(1)}" y="${(base - bh).toFixed(1)}" width="${Math.max(1, step - 6).toFixed(1)}" height="${bh.toFixed(1)}"><title>${escapeHtml(p.label)}: ${escapeHtml(p.display)} recovered, ${escapeHtml(p.rateDisplay)}</title></rect>`;
  });
  // One polyline per run of months that have a rate.
  const runs: string[][] = [[]];
  const dots: string[] = [];
  points.forEach((p, i) => {
    if (p.rate === null) {
      runs.push([]);
      return;
    }
    const x = (xOf(i) + step / 2).toFixed(1);
    const y = (base - p.rate * plot).toFixed(1);
    runs[runs.length - 1]!.push(`${x},${y}`);
    dots.push(
      `<circle class="rate" data-label="${escapeHtml(p.label)}" data-value="${p.rate}" cx="${x}" cy="${y}" r="3.5"><title>${escapeHtml(p.label)}: ${escapeHtml(p.rateDisplay)}</title></circle>`,
    );
  });
  const lines = runs
    .filter((r) => r.length > 1)
    .map((r) => `<polyline class="rate" points="${r.join(' ')}" fill="none" stroke="#d9480f" stroke-width="2"/>`);
  const labels = points.map(
    (p, i) =>
      `<text x="${(xOf(i) + step / 2).toFixed(1)}" y="${height - 12}" text-anchor="middle">${escapeHtml(p.label.slice(2))}</text>`,
  );
  const axes =
    `<line x1="${left}" y1="${base}" x2="${width - right}" y2="${base}" class="axis"/>` +
    `<text x="${left - 6}" y="${base - plot + 4}" text-anchor="end">${escapeHtml(points.find((p) => p.value === top)?.display ?? '')}</text>` +
    `<text x="${width - right + 6}" y="${base - plot + 4}" fill="#d9480f">100 %</text>` +
    `<text x="${width - right + 6}" y="${base}" fill="#d9480f">0 %</text>`;
  return figure(
    id,
    title,
    `<svg role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">${bars.join('')}${lines.join('')}${dots.join('')}${labels.join('')}${axes}</svg>`,
  );
}
