// What crosses to a worker thread: a model, its optimizer and loss as an object graph that
// structured clone can carry, and back.
//
// structured clone drops prototypes, so a module would arrive as a bag of properties. This codec
// walks the graph instead (as Python's pickle does for torch.nn.Module): every class instance is
// written as {class name, own properties}, and rebuilt on the other side with Object.create(class
// prototype) and the same properties; no constructor runs (so no random initialisation and no
// draw from the generator). Classes are found by name: tensorsmith's own (tsm.nn, tsm.optim,
// tsm.metrics, tsm.data) in a fixed table, the user's among the exports of the modules the caller
// names. Shared references and cycles keep their identity. Tensors of the model's state dict are
// written as their name (their data travels separately, as transferable buffers); any other tensor
// travels with its data. Functions cannot cross (a closure's captured variables are out of reach):
// the encoder throws, naming the path of the property.
import { describe } from './check';
import * as data from './data';
import * as metrics from './metrics';
import * as nnAll from './nn-all';
import { parameter, isParameter } from './nn';
import * as optim from './optim';
import { fromData, Tensor, type TypedArray } from './tensor';

/** A value structured clone can carry: primitives, plain containers, typed arrays and the tags below. */
export type Encoded = unknown;

/** The tags (objects with a `$` key) the encoder writes. */
type Tag =
  | { $: 'ref'; id: number }
  | { $: 'obj'; id: number; cls: string; user: boolean; props: Record<string, Encoded> }
  | { $: 'plain'; id: number; props: Record<string, Encoded>; nullProto: boolean }
  | { $: 'arr'; id: number; items: Encoded[] }
  | { $: 'map'; id: number; entries: [Encoded, Encoded][] }
  | { $: 'set'; id: number; items: Encoded[] }
  | { $: 'raw'; id: number; value: unknown }
  | { $: 'sd'; name: string }
  | { $: 'tensor'; id: number; data: TypedArray; shape: number[]; param: boolean; requiresGrad: boolean };

let libraryClasses: Map<unknown, string> | null = null;

/** tensorsmith's classes by qualified name ('nn.Linear', 'optim.Adam'...), both ways. */
function library(): { byClass: Map<unknown, string>; byName: Map<string, new (...a: never[]) => unknown> } {
  if (!libraryClasses) {
    libraryClasses = new Map();
    const spaces: [string, Record<string, unknown>][] = [['nn', nnAll], ['optim', optim], ['metrics', metrics], ['data', data]];
    for (const [ns, exports] of spaces)
      for (const [k, v] of Object.entries(exports))
        if (typeof v === 'function' && v.prototype && !libraryClasses.has(v)) libraryClasses.set(v, `${ns}.${k}`);
  }
  const byName = new Map<string, new (...a: never[]) => unknown>();
  for (const [cls, name] of libraryClasses) byName.set(name, cls as new (...a: never[]) => unknown);
  return { byClass: libraryClasses, byName };
}

/** A property path for messages: model.encoder.layers[0].norm1. */
function join(path: string, key: string | number): string {
  return typeof key === 'number' ? `${path}[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** Why a value cannot be sent, as an error naming where it is. */
export class TransferError extends TypeError {
  constructor(op: string, readonly path: string, why: string) {
    super(`${op}: cannot send ${path} to the worker thread: ${why}`);
    this.name = 'TypeError';
  }
}

/**
 * What compile()/fit() leave on a module (the compiled loss closures, the stop flag): not part of
 * the model. The receiving side compiles its copy itself.
 */
const MODULE_TRAINING_STATE = new Set(['_compiled', '_stopTraining', '_workerFit']);

/** Options of {@link Encoder}. */
export interface EncoderOptions {
  /** The op named in errors ('fitAsync'). */
  op: string;
  /** Tensors written by name (the model's state dict); their data travels separately. */
  stateNames: Map<Tensor, string>;
}

/** Writes object graphs; one encoder per message, so references shared between its calls keep their identity. */
export class Encoder {
  private readonly ids = new Map<object, number>();
  /** User-defined classes met so far: name -> the path where it was first seen. */
  readonly userClasses = new Map<string, string>();
  constructor(private readonly opts: EncoderOptions) {}

  encode(v: unknown, path: string): Encoded {
    if (v === null || v === undefined || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint')
      return v;
    const op = this.opts.op;
    if (typeof v === 'symbol') throw new TransferError(op, path, 'it is a Symbol');
    if (typeof v === 'function') {
      const name = (v as { name?: string }).name;
      throw new TransferError(op, path, `it is a function${name ? ` (${name})` : ''}, and functions (closures) cannot be copied to ` +
        'another thread; keep functions on the prototype (class methods) or out of the model');
    }
    const obj = v as object;
    const seen = this.ids.get(obj);
    if (seen !== undefined) return { $: 'ref', id: seen } satisfies Tag;
    if (obj instanceof Tensor) {
      const name = this.opts.stateNames.get(obj);
      if (name !== undefined) return { $: 'sd', name } satisfies Tag;
      const id = this.ids.size;
      this.ids.set(obj, id);
      // Copy: the receiver owns its tensor.
      return { $: 'tensor', id, data: obj._data.slice(), shape: obj.shape.slice(), param: isParameter(obj), requiresGrad: obj.requiresGrad } satisfies Tag;
    }
    const id = this.ids.size;
    this.ids.set(obj, id);
    if (Array.isArray(obj)) return { $: 'arr', id, items: obj.map((x, i) => this.encode(x, join(path, i))) } satisfies Tag;
    if (ArrayBuffer.isView(obj) || obj instanceof ArrayBuffer || obj instanceof Date || obj instanceof RegExp)
      return { $: 'raw', id, value: obj } satisfies Tag;
    if (typeof SharedArrayBuffer !== 'undefined' && obj instanceof SharedArrayBuffer) return { $: 'raw', id, value: obj } satisfies Tag;
    if (obj instanceof Map)
      return { $: 'map', id, entries: [...obj].map(([k, x], i) => [this.encode(k, `${path}<key ${i}>`), this.encode(x, join(path, String(k)))]) } satisfies Tag;
    if (obj instanceof Set) return { $: 'set', id, items: [...obj].map((x, i) => this.encode(x, `${path}<item ${i}>`)) } satisfies Tag;
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (proto === Object.prototype || proto === null)
      return { $: 'plain', id, props: this.props(obj, path), nullProto: proto === null } satisfies Tag;
    if (obj instanceof Promise || obj instanceof WeakMap || obj instanceof WeakSet || obj instanceof WeakRef || obj instanceof Error)
      throw new TransferError(op, path, `it is a ${proto.constructor?.name ?? 'built-in object'}, which cannot be copied to another thread`);
    const ctor = (proto as { constructor?: unknown }).constructor;
    const lib = library().byClass.get(ctor);
    if (lib !== undefined) return { $: 'obj', id, cls: lib, user: false, props: this.props(obj, path) } satisfies Tag;
    const name = typeof ctor === 'function' ? ctor.name : '';
    if (!name) throw new TransferError(op, path, 'it is an instance of an anonymous class, which the worker cannot look up by name');
    if (!this.userClasses.has(name)) this.userClasses.set(name, path);
    return { $: 'obj', id, cls: name, user: true, props: this.props(obj, path) } satisfies Tag;
  }

  private props(obj: object, path: string): Record<string, Encoded> {
    const out: Record<string, Encoded> = {};
    const skip = obj instanceof nnAll.Module ? MODULE_TRAINING_STATE : null;
    for (const [k, x] of Object.entries(obj)) if (!skip?.has(k)) out[k] = this.encode(x, join(path, k));
    return out;
  }
}

/** Where the decoder finds classes and tensors. */
export interface DecoderOptions {
  /** The op named in errors. */
  op: string;
  /** The tensors `{$: 'sd'}` tags name. */
  state: Map<string, Tensor>;
  /** User classes by name (exports of the modules the caller named). */
  userClasses: Map<string, unknown>;
  /** Where user classes were looked for (for the error message). */
  searched: string[];
}

/** Rebuilds what an {@link Encoder} wrote. */
export class Decoder {
  private readonly objs = new Map<number, unknown>();
  constructor(private readonly opts: DecoderOptions) {}

  decode(e: Encoded): unknown {
    if (e === null || typeof e !== 'object') return e;
    const t = e as Tag;
    switch (t.$) {
      case 'ref': return this.objs.get(t.id);
      case 'sd': {
        const x = this.opts.state.get(t.name);
        if (!x) throw new RangeError(`${this.opts.op}: the model refers to state tensor ${JSON.stringify(t.name)}, which did not arrive`);
        return x;
      }
      case 'tensor': {
        const x = fromData(t.data, t.shape);
        if (t.param) parameter(x);
        if (x.requiresGrad !== t.requiresGrad) x.requiresGrad_(t.requiresGrad);
        this.objs.set(t.id, x);
        return x;
      }
      case 'raw': this.objs.set(t.id, t.value); return t.value;
      case 'arr': {
        const a: unknown[] = [];
        this.objs.set(t.id, a);
        for (const x of t.items) a.push(this.decode(x));
        return a;
      }
      case 'map': {
        const m = new Map<unknown, unknown>();
        this.objs.set(t.id, m);
        for (const [k, x] of t.entries) m.set(this.decode(k), this.decode(x));
        return m;
      }
      case 'set': {
        const s = new Set<unknown>();
        this.objs.set(t.id, s);
        for (const x of t.items) s.add(this.decode(x));
        return s;
      }
      case 'plain': {
        const o: Record<string, unknown> = t.nullProto ? Object.create(null) : {};
        this.objs.set(t.id, o);
        this.assign(o, t.props);
        return o;
      }
      case 'obj': {
        const cls = this.classOf(t.cls, t.user) as { prototype: object };
        const o = Object.create(cls.prototype) as Record<string, unknown>;
        this.objs.set(t.id, o);
        this.assign(o, t.props);
        return o;
      }
    }
    throw new TypeError(`${this.opts.op}: unknown tag in the message from the other thread: ${describe(e)}`);
  }

  /** Sets the properties as own data properties (class fields may be readonly or shadow accessors). */
  assign(o: object, props: Record<string, Encoded>): void {
    for (const [k, x] of Object.entries(props))
      Object.defineProperty(o, k, { value: this.decode(x), writable: true, enumerable: true, configurable: true });
  }

  private classOf(name: string, user: boolean): unknown {
    if (!user) {
      const c = library().byName.get(name);
      if (!c) throw new TypeError(`${this.opts.op}: tensorsmith class ${name} is unknown in the worker thread (a different version of the library?)`);
      return c;
    }
    const c = lookupExport(this.opts.op, this.opts.userClasses, this.opts.searched, name, 'class');
    if (typeof c !== 'function' || !c.prototype) throw new TypeError(`${this.opts.op}: ${name} in the worker thread is not a class`);
    return c;
  }
}

/** Several modules export different values under one name (found only when that name is looked up). */
export class Ambiguous {
  constructor(readonly from: string[]) {}
}

/**
 * Classes (and functions) exported by the given module namespaces, by export name and by their own
 * `name`; a name two modules export as different values maps to {@link Ambiguous}.
 */
export function exportsByName(namespaces: [string, Record<string, unknown>][]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const origin = new Map<string, string>();
  const add = (key: string, v: unknown, from: string) => {
    const prev = out.get(key);
    if (prev === undefined) {
      out.set(key, v);
      origin.set(key, from);
    } else if (prev instanceof Ambiguous) {
      if (!prev.from.includes(from)) prev.from.push(from);
    } else if (prev !== v) out.set(key, new Ambiguous([origin.get(key)!, from]));
  };
  for (const [from, ns] of namespaces) {
    const entries = Object.entries(ns);
    // A CommonJS module imported as ESM has its exports under default too.
    const dflt = ns.default;
    if (dflt && typeof dflt === 'object') entries.push(...Object.entries(dflt as Record<string, unknown>));
    for (const [k, v] of entries) {
      if (typeof v !== 'function') continue;
      if (k !== 'default') add(k, v, from);
      const own = (v as { name?: string }).name;
      if (own && own !== k && own !== 'default') add(own, v, from);
    }
  }
  return out;
}

/** The export `name`, or a TypeError naming `what` and where it was looked for. */
export function lookupExport(op: string, table: Map<string, unknown>, searched: string[], name: string, what: string): unknown {
  const v = table.get(name);
  if (v instanceof Ambiguous) throw new TypeError(`${op}: ${what} ${name} is exported as different values by ${v.from.join(' and ')}; rename one`);
  if (v === undefined) {
    const where = searched.length ? `the exports of ${searched.join(', ')}` : 'no module (workerModules is empty)';
    throw new TypeError(`${op}: ${what} ${name} is not defined in the worker thread: looked in ${where}; export it from a module and list that module in workerModules`);
  }
  return v;
}
