"""Adjoint identities and finite differences: conv2d_transpose is conv2d's adjoint.

    <conv2d(x, w), y> == <x, conv2d_transpose(y, w, x.shape)>

for every layout, padding, stride, dilation and group count; and
conv2d_backprop_input is the finite-difference gradient of sum(conv2d(x, w) * y)."""
import numpy as np
import pytest

import cdeconv

CASES = [
    # (x spatial, kernel, strides, dilations, padding)
    ((7, 8), (3, 3), (2, 2), (1, 1), "SAME"),
    ((8, 8), (4, 4), (2, 2), (1, 1), "SAME"),
    ((9, 6), (5, 2), (3, 1), (1, 1), "VALID"),
    ((10, 9), (3, 3), (2, 3), (2, 1), "SAME"),
    ((6, 7), (2, 3), (1, 2), (1, 1), [[2, 1], [0, 3]]),
    ((5, 5), (1, 1), (1, 1), (1, 1), "VALID"),
    ((4, 4), (1, 1), (2, 2), (1, 1), "SAME"),
]


def _pad(p, data_format):
    if isinstance(p, str):
        return p
    return [[0, 0], [0, 0]] + p if data_format == "NCHW" else [[0, 0]] + p + [[0, 0]]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("groups", [1, 2])
def test_adjoint_identity(case, data_format, groups, rng):
    sp, k, s, d, p = case
    cin, cout = 4, 6
    shape = (2, cin) + sp if data_format == "NCHW" else (2,) + sp + (cin,)
    x = rng.normal(size=shape)
    w = rng.normal(size=k + (cin // groups, cout))
    args = dict(strides=s, padding=_pad(p, data_format), data_format=data_format,
                dilations=d)
    fx = cdeconv.conv2d(x, w, **args)
    y = rng.normal(size=fx.shape)
    # the forward filter [k, in_c/G, out_c] is the transposed filter [k, big_c/G, small_c]
    ty = cdeconv.conv2d_transpose(y, w, x.shape, groups=groups, **args) if groups > 1 \
        else cdeconv.conv2d_backprop_input(x.shape, w, y, **args)
    lhs, rhs = np.vdot(fx, y), np.vdot(x, ty)
    assert abs(lhs - rhs) <= 1e-10 * (np.abs(fx).sum() * np.abs(y).max() + 1)


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
def test_adjoint_identity_float32(dtype, rtol, rng):
    x = rng.normal(size=(1, 8, 8, 16)).astype(dtype)
    w = rng.normal(size=(5, 5, 16, 8)).astype(dtype)
    fx = cdeconv.conv2d(x, w, 2, "SAME")
    y = rng.normal(size=fx.shape).astype(dtype)
    ty = cdeconv.conv2d_transpose(y, w, x.shape, 2, "SAME")
    lhs = np.vdot(fx.astype(np.float64), y)
    rhs = np.vdot(x.astype(np.float64), ty)
    assert abs(lhs - rhs) <= rtol * np.abs(fx.astype(np.float64) * y).sum()


def test_backprop_input_is_the_finite_difference_gradient(rng):
    x = rng.normal(size=(1, 5, 6, 2))
    w = rng.normal(size=(3, 2, 2, 3))
    y = rng.normal(size=cdeconv.conv2d(x, w, [1, 2, 1, 1], "SAME").shape)

    def loss(xx):
        return np.vdot(cdeconv.conv2d(xx, w, [1, 2, 1, 1], "SAME"), y)

    grad = cdeconv.conv2d_backprop_input(x.shape, w, y, [1, 2, 1, 1], "SAME")
    h = 1e-6
    for idx in [(0, 0, 0, 0), (0, 2, 3, 1), (0, 4, 5, 0), (0, 1, 0, 1)]:
        e = np.zeros_like(x)
        e[idx] = h
        fd = (loss(x + e) - loss(x - e)) / (2 * h)
        assert abs(fd - grad[idx]) < 1e-6 * max(1.0, abs(fd))
