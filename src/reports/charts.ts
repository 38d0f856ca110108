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
