"""max_pool_with_argmax and max_unpool: TensorFlow golden values (ties, NaN, -inf,
include_batch_in_index), a NumPy reference, the unpool/gather adjoint, bad input."""
import json
import pathlib

import numpy as np
import pytest

import cdeconv

DATA = pathlib.Path(__file__).resolve().parent / "data"
META = json.loads((DATA / "tf_pool_golden.json").read_text())
ARR = np.load(DATA / "tf_pool_golden.npz")


@pytest.mark.parametrize("case", META["cases"], ids=lambda c: f"{c['id']}-{c['kind']}")
def test_matches_tensorflow(case):
    a = {k: ARR[v] for k, v in case["arrays"].items()}
    out, arg = cdeconv.max_pool_with_argmax(a["input"], **case["args"])
    assert out.dtype == a["input"].dtype and arg.dtype == np.int64
    np.testing.assert_array_equal(out, a["output"])          # NaN == NaN here
    np.testing.assert_array_equal(arg, a["argmax"])


def test_golden_cover_ties_nan_and_batch_index():
    kinds = {c["kind"] for c in META["cases"]}
    assert {"ties", "nan", "inf", "dyadic"} <= kinds
    assert any(c["args"]["include_batch_in_index"] for c in META["cases"])
    assert len(META["cases"]) >= 16


def _ref_pool(x, k, s, padding):
    """Plain loops: first maximum in row-major window order (strictly-larger rule)."""
    n, h, w, c = x.shape
    if padding == "SAME":
        oh, ow = -(-h // s), -(-w // s)
        pt = max((oh - 1) * s + k - h, 0) // 2
        pl = max((ow - 1) * s + k - w, 0) // 2
    else:
        oh, ow, pt, pl = (h - k) // s + 1, (w - k) // s + 1, 0, 0
    out = np.zeros((n, oh, ow, c), x.dtype)
    arg = np.zeros((n, oh, ow, c), np.int64)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    best, where = None, None
                    for y in range(max(i * s - pt, 0), min(i * s - pt + k, h)):
                        for xx in range(max(j * s - pl, 0), min(j * s - pl + k, w)):
                            v = x[b, y, xx, ch]
                            if best is None or best < v:
                                best, where = v, (y * w + xx) * c + ch
                    out[b, i, j, ch], arg[b, i, j, ch] = best, where
    return out, arg


@pytest.mark.parametrize("k,s,padding", [(2, 2, "VALID"), (3, 2, "SAME"), (3, 1, "SAME"),
                                         (2, 3, "VALID"), (1, 1, "VALID")])
def test_against_reference_loops(k, s, padding, rng):
    x = rng.integers(-3, 4, size=(2, 7, 6, 3)).astype(np.float64)
    out, arg = cdeconv.max_pool_with_argmax(x, k, s, padding)
    rout, rarg = _ref_pool(x, k, s, padding)
    np.testing.assert_array_equal(out, rout)
    np.testing.assert_array_equal(arg, rarg)
    out_b, arg_b = cdeconv.max_pool_with_argmax(x, k, s, padding, True)
    np.testing.assert_array_equal(out_b, out)
    per_image = x[0].size
    offsets = np.broadcast_to((np.arange(2) * per_image)[:, None, None, None], arg.shape)
    np.testing.assert_array_equal(arg_b - arg, offsets)


@pytest.mark.parametrize("include_batch", [False, True])
def test_unpool_is_the_adjoint_of_gathering_at_the_switches(include_batch, rng):
    x = rng.normal(size=(2, 7, 7, 3))
    out, arg = cdeconv.max_pool_with_argmax(x, 3, 2, "SAME", include_batch)
    p = rng.normal(size=out.shape)
    up = cdeconv.max_unpool(p, arg, x.shape, include_batch)
    flat = arg.reshape(2, -1) - (np.arange(2)[:, None] * x[0].size if include_batch
                                 else 0)
    gathered = np.take_along_axis(x.reshape(2, -1), flat, axis=1)
    np.testing.assert_allclose(np.vdot(gathered, p.reshape(2, -1)), np.vdot(x, up),
                               rtol=1e-12)
    np.testing.assert_array_equal(gathered.reshape(out.shape), out)


def test_unpool_puts_values_back_and_sums_shared_switches():
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 5.0                        # the max of all four 2x2 windows
    out, arg = cdeconv.max_pool_with_argmax(x, 2, 1, "VALID")
    assert np.all(arg == 4) and np.all(out == 5)
    up = cdeconv.max_unpool(out, arg, [1, 3, 3, 1])
    assert up[0, 1, 1, 0] == 20.0 and up.sum() == 20.0    # four windows add up
    up = cdeconv.max_unpool(out, arg, [-1, 3, 3, 1])
    assert up.shape == (1, 3, 3, 1)
    assert cdeconv.max_unpool(out, arg, [3, 3]).shape == (1, 3, 3, 1)


@pytest.mark.parametrize("call,exc,words", [
    (lambda: cdeconv.max_pool_with_argmax(np.ones((4, 4, 1)), 2, 2, "SAME"),
     ValueError, ["input", "4-D"]),
    (lambda: cdeconv.max_pool_with_argmax(np.ones((1, 4, 4, 1), int), 2, 2, "SAME"),
     TypeError, ["input"]),
    (lambda: cdeconv.max_pool_with_argmax(np.ones((1, 4, 4, 1)), 0, 2, "SAME"),
     ValueError, ["ksize"]),
    (lambda: cdeconv.max_pool_with_argmax(np.ones((1, 4, 4, 1)), 2, [2, 2, 2], "SAME"),
     ValueError, ["strides"]),
    (lambda: cdeconv.max_pool_with_argmax(np.ones((1, 4, 4, 1)), 2, 2, "FULL"),
     ValueError, ["padding"]),
    (lambda: cdeconv.max_pool_with_argmax(np.ones((1, 4, 4, 1)), 2, 2,
                                          [[0, 0], [1, 1], [1, 1], [0, 0]]),
     ValueError, ["padding"]),
    (lambda: cdeconv.max_pool_with_argmax(np.ones((1, 1, 4, 1)), 3, 1, "VALID"),
     ValueError, ["height", "window"]),
    (lambda: cdeconv.max_pool_with_argmax(np.ones((1, 4, 4, 1)), 2, 2, "SAME", 1),
     TypeError, ["include_batch_in_index"]),
    (lambda: cdeconv.max_unpool(np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), 16),
                                [1, 4, 4, 1]), ValueError, ["argmax", "outside"]),
    (lambda: cdeconv.max_unpool(np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), -1),
                                [1, 4, 4, 1]), ValueError, ["argmax"]),
    (lambda: cdeconv.max_unpool(np.ones((2, 2, 2, 1)), np.zeros((2, 2, 2, 1), int),
                                [2, 4, 4, 1], True), ValueError, ["argmax[1]"]),
    (lambda: cdeconv.max_unpool(np.ones((1, 2, 2, 1)), np.zeros((1, 2, 2, 1)),
                                [1, 4, 4, 1]), TypeError, ["argmax", "integer"]),
    (lambda: cdeconv.max_unpool(np.ones((1, 2, 2, 1)), np.zeros((1, 2, 1, 1), int),
                                [1, 4, 4, 1]), ValueError, ["shape"]),
    (lambda: cdeconv.max_unpool(np.ones((1, 2, 2, 1)), np.zeros((1, 2, 2, 1), int),
                                [1, 4, 4, 2]), ValueError, ["channels"]),
    (lambda: cdeconv.max_unpool(np.ones((1, 2, 2, 1)), np.zeros((1, 2, 2, 1), int),
                                [2, 4, 4, 1]), ValueError, ["batch"]),
    (lambda: cdeconv.max_unpool(np.ones((1, 2, 2, 1)), np.zeros((1, 2, 2, 1), int),
                                [4, 4, 1]), ValueError, ["output_shape"]),
])
def test_bad_input(call, exc, words):
    with pytest.raises(exc) as err:
        call()
    for word in words:
        assert word in str(err.value), str(err.value)


def test_empty_inputs():
    out, arg = cdeconv.max_pool_with_argmax(np.ones((0, 4, 4, 2)), 2, 2, "SAME")
    assert out.shape == arg.shape == (0, 2, 2, 2)
    assert cdeconv.max_unpool(out, arg, [-1, 4, 4, 2]).shape == (0, 4, 4, 2)
