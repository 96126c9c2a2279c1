#!/usr/bin/env python3
"""Golden values from PyTorch for test/golden.test.ts (the TypeScript layer end to end).

    /usr/bin/python3 tools/make-fixtures.py

Runs Debian's python3-torch (1.13, CPU, float32) over random configurations and writes
test/fixtures/torch-*.json. The files are committed, so the tests do not need PyTorch.

Format of one case (every tensor is {"shape": [...], "data": [...flat, row-major...]}):
    {"name", "op", "config": {...}, "inputs": {name: T}, "params": {pytorch_name: T},
     "dy": T (the upstream gradient given to backward), "out": T,
     "grads": {input or parameter name: T}, ...}

Inputs and parameters are rounded to 4 decimals before PyTorch sees them, so that their printed
values are exactly the float32 numbers PyTorch used. Outputs are printed with 7 significant digits.

The MNIST CNN (torch-cnn.json) has 840k parameters, too many for a small JSON file: its two large
weights are made by a generator that both sides implement with integer arithmetic (mulberry32,
below) and its large gradients are stored as a sample of positions plus sum, L2 norm and the dot
product with a generated vector.
"""
import json
import math
import os
import random

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')
GEN = 'tools/make-fixtures.py'


# ---------------------------------------------------------------------------------------------
# helpers

def sig(v, digits=7):
    return float('%.*g' % (digits, v))


def T(t, digits=7):
    """A tensor as {shape, data}; integer tensors as ints."""
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32, torch.bool):
        return {'shape': list(t.shape), 'data': [int(v) for v in t.reshape(-1).tolist()]}
    return {'shape': list(t.shape), 'data': [sig(v, digits) for v in t.reshape(-1).tolist()]}


def r4(t):
    """Rounds to 4 decimals (float32), so the printed value is exactly the number used."""
    return torch.round(t.float() * 1e4) / 1e4


def rn(*shape, scale=1.0, shift=0.0):
    return r4(torch.randn(tuple(shape)) * scale + shift)


def ru(*shape, lo=0.0, hi=1.0):
    return r4(torch.rand(tuple(shape)) * (hi - lo) + lo)


def leaf(t):
    return t.clone().requires_grad_()


def write(name, cases, **extra):
    data = {'generator': GEN, 'torch': torch.__version__, **extra, 'cases': cases}
    path = os.path.join(OUT, name)
    with open(path, 'w') as f:
        json.dump(data, f, separators=(',', ':'))
        f.write('\n')
    print('%-28s %3d cases %8d bytes' % (name, len(cases), os.path.getsize(path)))


def run_case(name, op, config, fn, inputs, params=None, grad_inputs=None):
    """Runs fn(**inputs, **params) with gradients on float inputs and params; backward with a random dy."""
    params = params or {}
    grad_inputs = grad_inputs if grad_inputs is not None else [
        k for k, v in inputs.items() if v.dtype == torch.float32]
    li = {k: (leaf(v) if k in grad_inputs else v) for k, v in inputs.items()}
    lp = {k: leaf(v) for k, v in params.items()}
    out = fn(**li, **lp)
    dy = rn(*out.shape)
    out.backward(dy)
    grads = {k: T(li[k].grad) for k in grad_inputs}
    grads.update({k: T(v.grad) for k, v in lp.items()})
    return {'name': name, 'op': op, 'config': config,
            'inputs': {k: T(v) for k, v in inputs.items()},
            'params': {k: T(v) for k, v in params.items()},
            'dy': T(dy), 'out': T(out), 'grads': grads}


# ---------------------------------------------------------------------------------------------
# conv2d

def conv_cases(rng):
    cases = []
    i = 0
    while len(cases) < 18:
        i += 1
        mode = ['g1', 'g2', 'dw'][len(cases) % 3]
        bias = len(cases) % 2 == 0
        if mode == 'g1':
            c, oc, groups = rng.randint(1, 3), rng.randint(1, 4), 1
        elif mode == 'g2':
            c, oc, groups = 2 * rng.randint(1, 2), 2 * rng.randint(1, 2), 2
        else:
            c = rng.randint(2, 3)
            groups, oc = c, c * rng.randint(1, 2)
        k = rng.choice([1, 2, 3, 3, (3, 2), (2, 3)])
        stride = rng.choice([1, 2, 1, 2, (1, 2), (2, 1)])
        padding = rng.choice([0, 1, 2, (0, 1), (2, 1)])
        dilation = rng.choice([1, 1, 2, (2, 1)])
        h, w = rng.randint(4, 9), rng.randint(4, 9)
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if oh < 1 or ow < 1:
            continue
        n = rng.choice([1, 2])
        x = rn(n, c, h, w)
        params = {'weight': rn(oc, c // groups, kh, kw, scale=0.5)}
        if bias:
            params['bias'] = rn(oc, scale=0.5)
        conv = nn.Conv2d(c, oc, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)

        def fn(x, weight, bias=None, s=stride, p=padding, d=dilation, g=groups):
            return F.conv2d(x, weight, bias, stride=s, padding=p, dilation=d, groups=g)

        cfg = {'inChannels': c, 'outChannels': oc, 'kernelSize': k, 'stride': stride, 'padding': padding,
               'dilation': dilation, 'groups': groups, 'bias': bias}
        case = run_case('conv2d %s %s' % (mode, json.dumps(cfg)), 'conv2d', cfg, fn, {'x': x}, params)
        assert sorted(dict(conv.named_parameters()).keys()) == sorted(params.keys())
        cases.append(case)
    return cases


# ---------------------------------------------------------------------------------------------
# pooling

def pool_cases(rng):
    cases = []
    # maxPool2d
    while len(cases) < 10:
        k = rng.choice([2, 3, 3, (2, 3), (3, 2)])
        kh, kw = (k, k) if isinstance(k, int) else k
        stride = rng.choice([None, 1, 2, (2, 1)])
        padding = rng.choice([0, 1, (1, 0)])
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        if ph > kh // 2 or pw > kw // 2:
            continue
        dilation = rng.choice([1, 1, 2])
        ceil = len(cases) % 2 == 1
        h, w = rng.randint(5, 9), rng.randint(5, 9)
        x = rn(2, 2, h, w)
        try:
            y = F.max_pool2d(x, k, stride, padding, dilation, ceil_mode=ceil)
        except RuntimeError:
            continue
        if y.numel() == 0:
            continue
        cfg = {'kernelSize': k, 'stride': stride, 'padding': padding, 'dilation': dilation, 'ceilMode': ceil}
        fn = lambda x, k=k, s=stride, p=padding, d=dilation, c=ceil: F.max_pool2d(x, k, s, p, d, ceil_mode=c)
        cases.append(run_case('maxPool2d %s' % json.dumps(cfg), 'maxPool2d', cfg, fn, {'x': x}))
    # avgPool2d
    n_avg = 0
    while n_avg < 12:
        k = rng.choice([2, 3, 3, (2, 3), (3, 2)])
        kh, kw = (k, k) if isinstance(k, int) else k
        stride = rng.choice([None, 1, 2, (2, 1)])
        padding = rng.choice([0, 1, 1, (1, 0)])
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        if ph > kh // 2 or pw > kw // 2:
            continue
        ceil = n_avg % 2 == 1
        cip = (n_avg // 2) % 2 == 0
        h, w = rng.randint(4, 9), rng.randint(4, 9)
        x = rn(2, 2, h, w)
        try:
            y = F.avg_pool2d(x, k, stride, padding, ceil_mode=ceil, count_include_pad=cip)
        except RuntimeError:
            continue
        if y.numel() == 0:
            continue
        cfg = {'kernelSize': k, 'stride': stride, 'padding': padding, 'ceilMode': ceil, 'countIncludePad': cip}
        fn = lambda x, k=k, s=stride, p=padding, c=ceil, ci=cip: F.avg_pool2d(x, k, s, p, ceil_mode=c, count_include_pad=ci)
        cases.append(run_case('avgPool2d %s' % json.dumps(cfg), 'avgPool2d', cfg, fn, {'x': x}))
        n_avg += 1
    # adaptiveAvgPool2d
    for shape, size in [((2, 3, 7, 5), (3, 2)), ((2, 2, 6, 6), (4, 4)), ((1, 2, 5, 9), (1, 1)),
                        ((1, 2, 3, 3), (5, 4)), ((2, 1, 10, 7), 3)]:
        x = rn(*shape)
        cfg = {'outputSize': size}
        fn = lambda x, s=size: F.adaptive_avg_pool2d(x, s)
        cases.append(run_case('adaptiveAvgPool2d %s -> %s' % (shape, size), 'adaptiveAvgPool2d', cfg, fn, {'x': x}))
    return cases


# ---------------------------------------------------------------------------------------------
# softmax, logSoftmax, gelu

def activation_cases():
    cases = []
    for shape, dims, scale in [((4, 7), [0, 1, -1], 1.0), ((2, 3, 5), [0, 1, 2], 2.0), ((3, 6), [1], 30.0)]:
        for dim in dims:
            x = rn(*shape, scale=scale)
            for op, f in [('softmax', F.softmax), ('logSoftmax', F.log_softmax)]:
                cfg = {'dim': dim}
                fn = lambda x, f=f, d=dim: f(x, d)
                cases.append(run_case('%s %s dim %d x%g' % (op, shape, dim, scale), op, cfg, fn, {'x': x}))
    for approx in ['none', 'tanh']:
        x = rn(3, 7, scale=3.0)
        fn = lambda x, a=approx: F.gelu(x, approximate=a)
        cases.append(run_case('gelu %s' % approx, 'gelu', {'approximate': approx}, fn, {'x': x}))
    for op, f in [('relu', F.relu), ('sigmoid', torch.sigmoid), ('tanh', torch.tanh)]:
        x = rn(3, 5, scale=2.0)
        cases.append(run_case(op, op, {}, lambda x, f=f: f(x), {'x': x}))
    return cases


# ---------------------------------------------------------------------------------------------
# losses

def targets(n, c, *rest):
    return torch.randint(0, c, (n, *rest))


def loss_cases():
    cases = []

    def ce(name, logits, target, **kw):
        cfg = {'reduction': kw.get('reduction', 'mean'), 'ignoreIndex': kw.get('ignore_index', -100),
               'labelSmoothing': kw.get('label_smoothing', 0.0)}
        fn = lambda x, target: F.cross_entropy(x, target, **kw)
        cases.append(run_case('crossEntropy ' + name, 'crossEntropy', cfg, fn, {'x': logits, 'target': target}, grad_inputs=['x']))

    for red in ['mean', 'sum', 'none']:
        ce('(5,4) %s' % red, rn(5, 4, scale=2), targets(5, 4), reduction=red)
    t = targets(6, 5)
    t[1] = -100
    t[4] = -100
    ce('ignore -100 mean', rn(6, 5), t)
    t = targets(6, 3)
    t[0] = 1
    t[2] = 1
    ce('ignore 1 sum', rn(6, 3), t, ignore_index=1, reduction='sum')
    ce('ignore 1 none', rn(6, 3), t, ignore_index=1, reduction='none')
    ce('smoothing 0.1 mean', rn(5, 4, scale=2), targets(5, 4), label_smoothing=0.1)
    ce('smoothing 0.25 none', rn(5, 4, scale=2), targets(5, 4), label_smoothing=0.25, reduction='none')
    ce('smoothing 0.2 sum', rn(4, 6), targets(4, 6), label_smoothing=0.2, reduction='sum')
    t = targets(6, 4)
    t[3] = 2
    ce('smoothing 0.1 ignore 2 mean', rn(6, 4), t, label_smoothing=0.1, ignore_index=2)
    ce('smoothing 0.3 ignore 2 sum', rn(6, 4), t, label_smoothing=0.3, ignore_index=2, reduction='sum')
    ce('(N,C,d) (2,4,3) mean', rn(2, 4, 3), targets(2, 4, 3))
    ce('(N,C,d1,d2) (2,3,2,2) none', rn(2, 3, 2, 2), targets(2, 3, 2, 2), reduction='none')
    t = targets(3, 5, 2)
    t[0, 1] = -100
    ce('(N,C,d) (3,5,2) smoothing ignore sum', rn(3, 5, 2), t, label_smoothing=0.15, reduction='sum')

    # nllLoss on log-probabilities
    for red, ign in [('mean', None), ('sum', None), ('none', None), ('mean', 0)]:
        lp = r4(F.log_softmax(torch.randn(5, 4), 1))
        t = targets(5, 4)
        kw = {'reduction': red}
        if ign is not None:
            t[1] = ign
            t[3] = ign
            kw['ignore_index'] = ign
        cfg = {'reduction': red, 'ignoreIndex': -100 if ign is None else ign}
        fn = lambda x, target, kw=kw: F.nll_loss(x, target, **kw)
        cases.append(run_case('nllLoss %s ignore %s' % (red, ign), 'nllLoss', cfg, fn, {'x': lp, 'target': t}, grad_inputs=['x']))

    for red in ['mean', 'sum', 'none']:
        fn = lambda x, target, r=red: F.mse_loss(x, target, reduction=r)
        cases.append(run_case('mseLoss %s' % red, 'mseLoss', {'reduction': red}, fn,
                              {'x': rn(3, 4), 'target': rn(3, 4)}, grad_inputs=['x', 'target']))

    for red in ['mean', 'sum', 'none']:
        p = ru(4, 3, lo=0.02, hi=0.98)
        t = ru(4, 3)  # soft targets
        t[0] = torch.tensor([0.0, 1.0, 1.0])
        fn = lambda x, target, r=red: F.binary_cross_entropy(x, target, reduction=r)
        cases.append(run_case('binaryCrossEntropy %s' % red, 'binaryCrossEntropy', {'reduction': red}, fn,
                              {'x': p, 'target': t}, grad_inputs=['x']))
    p = ru(4, 3, lo=0.02, hi=0.98)
    wt = ru(4, 3, lo=0.5, hi=2.0)
    fn = lambda x, target, weight: F.binary_cross_entropy(x, target, weight=weight)
    cases.append(run_case('binaryCrossEntropy weight mean', 'binaryCrossEntropy', {'reduction': 'mean', 'weight': True}, fn,
                          {'x': p, 'target': ru(4, 3), 'weight': wt}, grad_inputs=['x']))

    for red in ['mean', 'sum', 'none']:
        fn = lambda x, target, r=red: F.binary_cross_entropy_with_logits(x, target, reduction=r)
        cases.append(run_case('binaryCrossEntropyWithLogits %s' % red, 'binaryCrossEntropyWithLogits', {'reduction': red}, fn,
                              {'x': rn(4, 3, scale=3), 'target': ru(4, 3)}, grad_inputs=['x']))
    fn = lambda x, target, pos_weight: F.binary_cross_entropy_with_logits(x, target, pos_weight=pos_weight)
    cases.append(run_case('binaryCrossEntropyWithLogits posWeight mean', 'binaryCrossEntropyWithLogits',
                          {'reduction': 'mean', 'posWeight': True}, fn,
                          {'x': rn(4, 3, scale=3), 'target': ru(4, 3), 'pos_weight': ru(3, lo=0.5, hi=3.0)},
                          grad_inputs=['x']))
    return cases


# ---------------------------------------------------------------------------------------------
# layers: Linear, LayerNorm, BatchNorm2d, Embedding

def layer_cases():
    cases = []
    for xshape, inf, outf, bias in [((4, 5), 5, 3, True), ((2, 3, 5), 5, 4, False), ((6,), 6, 2, True)]:
        m = nn.Linear(inf, outf, bias=bias)
        params = {'weight': rn(outf, inf, scale=0.5)}
        if bias:
            params['bias'] = rn(outf, scale=0.5)
        assert sorted(k for k, _ in m.named_parameters()) == sorted(params)
        fn = lambda x, weight, bias=None: F.linear(x, weight, bias)
        cfg = {'inFeatures': inf, 'outFeatures': outf, 'bias': bias}
        cases.append(run_case('Linear %s' % json.dumps(cfg), 'Linear', cfg, fn, {'x': rn(*xshape)}, params))

    for xshape, ns, affine, eps in [((3, 6), [6], True, 1e-5), ((2, 3, 4), [3, 4], True, 1e-5),
                                    ((4, 5), [5], False, 1e-5), ((2, 2, 7), [7], True, 1e-3)]:
        params = {'weight': rn(*ns, scale=0.5, shift=1.0), 'bias': rn(*ns, scale=0.5)} if affine else {}
        fn = lambda x, weight=None, bias=None, ns=ns, eps=eps: F.layer_norm(x, ns, weight, bias, eps)
        cfg = {'normalizedShape': ns, 'elementwiseAffine': affine, 'eps': eps}
        cases.append(run_case('LayerNorm %s' % json.dumps(cfg), 'LayerNorm', cfg, fn, {'x': rn(*xshape, scale=2, shift=0.5)}, params))

    # BatchNorm2d: training (output, grads, running stats after two forwards) and eval.
    for shape, momentum, affine in [((3, 4, 5, 5), 0.1, True), ((2, 3, 4, 3), 0.3, True), ((4, 2, 3, 3), 0.1, False)]:
        c = shape[1]
        bn = nn.BatchNorm2d(c, momentum=momentum, affine=affine)
        rm0, rv0 = rn(c, scale=0.1), ru(c, lo=0.5, hi=1.5)
        params = {'weight': rn(c, scale=0.5, shift=1.0), 'bias': rn(c, scale=0.5)} if affine else {}
        with torch.no_grad():
            bn.running_mean.copy_(rm0)
            bn.running_var.copy_(rv0)
            for k, v in params.items():
                getattr(bn, k).copy_(v)
        x0 = rn(*shape, scale=1.5, shift=0.7)  # a first batch that only moves the running stats
        x = rn(*shape, scale=2.0, shift=-0.3)
        bn.train()
        with torch.no_grad():
            bn(x0)
        xl = leaf(x)
        out = bn(xl)
        dy = rn(*out.shape)
        out.backward(dy)
        grads = {'x': T(xl.grad)}
        grads.update({k: T(getattr(bn, k).grad) for k in params})
        buffers0 = {'running_mean': T(rm0), 'running_var': T(rv0), 'num_batches_tracked': T(torch.tensor(0))}
        cfg = {'numFeatures': c, 'momentum': momentum, 'eps': 1e-5, 'affine': affine, 'training': True}
        cases.append({'name': 'BatchNorm2d train %s' % json.dumps(cfg), 'op': 'BatchNorm2d', 'config': cfg,
                      'inputs': {'x0': T(x0), 'x': T(x)}, 'params': params and {k: T(v) for k, v in params.items()},
                      'buffers': buffers0, 'dy': T(dy), 'out': T(out), 'grads': grads,
                      'buffersAfter': {k: T(v) for k, v in bn.named_buffers()}})
        # eval with the running statistics reached above
        bn.eval()
        bn.zero_grad()
        xe = rn(*shape)
        xl = leaf(xe)
        out = bn(xl)
        dy = rn(*out.shape)
        out.backward(dy)
        grads = {'x': T(xl.grad)}
        grads.update({k: T(getattr(bn, k).grad) for k in params})
        cfg = dict(cfg, training=False)
        cases.append({'name': 'BatchNorm2d eval %s' % json.dumps(cfg), 'op': 'BatchNorm2d', 'config': cfg,
                      'inputs': {'x': T(xe)}, 'params': {k: T(getattr(bn, k)) for k in params},
                      'buffers': {k: T(v) for k, v in bn.named_buffers()},
                      'dy': T(dy), 'out': T(out), 'grads': grads,
                      'buffersAfter': {k: T(v) for k, v in bn.named_buffers()}})

    for num, dim, ishape, pad in [(10, 4, (3, 5), None), (6, 3, (8,), 0), (7, 5, (2, 2, 3), 3)]:
        idx = torch.randint(0, num, ishape)
        idx.view(-1)[0] = idx.view(-1)[-1]  # a repeated row
        if pad is not None:
            idx.view(-1)[1] = pad
        fn = lambda indices, weight, pad=pad: F.embedding(indices, weight, padding_idx=pad)
        cfg = {'numEmbeddings': num, 'embeddingDim': dim, 'paddingIdx': pad}
        cases.append(run_case('Embedding %s' % json.dumps(cfg), 'Embedding', cfg, fn, {'indices': idx},
                              {'weight': rn(num, dim)}, grad_inputs=[]))
    return cases


# ---------------------------------------------------------------------------------------------
# the MNIST CNN of DESIGN.md (system 2) at batch 2

def mulberry32(seed, n):
    """n uniform floats in [0, 1) from mulberry32 (32-bit integer arithmetic; test/golden.test.ts has the same)."""
    out = []
    s = seed & 0xFFFFFFFF
    for _ in range(n):
        s = (s + 0x6D2B79F5) & 0xFFFFFFFF
        t = s
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        t &= 0xFFFFFFFF
        out.append(((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296.0)
    return out


def generated(shape, seed, bound):
    """U(-bound, bound) from mulberry32, rounded to 4 decimals: floor((2u - 1) * bound * 1e4 + 0.5) / 1e4."""
    n = math.prod(shape)
    vals = [math.floor((2.0 * u - 1.0) * bound * 1e4 + 0.5) / 1e4 for u in mulberry32(seed, n)]
    return torch.tensor(vals, dtype=torch.float32).reshape(shape)


def summary(g, seed, sample_positions):
    flat = g.detach().double().reshape(-1)
    proj = torch.tensor([2.0 * u - 1.0 for u in mulberry32(seed, flat.numel())], dtype=torch.float64)
    return {'shape': list(g.shape), 'sum': float(flat.sum()), 'norm': float(flat.norm()),
            'projSeed': seed, 'proj': float((flat * proj).sum()),
            'positions': sample_positions, 'values': [sig(float(flat[i])) for i in sample_positions]}


def cnn_case():
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 512), nn.ReLU(), nn.Linear(512, 10))
    big = {'3.weight': 101, '7.weight': 102}  # generated by mulberry32 with these seeds
    params, gen = {}, {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p.shape[1] * (p.shape[2] * p.shape[3] if p.dim() == 4 else 1) if p.dim() > 1 else None
            if name in big:
                bound = 1.0 / math.sqrt(fan_in)
                p.copy_(generated(list(p.shape), big[name], bound))
                gen[name] = {'shape': list(p.shape), 'seed': big[name], 'bound': bound}
            else:
                p.copy_(r4(p))
                params[name] = T(p)
    # Two digit-like inputs in [0, 1] (a blurred random stroke pattern) and their labels.
    x = ru(2, 1, 28, 28)
    x = r4(F.avg_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 1) ** 2 * 2)
    target = torch.tensor([3, 7])
    out = model(x)
    loss = F.cross_entropy(out, target)
    loss.backward()
    grads, gsummary = {}, {}
    prng = random.Random(7)
    for name, p in model.named_parameters():
        if name in big:
            positions = sorted(prng.sample(range(p.numel()), 400))
            # add the positions of the largest gradients (the sample alone is mostly zeros for fc1)
            top = torch.topk(p.grad.abs().reshape(-1), 100).indices.tolist()
            positions = sorted(set(positions) | set(top))
            gsummary[name] = summary(p.grad, big[name] + 1000, positions)
        else:
            grads[name] = T(p.grad)
    return {'name': 'MNIST CNN batch 2', 'op': 'cnn', 'inputs': {'x': T(x), 'target': T(target)},
            'params': params, 'generatedParams': gen, 'out': T(out), 'loss': sig(float(loss)),
            'grads': grads, 'gradSummaries': gsummary,
            'mulberry32': {'seed': 101, 'values': mulberry32(101, 5)}}


# ---------------------------------------------------------------------------------------------
# optimizer trajectories: 10 steps of a tiny model (Linear(4,5) -> Tanh -> Linear(5,2), MSE)

def optim_cases():
    configs = [
        ('SGD', dict(lr=0.1, momentum=0.9)),
        ('SGD', dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
        ('SGD', dict(lr=0.1, momentum=0.8, dampening=0.2, weight_decay=0.001)),
        ('SGD', dict(lr=0.2)),
        ('Adam', dict(lr=0.01)),
        ('Adam', dict(lr=0.02, betas=(0.8, 0.99), amsgrad=True, weight_decay=0.01)),
        ('Adam', dict(lr=0.01, eps=1e-6, weight_decay=0.05)),
        ('AdamW', dict(lr=0.01)),
        ('AdamW', dict(lr=0.02, weight_decay=0.1, amsgrad=True)),
        ('RMSprop', dict(lr=0.01)),
        ('RMSprop', dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    ]
    x = rn(6, 4)
    y = rn(6, 2, scale=0.5)
    init = {'0.weight': rn(5, 4, scale=0.5), '0.bias': rn(5, scale=0.5),
            '2.weight': rn(2, 5, scale=0.5), '2.bias': rn(2, scale=0.5)}
    cases = []
    for kind, opts in configs:
        model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(init[name])
        opt = getattr(torch.optim, kind)(model.parameters(), **opts)
        losses, traj = [], []
        for _ in range(10):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            losses.append(sig(float(loss)))
            traj.append({k: T(v)['data'] for k, v in model.named_parameters()})
        o = {}
        for k, v in opts.items():
            camel = {'weight_decay': 'weightDecay'}.get(k, k)
            o[camel] = list(v) if isinstance(v, tuple) else v
        cases.append({'name': '%s %s' % (kind, json.dumps(o)), 'optimizer': kind, 'options': o,
                      'losses': losses, 'trajectory': traj})
    return cases, {'x': T(x), 'y': T(y), 'init': {k: T(v) for k, v in init.items()}}


if __name__ == '__main__':
    torch.manual_seed(20261122)
    rng = random.Random(20261122)
    os.makedirs(OUT, exist_ok=True)
    write('torch-conv.json', conv_cases(rng))
    write('torch-pool.json', pool_cases(rng))
    write('torch-activations.json', activation_cases())
    write('torch-losses.json', loss_cases())
    write('torch-layers.json', layer_cases())
    write('torch-cnn.json', [cnn_case()])
    cases, data = optim_cases()
    write('torch-optim.json', cases, model='Sequential(Linear(4,5), Tanh(), Linear(5,2)), mseLoss', data=data)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT) if f.startswith('torch-'))
    print('total %d bytes' % total)
    assert total < 1_500_000, 'fixtures too large'
