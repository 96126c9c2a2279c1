// tsm.plot: training curves as a hand-written SVG (no dependencies).
//
//   tsm.plot.history(history, 'curves.svg');
//
// One panel per quantity (loss first, then each metric), the training series solid and the
// validation series (`val_<name>`) dashed, epochs on the x axis.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe } from './check';

/** What plot.history reads: a History, or anything with the same fields. */
export interface HistoryLike {
  /** Series by name (loss, val_loss, metrics...), one value per epoch. */
  history: Record<string, number[]>;
  /** The x values (epoch indices); used when its length matches the series, else 0, 1, 2... */
  epoch?: number[];
}

/** Options of plot.history and plot.historySvg. */
export interface PlotOptions {
  /** Title of the figure (default 'Training history'). */
  title?: string;
  /** Width of one panel in pixels (default 420). */
  panelWidth?: number;
  /** Height of one panel in pixels (default 260). */
  panelHeight?: number;
  /** Panels per row (default 2). */
  columns?: number;
  /** Only these quantities (default: all, except lr). */
  keys?: string[];
}

const TRAIN_COLOR = '#2b6cb0';
const VAL_COLOR = '#dd6b20';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Tick values covering [lo, hi]: about `count` round numbers (1, 2, 5 x 10^k steps). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1] < hi) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return Number(v.toPrecision(4)).toString();
}

function normalize(h: unknown): { series: Record<string, number[]>; epochs: number[] } {
  if (typeof h !== 'object' || h === null) throw new TypeError(`plot.history: expected a History (or {history: {...}}), got ${describe(h)}`);
  const obj = h as Partial<HistoryLike> & Record<string, unknown>;
  const series = (typeof obj.history === 'object' && obj.history !== null ? obj.history : obj) as Record<string, unknown>;
  const out: Record<string, number[]> = {};
  let n = 0;
  for (const [k, v] of Object.entries(series)) {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) continue;
    out[k] = v as number[];
    n = Math.max(n, v.length);
  }
  if (!Object.keys(out).length) throw new RangeError('plot.history: the history has no series of numbers');
  const epochs = Array.isArray(obj.epoch) && obj.epoch.length === n ? (obj.epoch as number[]) : Array.from({ length: n }, (_, i) => i);
  return { series: out, epochs };
}

/** The SVG text of the training curves. */
export function historySvg(h: HistoryLike | Record<string, number[]>, opts: PlotOptions = {}): string {
  const { series, epochs } = normalize(h);
  const bases = (opts.keys ?? Object.keys(series).filter((k) => !k.startsWith('val_') && k !== 'lr'))
    .filter((k) => series[k] || series[`val_${k}`]);
  // Validation-only series (val_x without x) get their own panel too.
  for (const k of Object.keys(series)) if (k.startsWith('val_') && !opts.keys && !bases.includes(k.slice(4))) bases.push(k.slice(4));
  bases.sort((a, b) => (a === 'loss' ? -1 : b === 'loss' ? 1 : 0));
  const pw = opts.panelWidth ?? 420, ph = opts.panelHeight ?? 260;
  const cols = Math.max(1, Math.min(opts.columns ?? 2, bases.length || 1));
  const rows = Math.max(1, Math.ceil(bases.length / cols));
  const top = 44, width = cols * pw, height = top + rows * ph + 8;
  const title = opts.title ?? 'Training history';
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<title>${esc(title)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="12" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`);
  out.push(`<line x1="${width - 190}" y1="16" x2="${width - 166}" y2="16" stroke="${TRAIN_COLOR}" stroke-width="2"/><text x="${width - 160}" y="20">training</text>`);
  out.push(`<line x1="${width - 100}" y1="16" x2="${width - 76}" y2="16" stroke="${VAL_COLOR}" stroke-width="2" stroke-dasharray="5,3"/><text x="${width - 70}" y="20">validation</text>`);
  bases.forEach((name, i) => {
    const ox = (i % cols) * pw, oy = top + Math.floor(i / cols) * ph;
    const left = ox + 58, right = ox + pw - 16, upper = oy + 24, lower = oy + ph - 40;
    const lines: { key: string; values: number[]; color: string; dash: boolean }[] = [];
    if (series[name]) lines.push({ key: name, values: series[name], color: TRAIN_COLOR, dash: false });
    if (series[`val_${name}`]) lines.push({ key: `val_${name}`, values: series[`val_${name}`], color: VAL_COLOR, dash: true });
    const finite = lines.flatMap((l) => l.values.filter((v) => Number.isFinite(v)));
    const lo = finite.length ? Math.min(...finite) : 0, hi = finite.length ? Math.max(...finite) : 1;
    const yt = niceTicks(lo, hi, 4);
    const y0 = yt[0], y1 = yt[yt.length - 1];
    const e0 = epochs[0] ?? 0, e1 = epochs[epochs.length - 1] ?? 0;
    const sx = (e: number) => (e1 > e0 ? left + ((e - e0) / (e1 - e0)) * (right - left) : (left + right) / 2);
    const sy = (v: number) => lower - ((v - y0) / (y1 - y0 || 1)) * (lower - upper);
    out.push(`<g class="panel" data-key="${esc(name)}">`);
    out.push(`<text x="${ox + pw / 2}" y="${oy + 14}" text-anchor="middle" font-size="13" font-weight="bold">${esc(name)}</text>`);
    for (const t of yt) {
      const y = sy(t).toFixed(1);
      out.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#e2e8f0"/>`);
      out.push(`<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#4a5568">${esc(fmt(t))}</text>`);
    }
    const xStep = Math.max(1, Math.ceil(epochs.length / 10));
    epochs.forEach((e, j) => {
      if (j % xStep !== 0 && j !== epochs.length - 1) return;
      const x = sx(e).toFixed(1);
      out.push(`<line x1="${x}" y1="${lower}" x2="${x}" y2="${lower + 4}" stroke="#4a5568"/>`);
      out.push(`<text x="${x}" y="${lower + 16}" text-anchor="middle" fill="#4a5568">${e + 1}</text>`);
    });
    out.push(`<line x1="${left}" y1="${lower}" x2="${right}" y2="${lower}" stroke="#4a5568"/>`);
    out.push(`<line x1="${left}" y1="${upper}" x2="${left}" y2="${lower}" stroke="#4a5568"/>`);
    out.push(`<text x="${(left + right) / 2}" y="${lower + 32}" text-anchor="middle" fill="#4a5568">epoch</text>`);
    for (const l of lines) {
      const pts: string[] = [];
      l.values.forEach((v, j) => {
        if (Number.isFinite(v) && j < epochs.length) pts.push(`${sx(epochs[j]).toFixed(1)},${sy(v).toFixed(1)}`);
      });
      const dash = l.dash ? ' stroke-dasharray="5,3"' : '';
      out.push(`<polyline class="series" data-key="${esc(l.key)}" fill="none" stroke="${l.color}" stroke-width="2"${dash} points="${pts.join(' ')}"/>`);
      for (const p of pts) {
        const [x, y] = p.split(',');
        out.push(`<circle cx="${x}" cy="${y}" r="2.5" fill="${l.color}"/>`);
      }
    }
    out.push('</g>');
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Writes the SVG of a History's loss and metrics per epoch to `file`; returns the SVG text. */
export function history(h: HistoryLike | Record<string, number[]>, file: string, opts: PlotOptions = {}): string {
  if (typeof file !== 'string' || !file) throw new TypeError(`plot.history: path must be a non-empty string, got ${describe(file)}`);
  const svg = historySvg(h, opts);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, svg);
  return svg;
}
