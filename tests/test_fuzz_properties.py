"""Property and fuzz tests of the whole public API (issue 7): whatever the input, a clear
ValueError/TypeError or the exact result.

* valid calls, drawn with every rank, layout, padding form, stride, dilation, group
  count, kernel path (GEMM, 1x1 direct, kernel == stride, the direct transposed kernel,
  1-byte chunks) and every equivalent way of spelling the arguments (lists, tuples,
  ndarrays, NumPy ints, N or N+2 entries, lowercase) and of passing the arrays (Fortran,
  strided, reversed, byte-swapped, read-only, misaligned, ``out=``), are compared
  bitwise with ``cdeconv._reference`` on dyadic data (exact in any summation order);
* invalid calls (one argument broken from a catalogue) must raise exactly the
  documented exception type, naming the argument;
* random byte strings through the fuzz harness ``fuzz/fuzz_api.py`` (the same decoder
  atheris drives), and every input kept in ``fuzz/corpus``;
* the malformed-input checklist of ECOSYSTEM.md section 2e, case by case, for every op;
* regressions for the bugs found (``xfail(strict=True)`` while open).

Bounded for CI: the whole file runs in well under a minute.
"""
import contextlib
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdeconv
from cdeconv import _driver, _reference

from conftest import dyadic

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ_DIR = os.path.join(os.path.dirname(HERE), "fuzz")
sys.path.insert(0, FUZZ_DIR)
import fuzz_api  # noqa: E402  (the atheris harness: decoder + oracle)

LAYOUT = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
TRANSPOSE = {1: cdeconv.conv1d_transpose, 2: cdeconv.conv2d_transpose,
             3: cdeconv.conv3d_transpose}
FORWARD = {1: cdeconv.conv1d, 2: cdeconv.conv2d, 3: cdeconv.conv3d}
SETTINGS = dict(deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
    HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _restore_globals():
    chunk = _driver.CHUNK_BYTES
    yield
    _driver.CHUNK_BYTES = chunk
    cdeconv.set_num_threads(None)


def _shape(batch, spatial, c, cf):
    return (batch, c) + tuple(spatial) if cf else (batch,) + tuple(spatial) + (c,)


def _full_pads(pairs, cf):
    pairs = [list(p) for p in pairs]
    return [[0, 0], [0, 0]] + pairs if cf else [[0, 0]] + pairs + [[0, 0]]


def _full_ints(vals, cf):
    return [1, 1] + list(vals) if cf else [1] + list(vals) + [1]


@contextlib.contextmanager
def address_space_limit(extra_gib=4):
    """Lower the soft RLIMIT_AS to the current size + extra_gib while a huge request is
    tested: if cdeconv lets it through to an allocator, the allocation fails instead of
    touching terabytes (whatever the machine's overcommit policy)."""
    try:
        import resource
    except ImportError:       # not POSIX: run unguarded
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        with open("/proc/self/statm") as fh:
            vm = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        vm = 8 << 30
    lim = vm + (extra_gib << 30)
    if hard != resource.RLIM_INFINITY:
        lim = min(lim, hard)
    resource.setrlimit(resource.RLIMIT_AS, (lim, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# ------------------------------------------------------------------ valid calls

def _array_view(draw, a):
    """a, or an odd-but-equivalent view/copy of it (the result must not change)."""
    kind = draw(st.sampled_from(["plain", "fortran", "strided", "reversed", "byteswap",
                                 "readonly", "misaligned", "moved"]))
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided":
        return np.repeat(a, 2, axis=-1)[..., ::2]
    if kind == "reversed":
        return np.flip(np.flip(a, 0).copy(), 0)
    if kind == "byteswap":
        return a.astype(a.dtype.newbyteorder(">"))
    if kind == "readonly":
        b = a.copy()
        b.setflags(write=False)
        return b
    if kind == "misaligned":
        return fuzz_api.misaligned(a)
    if kind == "moved":
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, -1, 0)), 0, -1)
    return a


def _ints_form(draw, vals, cf):
    forms = [list(vals), tuple(vals), np.array(vals, np.int64), np.array(vals, np.int32),
             [np.int16(v) for v in vals], _full_ints(vals, cf)]
    if len(set(vals)) == 1:
        forms += [vals[0], [vals[0]], np.int64(vals[0])]
    return draw(st.sampled_from(forms))


def _pad_form(draw, mode, pairs, cf):
    if mode != "EXPLICIT":
        return draw(st.sampled_from([mode, mode.lower(), mode.capitalize()]))
    n = len(pairs)
    return draw(st.sampled_from([
        [list(p) for p in pairs], _full_pads(pairs, cf), tuple(tuple(p) for p in pairs),
        np.array(pairs, np.int64).reshape(n, 2),
        [np.array(p, np.int32) for p in _full_pads(pairs, cf)]]))


@st.composite
def valid_calls(draw):
    """(fn, args, kwargs, expected) for one valid call of a public conv op."""
    op = draw(st.sampled_from(["t1", "t2", "t3", "bi", "bf", "f1", "f2", "f3"]))
    n = {"bi": 2, "bf": 2}.get(op, int(op[1]) if op[1].isdigit() else 2)
    transposed = op[0] == "t" or op == "bi"
    cf = draw(st.booleans())
    fmt = LAYOUT[n][cf]
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    groups = 1 if op in ("bi", "bf") else draw(st.sampled_from([1, 1, 2, 3]))
    path = draw(st.sampled_from(["general", "general", "1x1", "tiles", "direct"]))
    kmax = 3 if n == 3 else 4
    k = tuple(draw(st.integers(1, kmax)) for _ in range(n))
    s = tuple(draw(st.integers(1, 3)) for _ in range(n))
    d = tuple(draw(st.sampled_from([1, 1, 2])) for _ in range(n))
    mode = draw(st.sampled_from(["SAME", "VALID", "EXPLICIT"]))
    pairs = [[draw(st.integers(0, 3)), draw(st.integers(0, 3))] for _ in range(n)]
    cs_g = draw(st.integers(1, 3))
    cb_g = draw(st.sampled_from([1, 2, 3]))
    if path == "1x1":
        k, s, mode = (1,) * n, (1,) * n, "VALID"
    elif path == "tiles":
        s, d = k, (1,) * n
    elif path == "direct":              # channels-last, <= 2 in, >= 32 out per group
        cs_g, cb_g = draw(st.sampled_from([1, 2])), 32
    pairs = pairs if mode == "EXPLICIT" else None
    padding_canon = _full_pads(pairs, cf) if pairs else mode
    batch = draw(st.sampled_from([1, 2, 0, 3]))
    smax = 4 if n == 3 else 6
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    special = draw(st.booleans()) and draw(st.booleans())

    def data(shape, special_ok=True):
        a = dyadic(rng, shape, dtype)
        if special and special_ok and a.size:
            a.flat[rng.integers(0, a.size, 2)] = [np.nan, np.inf]
        return a

    kwargs = {}
    if transposed:
        small = tuple(draw(st.integers(0 if draw(st.booleans()) else 1, smax))
                      for _ in range(n))
        ranges = cdeconv.valid_output_sizes(list(small), k, s, pairs or mode, d)
        if any(len(r) == 0 for r in ranges):
            small = tuple(max(v, 1) for v in small)
            mode, pairs, padding_canon = "SAME", None, "SAME"
            ranges = cdeconv.valid_output_sizes(list(small), k, s, "SAME", d)
        big = [draw(st.sampled_from(list(r))) for r in ranges]
        x = data(_shape(batch, small, groups * cs_g, cf))
        w = data(k + (cb_g, groups * cs_g))
        full = _shape(batch, big, groups * cb_g, cf)
        want = _reference.conv_transpose_nd(n, x, w, full, s, padding_canon, fmt, d, groups)
        shape_form = draw(st.sampled_from([
            list(full), tuple(full), list(big), [-1] + list(full[1:]),
            [None] + list(full[1:]), np.array(full), np.array(big, np.int32),
            [np.int64(v) for v in big]]))
        if op == "bi":
            fn = cdeconv.conv2d_backprop_input
            args = [shape_form, _array_view(draw, w), _array_view(draw, x),
                    _ints_form(draw, s, cf), _pad_form(draw, mode, pairs, cf)]
        else:
            fn = TRANSPOSE[n]
            args = [_array_view(draw, x), _array_view(draw, w), shape_form,
                    _ints_form(draw, s, cf), _pad_form(draw, mode, pairs, cf)]
            kwargs["groups"] = draw(st.sampled_from([groups, np.int64(groups)]))
    else:
        big = tuple(draw(st.integers(0 if draw(st.booleans()) else 1, smax + 2))
                    for _ in range(n))
        cin = groups * (1 if path == "direct" else cb_g)
        x = data(_shape(batch, big, cin, cf))
        wshape = k + (cin // groups, groups * cs_g)
        try:
            probe = _reference.conv_nd(n, x, np.zeros(wshape, dtype), s, padding_canon,
                                       fmt, d)
        except ValueError:              # kernel larger than the input: use SAME
            mode, pairs, padding_canon = "SAME", None, "SAME"
            probe = _reference.conv_nd(n, x, np.zeros(wshape, dtype), s, "SAME", fmt, d)
        if op == "bf":
            dy = data(probe.shape, x.size > 0)
            want = _reference.conv_backprop_filter_nd(2, x, wshape, dy, s, padding_canon,
                                                      fmt, d)
            fn = cdeconv.conv2d_backprop_filter
            args = [_array_view(draw, x),
                    draw(st.sampled_from([list(wshape), tuple(wshape), np.array(wshape)])),
                    _array_view(draw, dy), _ints_form(draw, s, cf),
                    _pad_form(draw, mode, pairs, cf)]
        else:
            # non-finite filters on an empty input: known bug, xfailed below
            w = data(wshape, x.size > 0)
            want = _reference.conv_nd(n, x, w, s, padding_canon, fmt, d, groups)
            fn = FORWARD[n]
            args = [_array_view(draw, x), _array_view(draw, w), _ints_form(draw, s, cf),
                    _pad_form(draw, mode, pairs, cf)]
            kwargs["groups"] = draw(st.sampled_from([None, groups]))
    kwargs["data_format"] = draw(st.sampled_from([fmt, fmt.lower()]))
    kwargs["dilations"] = _ints_form(draw, d, cf) if max(d) > 1 or draw(st.booleans()) \
        else None
    out = draw(st.sampled_from(["none", "nan", "misaligned"]))
    if out != "none":
        o = np.full(want.shape, np.nan, want.dtype)
        kwargs["out"] = fuzz_api.misaligned(o) if out == "misaligned" else o
    threads = draw(st.sampled_from([None, 1, 2, 3]))
    chunk = draw(st.sampled_from([None, None, 1, 300]))
    return fn, args, kwargs, want, threads, chunk


@settings(max_examples=400, **SETTINGS)
@given(valid_calls())
def test_valid_calls_are_exact(call):
    fn, args, kwargs, want, threads, chunk = call
    cdeconv.set_num_threads(threads)
    if chunk is not None:
        _driver.CHUNK_BYTES = chunk
    got = fn(*args, **kwargs)
    if "out" in kwargs:
        assert got is kwargs["out"]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- invalid calls

def _base(op, n=2, cf=False, dtype=np.float32):
    """A small valid call of op: (fn, args dict in positional order, names)."""
    fmt = LAYOUT[n][cf]
    x_small = np.ones(_shape(1, (3,) * n, 4, cf), dtype)
    x_big = np.ones(_shape(1, (5,) * n, 4, cf), dtype)
    if op == "transpose":
        return TRANSPOSE[n], dict(input=x_small, filters=np.ones((2,) * n + (2, 4), dtype),
                                  output_shape=_shape(1, (6,) * n, 2, cf), strides=2,
                                  padding="SAME", data_format=fmt)
    if op == "forward":
        return FORWARD[n], {"input": x_big, "filters": np.ones((2,) * n + (4, 2), dtype),
                            ("stride" if n == 1 else "strides"): 1, "padding": "SAME",
                            "data_format": fmt}
    if op == "backprop_input":
        return cdeconv.conv2d_backprop_input, dict(
            input_sizes=_shape(1, (6, 6), 2, cf), filter=np.ones((2, 2, 2, 4), dtype),
            out_backprop=x_small, strides=2, padding="SAME", data_format=fmt)
    return cdeconv.conv2d_backprop_filter, dict(
        input=x_big, filter_sizes=[2, 2, 4, 3],
        out_backprop=np.ones(_shape(1, (5, 5), 3, cf), dtype), strides=1, padding="SAME",
        data_format=fmt)


def _array_breakers(a, other_dtype):
    """(value, exception) breaking an array argument."""
    return [
        (a.astype(np.int32), TypeError), (a.astype(np.float16), TypeError),
        (a.astype(np.complex64), TypeError), (a.astype(bool), TypeError),
        (a.astype(object), TypeError), (a.astype(np.longdouble), TypeError),
        (a.astype(other_dtype), TypeError), (None, TypeError), ("abc", TypeError),
        ([[1.0, 2.0], [3.0]], TypeError), (a[..., None], ValueError),
        (a.sum(axis=-1), ValueError), (np.float32(1.0), ValueError),
    ]


def _ints_breakers(n):
    return [(0, ValueError), (-1, ValueError), (-(2**63), ValueError), (True, TypeError),
            (np.True_, TypeError), (2.0, TypeError), ([2.0] * n, TypeError),
            ("2", TypeError), (b"\x02", TypeError), (1 + 0j, TypeError),
            ([1] * (n + 1), ValueError), ([2] * (n + 2), ValueError),
            ([[1]] * n, TypeError), (np.ones((n, 1), np.int64), ValueError),
            (np.array(2), ValueError), ([2**31] * n, ValueError), (2**100, ValueError),
            ([], ValueError), ([None] * n, TypeError)]


def _pad_breakers(n):
    return [("FULL", ValueError), ("", ValueError), (None, ValueError), (3, TypeError),
            (b"SAME", TypeError), ([], ValueError), ([[0, 0]] * (n + 1), ValueError),
            ([[0, 0, 0]] * n, ValueError), ([0] * (2 * n), TypeError),
            ([[-1, 0]] * n, ValueError), ([[0.5, 0]] * n, TypeError),
            ([[True, 0]] * n, TypeError), ([[1, 1]] * (n + 2), ValueError),
            ([[2**31, 0]] * n, ValueError), (np.zeros((n, 2)), TypeError)]


def _shape_breakers(full, n, cf, batch=1):
    c_at = 1 if cf else n + 1
    sp = 2 if cf else 1

    def with_(i, v):
        f = list(full)
        f[i] = v
        return f
    return [(with_(0, batch + 1), ValueError), (with_(0, -2), ValueError),
            (with_(c_at, full[c_at] + 1), ValueError), (with_(c_at, None), TypeError),
            (with_(0, True), TypeError), (with_(sp, float(full[sp])), TypeError),
            (with_(sp, -1), ValueError), (with_(sp, -(2**63)), ValueError),
            (with_(sp, 2**40), ValueError), (with_(sp, full[sp] + 7), ValueError),
            ([2**63] * n, ValueError), (list(full) + [1], ValueError),
            (list(full)[:-1], ValueError), ("1,2", TypeError), (5, TypeError),
            (np.array(full, np.float64), TypeError), ([str(v) for v in full], TypeError)]


def invalid_catalogue():
    """[(id, fn, kwargs, exception, word the message must contain)]."""
    cases = []

    def add(tag, op, n, cf, arg, value, exc, word=None, also=None):
        fn, kw = _base(op, n, cf)
        kw = dict(kw)
        kw[arg] = value
        kw.update(also or {})
        cases.append((f"{tag}-{arg}-{len(cases)}", fn, kw, exc, word or arg))

    for op, ranks in (("transpose", (1, 2, 3)), ("forward", (1, 2, 3)),
                      ("backprop_input", (2,)), ("backprop_filter", (2,))):
        for n in ranks:
            for cf in (False, True):
                tag = f"{op}{n}d-{'cf' if cf else 'cl'}"
                fn, kw = _base(op, n, cf)
                names = list(kw)
                xname, wname = names[0], names[1]
                if op == "backprop_input":
                    xname, wname = "out_backprop", "filter"
                other = np.float64
                for arg in (xname, wname):
                    if op == "backprop_filter" and arg == "filter_sizes":
                        continue
                    for v, exc in _array_breakers(kw[arg], other):
                        if op == "backprop_input" and exc is ValueError:
                            continue      # names the wrong argument: xfail below
                        add(tag, op, n, cf, arg, v, exc, None if exc is TypeError
                            and v is not None and not isinstance(v, (str, list))
                            and getattr(v, "dtype", None) == other else arg)
                sname = "stride" if (op == "forward" and n == 1) else "strides"
                for v, exc in _ints_breakers(n):
                    add(tag, op, n, cf, sname, v, exc)
                for v, exc in _ints_breakers(n):
                    if v is None or (isinstance(v, list) and v and v[0] is None):
                        continue
                    add(tag, op, n, cf, "dilations", v, exc)
                for v, exc in _pad_breakers(n):
                    add(tag, op, n, cf, "padding", v, exc)
                for v in ("XYZ", None, 3, LAYOUT[n][cf].encode(), LAYOUT[n % 3 + 1][cf],
                          " " + LAYOUT[n][cf]):
                    add(tag, op, n, cf, "data_format", v, ValueError)
                if op in ("transpose", "backprop_input"):
                    sname = "output_shape" if op == "transpose" else "input_sizes"
                    for v, exc in _shape_breakers(list(kw[sname]), n, cf):
                        add(tag, op, n, cf, sname, v, exc)
                if op == "backprop_filter":
                    for v, exc in [(None, TypeError), ("2243", TypeError),
                                   ([2, 2, 4], ValueError), ([2, 2, 4, 3, 1], ValueError),
                                   ([2, 2, 4, -3], ValueError), ([0, 2, 4, 3], ValueError),
                                   ([2, 2, 4, 0], ValueError), ([2, 2, 4.0, 3], TypeError),
                                   ([True, 2, 4, 3], TypeError), ([2, 2, 3, 3], ValueError),
                                   ([2, 2, 4, 4], ValueError),
                                   ([2, 2, 4, 2**40], ValueError),
                                   ([2**20, 2**20, 4, 3], ValueError),
                                   (np.ones((2, 2), np.int64), ValueError),
                                   (np.array([2.0, 2, 4, 3]), TypeError)]:
                        word = None
                        if isinstance(v, list) and v == [2, 2, 4, 4]:
                            word = "out_backprop"
                        elif isinstance(v, list) and max(map(abs, v)) >= 2**20:
                            word = "BLAS limit"
                        add(tag, op, n, cf, "filter_sizes", v, exc, word)
                if op in ("transpose", "forward") and not cf:
                    for v, exc in [(0, ValueError), (-1, ValueError), (True, TypeError),
                                   (1.0, TypeError), ("1", TypeError), (2**70, ValueError),
                                   (3, ValueError)]:
                        add(tag, op, n, cf, "groups", v, exc)
                if op == "transpose" and not cf:
                    add(tag, op, n, cf, "output_padding", 1, ValueError)
                # out=
                try:
                    want = fn(**kw)
                except Exception as exc:  # pragma: no cover - the base must be valid
                    raise AssertionError(f"base call {tag} failed: {exc}")
                bad_outs = [
                    (np.empty(want.shape + (1,), want.dtype), ValueError, "shape"),
                    (np.empty(want.shape, np.float64), TypeError, "dtype"),
                    (np.empty(want.shape[:-1] + (2 * want.shape[-1],),
                              want.dtype)[..., ::2], ValueError, "C-contiguous"),
                    (np.empty(want.shape, want.dtype.newbyteorder(">")),
                     (ValueError, TypeError), "out"),
                    (want.tolist(), TypeError, "out"),
                    (np.empty(want.shape, np.int64), TypeError, "dtype"),
                ]
                ro = np.empty(want.shape, want.dtype)
                ro.setflags(write=False)
                bad_outs.append((ro, ValueError, "read-only"))
                for v, exc, word in bad_outs:
                    add(tag, op, n, cf, "out", v, exc, word)
                x0 = kw[xname]
                if x0.size >= want.size:
                    add(tag, op, n, cf, "out", x0.reshape(-1)[:want.size].reshape(
                        want.shape), ValueError, "overlap", also={xname: x0})
                add(tag, op, n, cf, "bogus_keyword", 1, TypeError, "bogus_keyword")
    return cases


INVALID = invalid_catalogue()


def test_invalid_catalogue_is_large():
    assert len(INVALID) > 1000


@settings(max_examples=800, **SETTINGS)
@given(st.sampled_from(INVALID))
def test_invalid_calls_raise_the_documented_error(case):
    _, fn, kwargs, exc, word = case
    with address_space_limit():
        with pytest.raises(Exception) as err:
            fn(**kwargs)
    assert type(err.value) in (ValueError, TypeError), \
        f"{type(err.value).__name__}: {err.value}"
    assert isinstance(err.value, exc), f"{type(err.value).__name__}: {err.value}"
    assert word in str(err.value), str(err.value)


# --------------------------------------------------------- the fuzz harness itself

@settings(max_examples=1500, **SETTINGS)
@given(st.binary(max_size=160))
def test_random_bytes_through_the_fuzz_harness(data):
    """The atheris decoder on hypothesis' bytes: unexpected exceptions, crashes and
    wrong results raise fuzz_api.Bad (known, separately xfailed issues are counted).
    Valid calls with multi-GiB outputs (explicit padding up to 2**31 - 1 is valid) fail
    to allocate under the address-space cap instead of running for seconds."""
    with address_space_limit(1):
        fuzz_api.check_one(data)


def _corpus():
    d = os.path.join(FUZZ_DIR, "corpus")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


@pytest.mark.parametrize("name", _corpus())
def test_fuzz_corpus_regressions(name):
    with open(os.path.join(FUZZ_DIR, "corpus", name), "rb") as fh:
        data = fh.read()
    with address_space_limit(1):
        fuzz_api.check_one(data)


def test_fuzz_corpus_is_present():
    assert len(_corpus()) >= 5


# ------------------------------------------- ECOSYSTEM.md 2e checklist, every op

def _all_ops():
    for op, ranks in (("transpose", (1, 2, 3)), ("forward", (1, 2, 3)),
                      ("backprop_input", (2,)), ("backprop_filter", (2,))):
        for n in ranks:
            yield pytest.param(op, n, id=f"{op}{n}d")


ALL_OPS = list(_all_ops())


def _call(op, n, cf=False, **changes):
    fn, kw = _base(op, n, cf)
    kw.update(changes)
    return fn(**kw)


def _names(op):
    return {"transpose": ("input", "filters"), "forward": ("input", "filters"),
            "backprop_input": ("out_backprop", "filter"),
            "backprop_filter": ("input", "out_backprop")}[op]


@pytest.mark.parametrize("op,n", ALL_OPS)
def test_checklist_ranks(op, n):
    xname, wname = _names(op)
    fn, kw = _base(op, n)
    for name in (xname, wname):
        for bad in (kw[name][None], kw[name][0], np.float32(1)):
            # backprop_input's messages said input/filters (xfail below);
            # backprop_filter checks out_backprop's whole shape
            word = {"out_backprop": "out_backprop must", "filter": "filters must"}.get(
                name, f"{name} must be {n + 2}-D") if op != "backprop_input" else \
                f"({name}|{'input' if name == xname else 'filters'}) must be {n + 2}-D"
            with pytest.raises(ValueError, match=word):
                _call(op, n, **{name: bad})
    if op in ("transpose", "backprop_input"):
        sname = "output_shape" if op == "transpose" else "input_sizes"
        for length in (n - 1, n + 1, n + 3):
            with pytest.raises(ValueError, match=sname):
                _call(op, n, **{sname: [1] * length})


@pytest.mark.parametrize("op,n", ALL_OPS)
@pytest.mark.parametrize("cf", [False, True])
def test_checklist_strides_and_dilations(op, n, cf):
    sname = "stride" if (op == "forward" and n == 1) else "strides"
    for name in (sname, "dilations"):
        chan = [1, 2] + [1] * n if cf else [1] * (n + 1) + [2]
        for bad, exc in [([1] * (n + 1), ValueError), ([2] + [1] * (n + 1), ValueError),
                         (chan, ValueError), (0, ValueError),
                         (-3, ValueError), ([1] * (n - 1) + [0], ValueError),
                         (True, TypeError), ([True] * n, TypeError), (1.0, TypeError),
                         ([1.5] * n, TypeError)]:
            if n == 1 and isinstance(bad, list) and len(bad) == 2 and bad == [1, 1]:
                continue
            with pytest.raises(exc, match=name):
                _call(op, n, cf, **{name: bad})


@pytest.mark.parametrize("op,n", [p for p in ALL_OPS if p.values[0] in
                                  ("transpose", "backprop_input", "backprop_filter")])
def test_checklist_shape_entries_are_nonnegative_ints(op, n):
    sname = {"transpose": "output_shape", "backprop_input": "input_sizes",
             "backprop_filter": "filter_sizes"}[op]
    fn, kw = _base(op, n)
    full = list(kw[sname])
    for i in range(len(full)):
        for bad, exc in [(-1 if i else -2, ValueError), (2.0, TypeError),
                         (True, TypeError), ("2", TypeError), (np.float64(2), TypeError)]:
            v = list(full)
            v[i] = bad
            with pytest.raises(exc, match=sname):
                _call(op, n, **{sname: v})


@pytest.mark.parametrize("op,n", ALL_OPS)
def test_checklist_channel_agreement_and_groups(op, n):
    xname, wname = _names(op)
    fn, kw = _base(op, n)
    if op == "backprop_filter":
        with pytest.raises(ValueError, match="divide"):
            _call(op, n, filter_sizes=[2, 2, 3, 3])
        with pytest.raises(ValueError, match="out_backprop"):
            _call(op, n, filter_sizes=[2, 2, 4, 5])
        return
    w = kw[wname]
    wrong = np.ones(w.shape[:-1] + (w.shape[-1] + 1,), w.dtype) if op != "forward" else \
        np.ones(w.shape[:-2] + (3, w.shape[-1]), w.dtype)
    with pytest.raises(ValueError, match="channels"):
        _call(op, n, **{wname: wrong})
    if op == "transpose":
        full = list(kw["output_shape"])
        full[-1] += 1
        with pytest.raises(ValueError, match="channels"):
            _call(op, n, output_shape=full)
        with pytest.raises(ValueError, match="groups"):
            _call(op, n, groups=3)          # 4 input channels
    if op == "forward":
        with pytest.raises(ValueError, match="groups"):
            _call(op, n, groups=3)
        with pytest.raises(ValueError, match="divisible"):  # 2 groups, 3 outputs
            _call(op, n, filters=np.ones((2,) * n + (2, 3), np.float32))


@pytest.mark.parametrize("op,n", [p for p in ALL_OPS if p.values[0] in
                                  ("transpose", "backprop_input")])
def test_checklist_reachable_output_size(op, n):
    sname = "output_shape" if op == "transpose" else "input_sizes"
    for size in (4, 8, 13):      # 3 * 2 -> only 5 and 6 map back with SAME
        with pytest.raises(ValueError, match="valid"):
            _call(op, n, **{sname: [size] * n})
    for size in (5, 6):
        assert _call(op, n, **{sname: [size] * n}).shape[1:-1] == (size,) * n


@pytest.mark.parametrize("op,n", ALL_OPS)
def test_checklist_overflow_and_blas_limits(op, n):
    """Sizes beyond int32/int64 are refused in Python before any allocation."""
    with address_space_limit():
        for big in (2**31, 2**32 + 3, 2**63, 2**64 + 1, 2**200):
            with pytest.raises(ValueError):
                _call(op, n, dilations=big)
            with pytest.raises(ValueError):
                _call(op, n, padding=[[big, 0]] * n)
            if op in ("transpose", "backprop_input"):
                sname = "output_shape" if op == "transpose" else "input_sizes"
                with pytest.raises(ValueError):
                    _call(op, n, **{sname: [big] * n})
        if op == "backprop_filter":
            for fs in ([2, 2, 4, 2**31], [2**16, 2**16, 4, 3], [2**40, 1, 4, 3]):
                with pytest.raises(ValueError, match="BLAS limit|exceeds|too large"):
                    _call(op, n, filter_sizes=fs)
        if op == "transpose":
            # SAME with a huge stride: consistent, but more pixels than BLAS' int
            x = np.ones((1,) + (2,) * n + (1,), np.float32)
            w = np.ones((1,) * n + (1, 1), np.float32)
            with pytest.raises(ValueError, match="BLAS limit|too large"):
                TRANSPOSE[n](x, w, None, 2**31 - 1)


@pytest.mark.parametrize("op,n", ALL_OPS)
@pytest.mark.parametrize("cf", [False, True])
def test_checklist_zero_batch_gives_an_empty_result(op, n, cf):
    fn, kw = _base(op, n, cf)
    xname, wname = _names(op)
    for name in ((xname, "out_backprop") if op == "backprop_filter" else (xname,)):
        a = kw[name]
        kw[name] = np.ones((0,) + a.shape[1:], a.dtype)
    if op == "transpose":
        kw["output_shape"] = [-1] + list(kw["output_shape"][1:])
    if op == "backprop_input":
        kw["input_sizes"] = [-1] + list(kw["input_sizes"][1:])
    got = fn(**kw)
    if op == "backprop_filter":
        assert got.shape == (2, 2, 4, 3) and np.all(got == 0)
    else:
        assert got.shape[0] == 0


@pytest.mark.parametrize("op,n", ALL_OPS)
def test_checklist_zero_channels_or_kernel_is_refused(op, n):
    xname, wname = _names(op)
    fn, kw = _base(op, n)
    if op == "backprop_filter":
        bad = [dict(filter_sizes=[0, 2, 4, 3]), dict(filter_sizes=[2, 2, 4, 0]),
               dict(input=np.ones((1, 5, 5, 0), np.float32),
                    filter_sizes=[2, 2, 0, 3])]
    else:
        w = kw[wname]
        x = kw[xname]
        bad = [{wname: np.ones((0,) + w.shape[1:], w.dtype)},
               {wname: np.ones(w.shape[:-2] + (0, w.shape[-1]), w.dtype)},
               {xname: np.ones(x.shape[:-1] + (0,), x.dtype),
                wname: np.ones(w.shape[:-1] + (0,), w.dtype) if op != "forward" else
                np.ones(w.shape[:-2] + (0, w.shape[-1]), w.dtype)}]
    for change in bad:
        with pytest.raises(ValueError, match="kernel|channel"):
            _call(op, n, **change)


def _empty_cases():
    """(id, fn, kwargs) calls whose input is empty but whose output is not."""
    cases = []
    for n in (1, 2, 3):
        for cf in (False, True):
            fmt = LAYOUT[n][cf]
            for cs, cb in ((3, 2), (1, 32)):            # GEMM path / direct kernel
                x = np.ones(_shape(2, (0,) + (2,) * (n - 1), cs, cf))
                w = np.ones((3,) * n + (cb, cs))
                sizes = cdeconv.valid_output_sizes([0] + [2] * (n - 1), [3] * n, 2, "VALID")
                big = [r[-1] for r in sizes]
                cases.append((f"transpose{n}d-{fmt}-{cb}", TRANSPOSE[n],
                              dict(input=x, filters=w, output_shape=big, strides=2,
                                   padding="VALID", data_format=fmt)))
            x = np.ones(_shape(2, (0,) + (3,) * (n - 1), 2, cf))
            cases.append((f"forward{n}d-{fmt}", FORWARD[n],
                          {"input": x, "filters": np.ones((2,) * n + (2, 3)),
                           ("stride" if n == 1 else "strides"): 1,
                           "padding": [[2, 2]] * n, "data_format": fmt}))
    x = np.ones((2, 0, 3, 2))
    cases.append(("backprop_filter-spatial", cdeconv.conv2d_backprop_filter,
                  dict(input=x, filter_sizes=[2, 2, 2, 3],
                       out_backprop=np.ones((2, 3, 4, 3)), strides=1,
                       padding=[[0, 0], [2, 2], [1, 1], [0, 0]])))
    cases.append(("backprop_filter-batch", cdeconv.conv2d_backprop_filter,
                  dict(input=np.ones((0, 4, 4, 2)), filter_sizes=[2, 2, 2, 3],
                       out_backprop=np.ones((0, 4, 4, 3)), strides=1, padding="SAME")))
    return cases


@pytest.mark.parametrize("case", _empty_cases(), ids=lambda c: c[0])
def test_checklist_outputs_are_always_initialised(case):
    _, fn, kw = case
    want = fn(**kw)
    assert want.size > 0 and np.all(want == 0), want
    out = np.full(want.shape, np.nan, want.dtype)
    assert fn(**kw, out=out) is out
    assert np.all(out == 0)


def test_checklist_huge_consistent_outputs_are_refused_before_allocation():
    """A consistent call needing > 2**60 bytes: cdeconv's own ValueError, with the size."""
    x = np.ones((64, 1, 1, 1), np.float32)
    w = np.ones((1, 1, 2**22, 1), np.float32)          # 16 MiB filter, 2**22 outputs
    with address_space_limit():
        with pytest.raises((ValueError, MemoryError), match="bytes"):
            cdeconv.conv2d_transpose(x, w, None, [46340, 46340])   # ~2**61 bytes


def test_checklist_memory_errors_are_cdeconvs_own():
    """An output that cannot be allocated: a MemoryError naming the size."""
    x = np.ones((1, 8, 2), np.float32)
    w = np.ones((4, 2, 2), np.float32)
    with address_space_limit(6):
        with pytest.raises(MemoryError, match="GiB"):
            # explicit padding 2**31-1: output width 2**30 x 2 channels, 8 GiB
            cdeconv.conv1d(x, w, 4, [[2**31 - 1, 2**31 - 1]])


def test_a_long_row_needs_no_row_sized_column_buffer():
    """Explicit padding 2**26 gives a 2**25-wide output row (128 MiB) whose im2col row
    took 1 GiB when a chunk was at least one whole row; split into column blocks it
    runs in a 1 GiB address-space margin."""
    x = np.ones((1, 8, 2), np.float32)
    w = np.ones((4, 2, 1), np.float32)
    with address_space_limit(1):
        y = cdeconv.conv1d(x, w, 4, [[2**26, 2**26]])
    assert y.shape == (1, 2**25 + 2, 1)
    inside = np.flatnonzero(y[0, :, 0])          # the windows that reach the 8 inputs
    assert inside.tolist() == [2**24, 2**24 + 1]
    np.testing.assert_array_equal(y[0, inside, 0], [8.0, 8.0])   # 4 taps x 2 channels


# ------------------------------------------------------------------ bugs found
# Found by this file and fuzz/fuzz_api.py on 2026-11-23. The first seven were fixed in
# 95814b7 and stay as regression tests; the open ones are xfail(strict=True).

def test_unpool_validates_switches_even_for_an_empty_output():
    """max_unpool returned early for an empty output (before validating argmax):
    out-of-image switches were accepted and the pooled values dropped."""
    pooled = np.ones((1, 2, 2, 1), np.float32)
    with pytest.raises(ValueError, match="argmax"):
        cdeconv.max_unpool(pooled, np.full((1, 2, 2, 1), -5), [1, 0, 3, 1])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_forward_conv_of_empty_input_propagates_nonfinite_filter(n):
    """A forward conv of an input with an empty axis (output non-empty through
    explicit padding) wrote 0 where the padded window gives 0 * NaN/Inf = NaN."""
    x = np.ones((1,) + (0,) + (3,) * (n - 1) + (2,))
    w = np.ones((2,) * n + (2, 3))
    w[(0,) * n + (0, 0)] = np.nan
    args = (1, [[1, 1]] * n)
    got = FORWARD[n](x, w, *args)
    want = _reference.conv_nd(n, x, w, *args)
    assert np.isnan(want).any()
    np.testing.assert_array_equal(got, want)


def test_outputs_larger_than_memory_are_refused_by_cdeconv():
    """Only outputs > 2**60 bytes were refused: an 8 TiB one reached np.empty (numpy's
    own MemoryError, or with overcommit an allocation and a memset)."""
    x = np.ones((1, 1, 1, 1), np.float32)
    w = np.ones((1, 1, 1024, 1), np.float32)
    with address_space_limit():
        with pytest.raises((ValueError, MemoryError)) as err:
            cdeconv.conv2d_transpose(x, w, None, [46340, 46340])   # 8 TiB
    assert not type(err.value).__module__.startswith("numpy"), repr(err.value)


def test_huge_broadcast_views_are_refused_before_copying():
    """A zero-stride view was copied before any size check (numpy's MemoryError,
    even when another argument was invalid)."""
    x = np.broadcast_to(np.float32(0), (2**20, 2**20, 1, 3))
    with address_space_limit():
        with pytest.raises((ValueError, MemoryError)) as err:
            cdeconv.conv2d(x, np.ones((3, 3, 3, 2), np.float32), 1, "SAME")
    assert not type(err.value).__module__.startswith("numpy"), repr(err.value)


def test_zero_d_output_shape_error_names_the_argument():
    """A 0-d output_shape array raised numpy's 'iteration over a 0-d array'."""
    with pytest.raises(TypeError, match="output_shape"):
        cdeconv.conv2d_transpose(np.ones((1, 3, 3, 1)), np.ones((3, 3, 1, 1)),
                                 np.array(6), 2)


def test_backprop_input_rank_errors_name_its_arguments():
    """conv2d_backprop_input's rank errors named input/filters, not its arguments."""
    w = np.ones((2, 2, 2, 4), np.float32)
    dy = np.ones((1, 3, 3, 4), np.float32)
    with pytest.raises(ValueError, match="out_backprop"):
        cdeconv.conv2d_backprop_input([1, 6, 6, 2], w, dy[None], 2, "SAME")
    with pytest.raises(ValueError, match="filter "):
        cdeconv.conv2d_backprop_input([1, 6, 6, 2], w[None], dy, 2, "SAME")


# fixed: _geometry.as_float_array copies misaligned views, check_out refuses them
@pytest.mark.parametrize("which", ["input", "filters", "out"])
def test_kernels_never_receive_misaligned_arrays(which, monkeypatch):
    seen = []

    def spy(kernel):
        def run(*args):
            seen.extend(a.flags.aligned for a in args[:3])
            return kernel(*args)
        return run
    monkeypatch.setattr(_driver, "_KERNELS", {k: spy(v) for k, v in
                                              _driver._KERNELS.items()})
    rng = np.random.default_rng(0)
    args = dict(input=rng.normal(size=(2, 5, 5, 3)), filters=rng.normal(size=(3, 3, 4, 3)))
    want = cdeconv.conv2d_transpose(**args, strides=2)
    if which == "out":
        out = fuzz_api.misaligned(np.zeros_like(want))
        assert not out.flags.aligned
        try:
            cdeconv.conv2d_transpose(**args, strides=2, out=out)
        except ValueError:           # refusing an unaligned out= is fine too
            return
    else:
        args[which] = fuzz_api.misaligned(args[which])
        assert not args[which].flags.aligned
        np.testing.assert_array_equal(cdeconv.conv2d_transpose(**args, strides=2), want)
    assert seen and all(seen), seen


def test_zero_batch_with_huge_images_gives_an_empty_result():
    """An empty batch with > 2**31 - 1 pixels per image was refused (BLAS limit)."""
    x = np.ones((0, 1, 1, 1), np.float32)
    y = cdeconv.conv2d_transpose(x, np.ones((1, 1, 1, 1), np.float32), None, 2**16)
    assert y.shape == (0, 2**16, 2**16, 1)
