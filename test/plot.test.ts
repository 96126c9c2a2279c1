// tsm.plot.history: a well-formed SVG with one panel per quantity and the train / validation series.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as plot from '../lib/plot';
import { History } from '../lib/training';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsm-plot-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A small XML well-formedness check: balanced tags, quoted attributes, one root, known entities. */
function parseXml(xml: string): { root: string; elements: { name: string; attrs: Record<string, string> }[] } {
  const stack: string[] = [];
  const elements: { name: string; attrs: Record<string, string> }[] = [];
  let root = '';
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let pos = 0;
  while (pos < xml.length) {
    re.lastIndex = pos;
    const m = re.exec(xml);
    if (!m) throw new Error(`malformed XML at offset ${pos}: ${JSON.stringify(xml.slice(pos, pos + 40))}`);
    pos = re.lastIndex;
    if (m[5] !== undefined) {
      if (/&(?!(amp|lt|gt|quot|apos);)/.test(m[5])) throw new Error(`bad entity in text ${JSON.stringify(m[5])}`);
      if (!stack.length && m[5].trim()) throw new Error('text outside the root element');
      continue;
    }
    const [, close, name, attrText, selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
      continue;
    }
    if (!stack.length) {
      if (root) throw new Error('more than one root element');
      root = name;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]} on <${name}>`);
      attrs[a[1]] = a[2];
    }
    elements.push({ name, attrs });
    if (!selfClose) stack.push(name);
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, elements };
}

function makeHistory(): History {
  const h = new History();
  const logs = [
    { loss: 1.2, accuracy: 0.5, val_loss: 1.3, val_accuracy: 0.45, lr: 0.01 },
    { loss: 0.8, accuracy: 0.7, val_loss: 0.9, val_accuracy: 0.66, lr: 0.01 },
    { loss: 0.5, accuracy: 0.85, val_loss: 0.7, val_accuracy: 0.8, lr: 0.005 },
    { loss: 0.4, accuracy: 0.9, val_loss: 0.72, val_accuracy: 0.81, lr: 0.005 },
  ];
  logs.forEach((l, e) => h.record(e, l));
  return h;
}

describe('plot.history', () => {
  it('writes a well-formed SVG with a panel per quantity and a polyline per series', () => {
    const file = path.join(dir, 'nested', 'curves.svg');
    const svg = plot.history(makeHistory(), file);
    expect(fs.readFileSync(file, 'utf8')).toBe(svg);
    const { root, elements } = parseXml(svg);
    expect(root).toBe('svg');
    expect(elements[0].attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    const panels = elements.filter((e) => e.name === 'g' && e.attrs.class === 'panel').map((e) => e.attrs['data-key']);
    expect(panels).toEqual(['loss', 'accuracy']); // lr is not plotted
    const series = elements.filter((e) => e.name === 'polyline');
    expect(series.map((s) => s.attrs['data-key'])).toEqual(['loss', 'val_loss', 'accuracy', 'val_accuracy']);
    for (const s of series) {
      const pts = s.attrs.points.split(' ');
      expect(pts).toHaveLength(4);
      for (const p of pts) expect(p).toMatch(/^\d+(\.\d)?,\d+(\.\d)?$/);
    }
    // Validation dashed, training solid; the loss falls, so its y (downwards in SVG) rises.
    expect(series[1].attrs['stroke-dasharray']).toBeDefined();
    expect(series[0].attrs['stroke-dasharray']).toBeUndefined();
    const ys = series[0].attrs.points.split(' ').map((p) => Number(p.split(',')[1]));
    for (let i = 1; i < ys.length; i++) expect(ys[i]).toBeGreaterThan(ys[i - 1]);
    expect(svg).toContain('<title>Training history</title>');
  });

  it('takes plain {history} objects and series maps, skips NaN points, escapes text', () => {
    const svg = plot.historySvg({ history: { loss: [1, NaN, 0.5], 'a<b>&"c"': [0.1, 0.2, 0.3] } }, { title: 'x < y & z' });
    const { elements } = parseXml(svg);
    const loss = elements.find((e) => e.name === 'polyline' && e.attrs['data-key'] === 'loss')!;
    expect(loss.attrs.points.split(' ')).toHaveLength(2);
    expect(svg).toContain('x &lt; y &amp; z');
    expect(svg).toContain('a&lt;b&gt;&amp;&quot;c&quot;');
    parseXml(plot.historySvg({ loss: [3] })); // one epoch, one panel
    parseXml(plot.historySvg({ val_loss: [3, 2] })); // validation only
    parseXml(plot.historySvg({ loss: [2, 2, 2] })); // flat series
  });

  it('nice ticks cover the range; bad input is a clear error', () => {
    const t = plot.niceTicks(0.37, 1.21, 4);
    expect(t[0]).toBeLessThanOrEqual(0.37);
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(1.21);
    expect(t).toEqual([0, 0.5, 1, 1.5]); // round steps (1, 2 or 5 x 10^k), about 4 of them
    expect(plot.niceTicks(2, 2)).toContain(2); // a flat series still gets a range
    expect(() => plot.history(makeHistory(), '')).toThrow(TypeError);
    expect(() => plot.historySvg({ history: { note: 'x' } } as never)).toThrow(/no series of numbers/);
  });
});
