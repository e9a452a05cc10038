"""DeconvNet projections (against an independent slow reference of the paper's rules),
receptive fields, occlusion maps, the PNG writer, the bundled demo and the CLI."""
import struct
import zlib

import numpy as np
import pytest

import cdeconv
from cdeconv import _reference
from cdeconv import layers as L
from cdeconv.__main__ import main
from cdeconv.visualize import DeconvNet, image_grid, occlusion, to_uint8, write_png


def _model(rng):
    m = L.Sequential([L.Conv2D(4, 3, padding="same", activation="relu", seed=1,
                               dtype="float64"),
                      L.MaxPooling2D(2, dtype="float64"),
                      L.Conv2D(5, 3, strides=1, padding="valid", seed=2, dtype="float64"),
                      L.ReLU(dtype="float64"),
                      L.MaxPooling2D(2, strides=1, dtype="float64"),
                      L.Flatten(dtype="float64"), L.Dense(3, seed=3, dtype="float64")])
    m.predict(rng.normal(size=(1, 12, 12, 2)))
    return m


def _ref_pool(x, k, s):
    """Loops: max and its (y, x) in each VALID window; first maximum on ties."""
    n, h, w, c = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((n, oh, ow, c))
    where = np.zeros((n, oh, ow, c, 2), int)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    win = x[b, i * s:i * s + k, j * s:j * s + k, ch]
                    yy, xx = np.unravel_index(np.argmax(win), win.shape)
                    out[b, i, j, ch] = win[yy, xx]
                    where[b, i, j, ch] = (i * s + yy, j * s + xx)
    return out, where


def _ref_unpool(v, where, shape):
    out = np.zeros(shape)
    for idx in np.ndindex(v.shape):
        b, i, j, ch = idx
        y, x = where[idx]
        out[b, y, x, ch] += v[idx]
    return out


def _ref_projection(m, img, b, y, x, fmap):
    """The paper's rules, written out independently with the reference ops."""
    c1, _, c2, _, _ = m.layers[:5]
    a0 = img[b:b + 1]
    a1 = np.maximum(_reference.conv2d(a0, c1.kernel, 1, "SAME") + c1.bias, 0)
    p1, w1 = _ref_pool(a1, 2, 2)
    a2 = np.maximum(_reference.conv2d(p1, c2.kernel, 1, "VALID") + c2.bias, 0)
    p2, w2 = _ref_pool(a2, 2, 1)
    sig = np.zeros_like(p2)
    sig[0, y, x, fmap] = p2[0, y, x, fmap]
    r = np.maximum(_ref_unpool(sig, w2, a2.shape), 0)              # unpool, rectify
    r = _reference.conv2d_transpose(r, c2.kernel, p1.shape, 1, "VALID")   # filter
    r = np.maximum(_ref_unpool(r, w1, a1.shape), 0)
    return _reference.conv2d_transpose(r, c1.kernel, a0.shape, 1, "SAME")[0]


def test_projection_matches_the_slow_reference(rng):
    m = _model(rng)
    imgs = rng.normal(size=(4, 12, 12, 2))
    net = DeconvNet(m)
    hits = net.top_k(imgs, 4, feature_map=2, k=3)
    acts = net.forward(imgs, 4)[..., 2]
    assert [h["value"] for h in hits] == sorted(acts.ravel())[::-1][:3]
    for h in hits:
        want = _ref_projection(m, imgs, h["image"], *h["position"], 2)
        np.testing.assert_allclose(h["projection"], want, rtol=1e-10, atol=1e-12)
        assert np.abs(want).max() > 0


def test_single_conv_layer_projection_is_a_transposed_conv_of_a_one_hot_map(rng):
    m = L.Sequential([L.Conv2D(3, 3, strides=2, padding="same", dtype="float64",
                               seed=0)])
    img = rng.normal(size=(1, 9, 9, 2))
    net = DeconvNet(m)
    hit = net.top_k(img, 0, feature_map=1, k=1)[0]
    y, x = hit["position"]
    one_hot = np.zeros((1, 5, 5, 3))
    one_hot[0, y, x, 1] = hit["value"]
    np.testing.assert_allclose(
        hit["projection"],
        cdeconv.conv2d_transpose(one_hot, m.layers[0].kernel, img.shape, 2, "SAME")[0])


def test_projection_lies_inside_the_receptive_field(rng):
    m = _model(rng)
    imgs = rng.normal(size=(3, 12, 12, 2))
    net = DeconvNet(m)
    for h in net.top_k(imgs, 4, feature_map=0, k=4):
        t, b, l, r = h["patch"]
        outside = h["projection"].copy()
        outside[t:b, l:r] = 0
        assert np.all(outside == 0) and np.abs(h["projection"][t:b, l:r]).max() > 0


def test_errors(rng):
    m = _model(rng)
    net = DeconvNet(m)
    imgs = rng.normal(size=(2, 12, 12, 2))
    with pytest.raises(ValueError, match="feature_map"):
        net.top_k(imgs, 0, feature_map=9)
    with pytest.raises(ValueError, match="no layer named"):
        net.layer_index("nope")
    with pytest.raises(ValueError, match="cannot project through"):
        net.top_k(imgs, 6, feature_map=0)                   # the Dense layer
    with pytest.raises(ValueError, match="4-D"):
        net.top_k(imgs[0], 0, feature_map=0)


class _RegionSum:
    """A 'model' whose score is the sum of pixels in rows 2..5, columns 3..6."""

    def predict(self, x):
        return x[:, 2:6, 3:7, 0].sum(axis=(1, 2))[:, None]


def test_occlusion_finds_the_region_the_score_depends_on():
    img = np.ones((10, 10, 1))
    heat = occlusion(_RegionSum(), img, 0, size=2, stride=1, value=0.0, batch_size=7)
    assert heat.shape == (10, 10)
    assert np.all(heat[2:6, 3:7] > 0)
    assert np.all(heat[:1] == 0) and np.all(heat[:, 8:] == 0)
    with pytest.raises(ValueError, match="size"):
        occlusion(_RegionSum(), img, 0, size=11)


def test_png_writer_round_trip(tmp_path):
    img = (np.arange(5 * 7 * 3) % 256).astype(np.uint8).reshape(5, 7, 3)
    path = write_png(tmp_path / "a.png", img)
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h, depth, color = struct.unpack(">IIBB", data[16:26])
    assert (w, h, depth, color) == (7, 5, 8, 2)
    i = data.index(b"IDAT")
    n = struct.unpack(">I", data[i - 4:i])[0]
    raw = zlib.decompress(data[i + 4:i + 4 + n])
    rows = [raw[r * (7 * 3 + 1) + 1:(r + 1) * (7 * 3 + 1)] for r in range(5)]
    assert b"".join(rows) == img.tobytes()
    grid = image_grid([to_uint8(np.eye(3)), to_uint8(-np.eye(3), symmetric=True)], 2,
                      scale=2)
    assert grid.shape == (2 + 6 + 2, 2 + 2 * (6 + 2), 3)
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "b.png", np.zeros((2, 2)))


def test_bundled_demo_network_is_accurate():
    from importlib import resources
    with resources.as_file(resources.files("cdeconv") / "data" / "demo_digits.npz") as p:
        d = dict(np.load(p))
    with resources.as_file(resources.files("cdeconv") / "data" / "demo_cnn.npz") as p:
        model = cdeconv.load_model(p)
    acc = (model.predict(d["images"]).argmax(1) == d["labels"]).mean()
    assert acc >= 0.9 and float(d["test_accuracy"]) >= 0.9


def test_cli_visualize(tmp_path, capsys):
    out = tmp_path / "vis"
    assert main(["visualize", "--out", str(out), "--features", "2", "--top-k", "2"]) == 0
    sizes = {}
    for name in ("deconvnet_conv2.png", "occlusion.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = struct.unpack(">II", data[16:24])
        i = data.index(b"IDAT")
        raw = np.frombuffer(zlib.decompress(data[i + 4:i + 4 + struct.unpack(
            ">I", data[i - 4:i])[0]]), np.uint8)
        assert raw.size == h * (w * 3 + 1) and len(np.unique(raw)) > 16   # not blank
        sizes[name] = (w, h)
    # 2 feature maps x (2 projections + 2 patches) of 16x16 digits scaled x4, 2 px gaps
    assert sizes["deconvnet_conv2.png"] == (2 + 4 * (64 + 2), 2 + 2 * (64 + 2))
    assert "wrote" in capsys.readouterr().out
    assert main(["visualize", "--out", str(out), "--layer", "nope"]) == 2
    with pytest.raises(SystemExit):
        main(["visualize", "--model", str(tmp_path / "missing.keras")])
    np.save(tmp_path / "img.npy", np.random.default_rng(0).random((16, 16)))
    assert main(["visualize", "--out", str(out), "--image", str(tmp_path / "img.npy"),
                 "--layer", "conv1", "--features", "1", "--top-k", "1"]) == 0
