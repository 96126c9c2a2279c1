#!/usr/bin/env python3
"""Coefficients of the float32 erf / erfc used by the GELU kernel (cpp/kernels/unary.cpp, normal_cdf).

  |z| < 0.84375:  erf(z)  = z * P(z^2)                      P of degree 5
  t = |z| above:  erfc(t) = exp(-t^2) * G(1 / (1 + t / 2))   G of degree 8, fitted on [0.84375, 9.5]

Each polynomial is fitted in relative error by least squares on Chebyshev nodes, then Lawson
iterations (reweighting by the error) move it toward the minimax fit; the script then evaluates the
float32-rounded coefficients by Horner's rule in float32 and prints the largest relative error
against Python's float64 math.erf / math.erfc. Needs numpy (Debian: python3-numpy).

    /usr/bin/python3 tools/fit-erf.py
"""
import math

import numpy as np


def fit(x, y, deg, iterations=60):
    """Polynomial coefficients c[0..deg] (lowest first) minimizing max |(sum c_i x^i - y) / y|."""
    a = np.vstack([x ** i for i in range(deg + 1)]).T
    w = 1.0 / y
    lawson = np.ones_like(x)
    c = None
    for _ in range(iterations):
        s = w * np.sqrt(lawson)
        c = np.linalg.lstsq(a * s[:, None], y * s, rcond=None)[0]
        err = np.abs((a @ c - y) * w)
        lawson = lawson * (err / err.max() + 1e-12)
        lawson /= lawson.sum()
    return c.astype(np.float32)


def horner32(c, x):
    p = np.full_like(x, c[-1], dtype=np.float32)
    for ci in c[-2::-1]:
        p = (p * x + ci).astype(np.float32)
    return p


def chebyshev(lo, hi, n):
    return np.cos(np.linspace(0, math.pi, n)) * 0.5 * (hi - lo) + 0.5 * (hi + lo)


def show(name, c, err):
    print(f"{name}: max relative error {err:.2e} (float32 evaluation)")
    print("  " + ", ".join(f"{v:.9e}f" for v in c))


# erf(z) / z = P(z^2) on [0, 0.84375]
z = chebyshev(1e-6, 0.84375, 4000)
p = fit(z * z, np.array([math.erf(v) / v for v in z]), 5)
zz = np.linspace(1e-6, 0.84375, 20001).astype(np.float32)
got = zz * horner32(p, zz * zz)
show("P", p, max(abs(float(g) - math.erf(float(v))) / math.erf(float(v)) for g, v in zip(got, zz)))

# erfc(t) exp(t^2) = G(k), k = 1 / (1 + t / 2), on [0.84375, 9.5]
t = chebyshev(0.84375, 9.5, 6000)
g = fit(1.0 / (1.0 + 0.5 * t), np.array([math.erfc(v) * math.exp(v * v) for v in t]), 8)
tt = np.linspace(0.84375, 9.5, 20001).astype(np.float32)
k = (np.float32(1) / (np.float32(1) + np.float32(0.5) * tt)).astype(np.float32)
got = horner32(g, k)
show("G", g, max(abs(float(a) - math.erfc(float(v)) * math.exp(float(v) ** 2)) / (math.erfc(float(v)) * math.exp(float(v) ** 2))
                for a, v in zip(got, tt)))
