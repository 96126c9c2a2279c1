// Reverse-mode autograd. Each differentiable op records a Node on its output: the op's name, its
// inputs, and what its backward needs. backward() orders the graph topologically from the root and
// applies the gradient rule of each op, taken from the one table in gradients.ts.
import { GRADIENTS, type OpName } from './gradients';
import { isGradEnabled, noGrad, type Tensor } from './tensor';
import * as ops from './ops';

export interface Node {
  op: OpName;
  inputs: (Tensor | null)[];
  /** Whatever the gradient rule needs (tensors, sizes, flags). */
  saved: Record<string, unknown>;
  /** Tensors created by the forward only for the backward (freed with the graph). */
  owned: Tensor[];
  freed: boolean;
}

/** @internal NaN/Inf checks installed by tsm.setDetectAnomaly (lib/anomaly.ts); null when off. */
export const anomalyHooks: {
  forward: ((out: Tensor, op: OpName, inputs: (Tensor | null)[], saved: Record<string, unknown>) => void) | null;
  backward: ((node: Node, inputGrads: (Tensor | null | undefined)[]) => void) | null;
} = { forward: null, backward: null };

function anyRequiresGrad(inputs: (Tensor | null)[]): boolean {
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i];
    if (t !== null && t.requiresGrad) return true;
  }
  return false;
}

/**
 * @internal Whether record() would do anything for an op of inputs a (and b) that owns no buffers:
 * lets the hot paths of tiny ops skip building its input list and saved values.
 */
export function needsRecord(a: Tensor, b: Tensor | null = null): boolean {
  return anomalyHooks.forward !== null || (isGradEnabled() && (a.requiresGrad || (b !== null && b.requiresGrad)));
}

/**
 * Records `op` on `out` when gradients are on and some input requires them. Returns `out`.
 * Otherwise disposes the `owned` buffers at once (nothing will need them).
 */
export function record(out: Tensor, op: OpName, inputs: (Tensor | null)[], saved: Record<string, unknown> = {},
                       owned: Tensor[] = []): Tensor {
  if (anomalyHooks.forward) anomalyHooks.forward(out, op, inputs, saved);
  if (isGradEnabled() && anyRequiresGrad(inputs)) {
    out._node = { op, inputs, saved, owned, freed: false };
    out.requiresGrad = true;
  } else {
    for (const t of owned) t.dispose();
  }
  return out;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<number>();
  // Iterative post-order DFS (graphs of long sequences are deep).
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root.id);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t._node ? t._node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child && child.requiresGrad && !seen.has(child.id)) {
        seen.add(child.id);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order; // inputs before outputs
}

export function backward(root: Tensor, gradient?: Tensor): void {
  if (!root.requiresGrad)
    throw new RangeError('backward: the tensor does not require gradients (no input had requiresGrad set)');
  let seed: Tensor;
  if (gradient === undefined) {
    if (root.size !== 1)
      throw new RangeError(`backward: a gradient argument is needed for a non-scalar tensor of shape [${root.shape.join(', ')}]`);
    seed = noGrad(() => ops.onesLike(root));
  } else {
    if (!(gradient instanceof Object) || gradient.shape === undefined)
      throw new TypeError('backward: gradient must be a Tensor');
    if (gradient.shape.join(',') !== root.shape.join(','))
      throw new RangeError(`backward: gradient shape [${gradient.shape.join(', ')}] does not match the tensor's [${root.shape.join(', ')}]`);
    if (gradient.device !== root.device)
      throw new TypeError(`backward: expected all tensors on the same device, got ${gradient.device} (gradient) and ${root.device} (the tensor)`);
    seed = gradient;
  }
  const order = topoOrder(root);
  const grads = new Map<number, Tensor>();
  grads.set(root.id, seed);
  noGrad(() => {
    for (let idx = order.length - 1; idx >= 0; idx--) {
      const t = order[idx];
      const g = grads.get(t.id);
      if (!g) continue;
      grads.delete(t.id);
      const node = t._node;
      if (!node) {
        // A leaf: accumulate into .grad (which outlives any tidy scope).
        if (t.grad) {
          const sum = ops.add(t.grad, g);
          t.grad.dispose();
          t.grad = ops.keepTensor(sum);
        } else {
          t.grad = ops.keepTensor(g === seed && gradient !== undefined ? ops.clone(g) : g);
        }
        if (g !== t.grad && g !== seed) g.dispose();
        continue;
      }
      if (node.freed)
        throw new RangeError(`backward: the graph through '${node.op}' was already freed by an earlier backward()`);
      const inputGrads = GRADIENTS[node.op](g, node);
      if (anomalyHooks.backward) anomalyHooks.backward(node, inputGrads);
      // A rule may return g itself as an input's gradient (add, identity): the first such input
      // takes g over, later ones get a copy (each gradient must be its own tensor: they are
      // disposed, and may be changed in place, e.g. by clipGradNorm_).
      let gTaken = false;
      for (let i = 0; i < node.inputs.length; i++) {
        const input = node.inputs[i];
        const ig = inputGrads[i];
        if (!input || !ig || !input.requiresGrad) {
          if (ig && ig !== g) ig.dispose();
          continue;
        }
        const prev = grads.get(input.id);
        if (prev) {
          grads.set(input.id, ops.add(prev, ig));
          prev.dispose();
          if (ig !== g) ig.dispose();
        } else if (ig === g && !gTaken && g !== seed) {
          grads.set(input.id, g);
          gTaken = true;
        } else {
          grads.set(input.id, ig === g ? ops.clone(g) : ig);
        }
      }
      if (g !== seed && !gTaken) g.dispose();
      for (const o of node.owned) o.dispose();
      node.owned = [];
      node.saved = {};
      node.freed = true;
    }
  });
  if (gradient === undefined && root.grad !== seed) seed.dispose();
}
