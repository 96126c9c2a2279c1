// A terminal progress bar: redraws one line on a TTY, prints one line per finished epoch otherwise.

export interface ProgressOptions {
  total: number;
  label?: string;
  stream?: NodeJS.WriteStream;
  width?: number;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '--';
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

export class ProgressBar {
  // performance.now(), not Date.now(): a short epoch can end within the same millisecond it began,
  // and an elapsed time of 0 dropped the samples-per-second figure from its line.
  private readonly start = performance.now();
  private lastDraw = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stdout;
    this.tty = Boolean(this.stream.isTTY);
  }
  /** Updates the bar to `done` items with the given metrics (drawn at most every 100 ms on a TTY). */
  update(done: number, metrics: Record<string, number> = {}, samples?: number): void {
    const now = performance.now();
    if (!this.tty || (done < this.opts.total && now - this.lastDraw < 100)) return;
    this.lastDraw = now;
    this.stream.write(`\r${this.line(done, metrics, samples)}\x1b[K`);
  }
  /** Final line of the epoch (always printed). */
  finish(metrics: Record<string, number> = {}, samples?: number): void {
    const line = this.line(this.opts.total, metrics, samples);
    this.stream.write(this.tty ? `\r${line}\x1b[K\n` : `${line}\n`);
  }
  private line(done: number, metrics: Record<string, number>, samples?: number): string {
    const { total, label = '' } = this.opts;
    const width = this.opts.width ?? 24;
    const frac = total ? Math.min(1, done / total) : 1;
    const filled = Math.round(frac * width);
    const bar = '='.repeat(Math.max(0, filled - 1)) + (filled ? (frac < 1 ? '>' : '=') : '') + '.'.repeat(width - filled);
    const elapsed = (performance.now() - this.start) / 1000;
    const eta = frac > 0 ? (elapsed * (1 - frac)) / frac : Infinity;
    const m = Object.entries(metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(' - ');
    const rate = samples !== undefined && elapsed > 0 ? ` - ${Math.round(samples / elapsed)} samples/s` : '';
    const time = frac < 1 ? `ETA ${fmtTime(eta)}` : `${fmtTime(elapsed)}`;
    return `${label}${done}/${total} [${bar}] ${time}${m ? ` - ${m}` : ''}${rate}`;
  }
}
