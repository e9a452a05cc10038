"""``cdeconv visualize``: DeconvNet pictures for the bundled demo network (or a user's
model and images) and occlusion sensitivity maps, written as PNG files."""
import argparse
import os
import sys
from importlib import resources

import numpy as np


def build_parser(parser=None):
    parser = parser or argparse.ArgumentParser(prog="cdeconv visualize")
    parser.description = (
        "Zeiler & Fergus DeconvNet: for a layer's feature maps, find the strongest "
        "activations over a set of images and project each back to pixel space (unpool "
        "with the max-pooling switches -> ReLU -> transposed convolution with the same "
        "filters), beside the input patch it sees; plus occlusion sensitivity maps (a "
        "grey square slid over each image, the drop of the predicted class's score). "
        "Without arguments it uses the bundled demo: a small CNN trained on "
        "scikit-learn's handwritten digits, and held-out digit images.")
    parser.add_argument("--model", help="a .keras file or a cdeconv .npz export (default: "
                                        "the bundled digits CNN)")
    parser.add_argument("--image", action="append",
                        help="an image as .npy (H, W) or (H, W, C) (repeatable; default: "
                             "the bundled digits)")
    parser.add_argument("--layer", help="layer name or index to visualise (default: the "
                                        "last Conv2D)")
    parser.add_argument("--features", type=int, default=8,
                        help="how many feature maps to show (default 8)")
    parser.add_argument("--top-k", type=int, default=6,
                        help="strongest activations per feature map (default 6)")
    parser.add_argument("--occlusion-size", type=int, default=4,
                        help="side of the occluding square in pixels (default 4)")
    parser.add_argument("--out", default="cdeconv_visualize",
                        help="output folder for the PNG files (default ./cdeconv_visualize)")
    return parser


def _load(args):
    from . import load_model
    if args.model:
        if not os.path.exists(args.model):
            raise SystemExit(f"cdeconv visualize: no model file at {args.model!r}")
        model = load_model(args.model)
    else:
        with resources.as_file(resources.files("cdeconv") / "data" / "demo_cnn.npz") as p:
            model = load_model(p)
    if args.image:
        imgs = []
        for path in args.image:
            if not path.endswith(".npy") or not os.path.exists(path):
                raise SystemExit(f"cdeconv visualize: --image takes an existing .npy file,"
                                 f" got {path!r}")
            a = np.load(path, allow_pickle=False).astype(np.float32)
            imgs.append(a[..., None] if a.ndim == 2 else a)
        if len({a.shape for a in imgs}) != 1:
            raise SystemExit("cdeconv visualize: all --image arrays must have one shape")
        images = np.stack(imgs)
    else:
        with resources.as_file(resources.files("cdeconv") / "data" /
                               "demo_digits.npz") as p, np.load(p) as d:
            images = d["images"]
    return model, images


def run(args):
    from .layers import _layers as L
    from .visualize import DeconvNet, image_grid, occlusion, to_uint8, write_png
    if args.top_k < 1 or args.features < 1 or args.occlusion_size < 1:
        print("cdeconv visualize: --top-k, --features and --occlusion-size must be >= 1",
              file=sys.stderr)
        return 2
    model, images = _load(args)
    net = DeconvNet(model)
    if args.layer is None:
        convs = [i for i, layer in enumerate(net.layers) if isinstance(layer, L.Conv2D)]
        if not convs:
            print("cdeconv visualize: the model has no Conv2D layer", file=sys.stderr)
            return 2
        layer = convs[-1]
    else:
        layer = int(args.layer) if args.layer.lstrip("-").isdigit() else args.layer
    try:
        upto = net.layer_index(layer)
        n_maps = net.forward(images[:1], upto).shape[-1]
    except ValueError as exc:
        print(f"cdeconv visualize: {exc}", file=sys.stderr)
        return 2
    name = net.layers[upto].name
    rows = []
    n = min(args.features, n_maps)
    for f in range(n):
        print(f"\r[{f + 1}/{n}] projecting feature map {f} of {name}", end="",
              file=sys.stderr, flush=True)
        for hit in net.top_k(images, upto, f, args.top_k):
            t, b, l, r = hit["patch"]
            patch = np.zeros(images.shape[1:3])
            patch[t:b, l:r] = images[hit["image"], t:b, l:r].mean(-1)
            rows += [to_uint8(hit["projection"].sum(-1), symmetric=True), to_uint8(patch)]
    print(file=sys.stderr)
    scale = max(1, 64 // images.shape[1])
    path1 = write_png(os.path.join(args.out, f"deconvnet_{name}.png"),
                      image_grid(rows, cols=2 * args.top_k, scale=scale))
    maps = []
    shown = min(8, len(images))
    for i in range(shown):
        print(f"\r[{i + 1}/{shown}] occlusion sensitivity", end="", file=sys.stderr,
              flush=True)
        target = int(model.predict(images[i:i + 1]).argmax())
        m = occlusion(model, images[i], target, size=args.occlusion_size)
        maps += [to_uint8(images[i].mean(-1)), to_uint8(m, symmetric=True)]
    print(file=sys.stderr)
    path2 = write_png(os.path.join(args.out, "occlusion.png"),
                      image_grid(maps, cols=4, scale=scale))
    print(f"wrote {path1}\n  rows: feature maps 0..{n - 1} of layer {name!r}; each pair: "
          f"the projection of one of the top-{args.top_k} activations (grey = 0) and the "
          f"input patch it sees\nwrote {path2}\n  pairs: image and the drop of its "
          "predicted class's score when a grey square covers each pixel (bright = "
          "important)")
    return 0
