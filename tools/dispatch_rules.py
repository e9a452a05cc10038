"""Measure the transposed-convolution kernels against each other around the dispatch
rules in cdeconv/_driver.py (GEMM + col2im = 0, direct = 1, dot = 2, implicit GEMM = 3,
pixel lanes = 4, phase rows = 5, Winograd phases = 6, scatter rows = 7, planar = 8).

    python tools/dispatch_rules.py [--threads 1,2] [--igemm-only | --rows-only |
                                   --direct-only | --winograd-only | --scatter-only |
                                   --planar-only]

For each shape: median of 5 loops of >= 30 ms per kernel, `out=` preallocated, each
kernel's time, the fastest and what the dispatcher picks. The shapes are the suite's
batch-1 heads, FSRCNN-like one-output layers, the neighbours where the dot rule stops
(8x8 inputs, 1x1 inputs, 2-3 output channels, 8 input channels), and the igemm rule's
edges (input pixels around 256, 3-16 input and 4-32 output channels, deep phases,
1x1 inputs at batch 2-12: --igemm-only). With --rows-only: the phase-rows rule's
shapes (1-15 output channels, 1-2 input channels; 12-32 input into 16-31 output
channels from 64 to 12544 pixels), timed against GEMM, direct, igemm and phase rows;
with --direct-only the direct-rows rule's shapes (1-8 input channels into 8-256),
against the same; with
--winograd-only the Winograd rule's shapes (2-3 taps per phase: stride-1 3x3, 4x4, 5x5
and 3x3 stride 2; 5x5 stride 3, 7x7 stride 4, 8x8 stride 3; tiles and channels around
the rule's bounds), against GEMM, igemm, pixel lanes and Winograd; with --scatter-only
the scatter-rows rule's shapes (1-15 output channels, deep and shallow, few and many
pixels), against GEMM, igemm, phase rows and scatter rows; with --planar-only the
planar rule's shapes (1-15 output channels, the suite's heads at batch 1 and 16),
against GEMM, phase rows, scatter rows and planar.
"""
import argparse

import numpy as np

import cdeconv
from cdeconv import _driver, _geometry
from cdeconv._bench import _time_once

CASES = [  # batch, h, w, cin, cout, k, s
    (1, 4, 4, 1024, 512, 5, 2), (1, 4, 4, 512, 256, 4, 2), (1, 4, 4, 256, 256, 4, 2),
    (1, 4, 4, 256, 128, 3, 2), (1, 2, 2, 512, 512, 4, 2), (1, 4, 4, 128, 256, 4, 2),
    (2, 4, 4, 512, 256, 4, 2), (1, 8, 8, 512, 256, 5, 2), (1, 1, 1, 100, 512, 4, 1),
    (16, 1, 1, 100, 512, 4, 1), (1, 4, 8, 512, 256, 4, 2),
    (1, 64, 64, 64, 1, 3, 1), (1, 64, 64, 32, 1, 5, 2), (1, 64, 64, 16, 1, 4, 2),
    (1, 120, 160, 56, 1, 9, 2), (1, 64, 64, 128, 1, 5, 2), (4, 32, 32, 8, 1, 3, 2),
    (1, 64, 64, 64, 2, 4, 2), (1, 64, 64, 96, 3, 7, 2), (1, 32, 32, 256, 3, 3, 1),
]
IGEMM_CASES = [  # the implicit-GEMM rule's edges
    (1, 8, 8, 256, 128, 4, 2), (2, 8, 8, 256, 128, 4, 2), (1, 16, 16, 256, 128, 4, 2),
    (1, 8, 16, 512, 256, 5, 2), (4, 8, 8, 512, 256, 5, 2), (16, 4, 4, 1024, 512, 5, 2),
    (16, 4, 4, 768, 256, 5, 2), (4, 16, 16, 640, 128, 5, 2),
    (1, 32, 32, 3, 64, 3, 1), (1, 32, 32, 8, 64, 4, 2), (1, 32, 32, 16, 64, 4, 2),
    (1, 32, 32, 64, 4, 4, 2), (1, 32, 32, 64, 8, 4, 2), (1, 32, 32, 64, 16, 4, 2),
    (1, 32, 32, 64, 32, 4, 2), (4, 32, 32, 64, 8, 4, 2), (4, 32, 32, 64, 16, 4, 2),
    (1, 56, 56, 64, 64, 3, 1), (1, 28, 28, 128, 128, 3, 1), (1, 64, 64, 32, 32, 3, 1),
    (8, 64, 64, 64, 32, 2, 2), (1, 128, 128, 64, 32, 2, 2),
    # the pixel-lanes rule's edges
    (1, 8, 8, 128, 64, 4, 2), (1, 8, 8, 64, 64, 4, 2), (1, 4, 4, 64, 64, 4, 2),
    (1, 4, 4, 32, 64, 4, 2), (1, 4, 4, 512, 16, 4, 2), (1, 4, 4, 512, 8, 4, 2),
    (1, 2, 2, 512, 256, 4, 2), (2, 2, 2, 512, 256, 4, 2), (1, 2, 4, 512, 256, 4, 2),
    (1, 8, 12, 256, 128, 4, 2), (1, 12, 12, 256, 128, 4, 2), (3, 8, 8, 256, 128, 4, 2),
    (1, 8, 8, 128, 128, 3, 1), (4, 1, 1, 100, 512, 4, 1),
    # one pixel per image (PyTorch DCGAN g0 at batch 2-12): lanes from 8 images
    (2, 1, 1, 100, 512, 4, 1), (8, 1, 1, 100, 512, 4, 1),
    (12, 1, 1, 100, 512, 4, 1), (4, 1, 1, 128, 256, 4, 1), (8, 1, 1, 128, 256, 4, 1),
    (4, 1, 1, 512, 256, 4, 1), (8, 1, 1, 512, 256, 4, 1), (8, 1, 1, 256, 512, 4, 1),
    (2, 1, 1, 32, 128, 4, 1), (2, 1, 1, 64, 512, 4, 1), (5, 1, 1, 120, 512, 4, 1),
    (7, 1, 1, 64, 128, 4, 1), (3, 1, 1, 128, 512, 4, 1), (4, 1, 1, 192, 256, 4, 1),
]

ROWS_CASES = [  # the phase-rows rule's edges: few output channels, 1-2 input channels
    (1, 32, 32, 128, 3, 5, 2), (16, 32, 32, 128, 3, 5, 2), (1, 32, 32, 64, 3, 4, 2),
    (16, 32, 32, 64, 3, 4, 2), (1, 224, 224, 3, 3, 3, 2), (1, 110, 110, 96, 3, 7, 2),
    (1, 120, 160, 56, 1, 9, 2), (1, 64, 64, 64, 1, 3, 1), (1, 64, 64, 32, 1, 5, 2),
    (1, 64, 64, 64, 2, 4, 2), (1, 64, 64, 64, 8, 4, 2), (1, 64, 64, 64, 15, 4, 2),
    (1, 32, 32, 64, 8, 4, 2), (1, 16, 16, 64, 3, 4, 2), (1, 8, 8, 64, 3, 4, 2),
    (4, 32, 32, 8, 1, 3, 2), (1, 64, 64, 3, 3, 3, 1), (1, 64, 64, 16, 4, 3, 2),
    (1, 28, 28, 1, 32, 3, 2), (16, 28, 28, 1, 32, 3, 2), (1, 28, 28, 2, 64, 4, 2),
    (1, 28, 28, 1, 64, 5, 2), (4, 56, 56, 2, 32, 3, 1), (1, 64, 64, 1, 16, 3, 2),
    (1, 64, 64, 2, 8, 3, 2),
] + [  # rule (c): 12-32 input into 16-31 output channels, 64-12544 pixels
    (b, h, h, cin, cout, k, s) for b, h in ((1, 64), (16, 28), (1, 16), (1, 8))
    for cin in (12, 16, 24, 32) for cout in (16, 24, 31) for k, s in ((3, 2), (4, 2), (3, 1))]

DIRECT_CASES = [  # the direct-rows rule's edges: 1-4 input channels, 8-256 outputs
    (1, 28, 28, 1, 32, 3, 2), (16, 28, 28, 1, 32, 3, 2), (1, 28, 28, 2, 64, 4, 2),
    (1, 28, 28, 1, 64, 5, 2), (4, 56, 56, 2, 32, 3, 1), (1, 64, 64, 1, 16, 3, 2),
    (16, 28, 28, 1, 16, 3, 2), (1, 64, 64, 2, 8, 3, 2), (16, 28, 28, 1, 8, 3, 2),
    (1, 3, 300, 1, 256, 3, 2), (1, 128, 128, 2, 32, 4, 2), (1, 64, 64, 1, 64, 4, 2),
    (4, 28, 28, 3, 32, 3, 2), (1, 64, 64, 4, 64, 3, 2), (4, 28, 28, 3, 16, 3, 2),
    (1, 64, 64, 4, 16, 4, 2), (1, 32, 32, 8, 64, 4, 2), (1, 32, 32, 2, 256, 4, 2),
    (4, 28, 28, 8, 32, 3, 2), (1, 64, 64, 8, 128, 4, 2), (1, 32, 32, 12, 64, 4, 2),
    (1, 32, 32, 16, 64, 4, 2), (16, 16, 16, 8, 64, 5, 2), (1, 64, 64, 6, 16, 3, 2),
    # 16-31 outputs on the register path (phase taps x inputs x vectors <= 16), 2026-12-08
    (1, 28, 28, 1, 16, 3, 2), (1, 28, 28, 2, 16, 3, 2), (1, 28, 28, 3, 16, 3, 2),
    (1, 28, 28, 4, 16, 3, 2), (1, 64, 64, 3, 16, 3, 2), (1, 28, 28, 1, 24, 3, 2),
    (1, 28, 28, 3, 24, 3, 2), (1, 28, 28, 1, 16, 4, 2), (1, 28, 28, 1, 16, 5, 2),
    (1, 28, 28, 2, 16, 5, 2), (1, 32, 32, 1, 16, 3, 1), (1, 32, 32, 2, 16, 3, 1),
    # one tap per phase from 256 pixels (U-Net up1 b1), 2026-12-08
    (1, 16, 16, 512, 256, 2, 2), (1, 16, 16, 256, 128, 2, 2), (1, 24, 24, 256, 128, 2, 2),
    (1, 16, 32, 512, 256, 2, 2), (1, 16, 16, 128, 64, 2, 2), (1, 8, 16, 512, 256, 2, 2),
    (1, 8, 8, 512, 256, 2, 2), (1, 12, 12, 256, 128, 2, 2),
]

WINO_CASES = [  # the Winograd rule's edges: 2-3 taps per phase, tiles, channels
    (1, 56, 56, 64, 64, 3, 1), (16, 56, 56, 64, 64, 3, 1), (1, 28, 28, 128, 128, 3, 1),
    (1, 14, 14, 256, 256, 3, 1), (4, 14, 14, 256, 256, 3, 1), (1, 7, 7, 512, 512, 3, 1),
    (1, 32, 32, 32, 32, 3, 1), (1, 16, 16, 64, 64, 3, 1), (1, 56, 56, 16, 16, 3, 1),
    (1, 56, 56, 64, 16, 3, 1), (1, 56, 56, 16, 64, 3, 1), (1, 56, 56, 32, 32, 3, 1),
    (16, 16, 16, 128, 64, 4, 2), (4, 16, 16, 128, 64, 4, 2), (8, 16, 16, 128, 64, 4, 2),
    (16, 8, 8, 256, 128, 4, 2), (32, 8, 8, 256, 128, 4, 2), (1, 32, 32, 64, 32, 4, 2),
    (1, 64, 64, 64, 32, 4, 2), (1, 64, 64, 32, 16, 4, 2), (4, 32, 32, 128, 64, 4, 2),
    (16, 4, 4, 512, 256, 4, 2), (16, 16, 16, 256, 128, 5, 2), (4, 32, 32, 128, 64, 5, 2),
    (4, 32, 32, 64, 64, 3, 2), (4, 32, 32, 64, 64, 2, 1), (4, 16, 16, 128, 64, 6, 2),
    (1, 24, 24, 64, 64, 3, 1), (1, 11, 11, 128, 64, 4, 2), (2, 8, 8, 128, 64, 4, 2),
    (1, 64, 64, 32, 64, 3, 1), (1, 32, 32, 64, 32, 3, 1),
    # the low-saving rule (5x5 s2/s3, 7x7 s4, 8x8 s3): tiles, columns, input channels
    (8, 16, 16, 256, 128, 5, 2), (2, 16, 16, 256, 128, 5, 2), (1, 16, 16, 256, 128, 5, 2),
    (1, 32, 32, 128, 64, 5, 2), (1, 64, 64, 64, 32, 5, 2), (1, 64, 64, 128, 64, 5, 2),
    (16, 32, 32, 64, 64, 5, 2), (1, 64, 64, 32, 16, 5, 2), (1, 64, 64, 32, 32, 5, 2),
    (1, 128, 128, 32, 16, 5, 2), (1, 32, 32, 32, 64, 5, 2), (1, 32, 32, 64, 16, 5, 2),
    (1, 24, 24, 128, 128, 5, 2), (1, 20, 20, 256, 64, 5, 2), (1, 32, 32, 128, 64, 5, 3),
    (1, 48, 48, 128, 64, 5, 3), (1, 48, 48, 64, 32, 7, 4), (2, 32, 32, 128, 64, 8, 3),
    (1, 64, 64, 64, 16, 5, 2), (1, 64, 64, 128, 32, 5, 2), (1, 128, 128, 32, 32, 5, 2),
    (1, 32, 32, 256, 32, 5, 2), (1, 32, 32, 128, 32, 5, 2),
    # the few-tiles rule (48-127 tiles): fill, columns, transform size
    (1, 20, 20, 128, 64, 4, 2), (1, 18, 18, 128, 64, 4, 2), (1, 20, 20, 256, 128, 4, 2),
    (1, 24, 24, 256, 128, 4, 2), (1, 20, 20, 128, 32, 4, 2), (1, 28, 28, 128, 64, 4, 2),
    (1, 26, 26, 64, 32, 4, 2), (1, 32, 32, 64, 32, 4, 2), (1, 28, 28, 64, 32, 4, 2),
    (1, 32, 32, 32, 16, 4, 2), (1, 14, 14, 256, 256, 3, 1), (1, 14, 14, 128, 128, 3, 1),
    (1, 14, 14, 128, 64, 3, 1), (1, 12, 12, 256, 256, 3, 1), (1, 14, 14, 512, 512, 3, 1),
    (1, 16, 16, 128, 128, 3, 1), (1, 16, 16, 256, 128, 3, 1), (1, 20, 20, 64, 64, 3, 1),
    (1, 18, 18, 64, 64, 3, 1), (1, 16, 16, 64, 64, 3, 1), (2, 12, 12, 128, 128, 3, 1),
    (2, 10, 10, 256, 256, 3, 1), (4, 7, 7, 256, 256, 3, 1), (6, 8, 8, 256, 128, 4, 2),
    (1, 16, 16, 128, 64, 4, 2),
]

SCATTER_CASES = [  # the scatter-rows rule's edges: 1-15 output channels
    (1, 120, 160, 56, 1, 9, 2), (1, 240, 320, 56, 1, 9, 2), (1, 64, 64, 64, 1, 3, 1),
    (1, 64, 64, 32, 1, 5, 2), (1, 64, 64, 16, 1, 4, 2), (4, 32, 32, 8, 1, 3, 2),
    (1, 16, 16, 64, 1, 4, 2), (1, 8, 8, 64, 1, 4, 2), (1, 64, 64, 3, 1, 3, 2),
    (16, 28, 28, 16, 1, 3, 2), (1, 64, 64, 4, 1, 9, 3), (1, 64, 64, 64, 2, 4, 2),
    (1, 32, 32, 32, 2, 3, 2), (1, 64, 64, 4, 2, 3, 2), (1, 16, 16, 128, 2, 4, 2),
    (1, 32, 32, 128, 3, 5, 2), (16, 32, 32, 128, 3, 5, 2), (1, 32, 32, 64, 3, 4, 2),
    (16, 32, 32, 64, 3, 4, 2), (1, 110, 110, 96, 3, 7, 2), (1, 16, 16, 64, 3, 4, 2),
    (1, 8, 8, 64, 3, 4, 2), (1, 224, 224, 3, 3, 3, 2), (1, 64, 64, 3, 3, 3, 1),
    (1, 64, 64, 256, 3, 3, 1), (1, 64, 64, 32, 3, 4, 2), (1, 64, 64, 16, 4, 3, 2),
    (1, 32, 32, 256, 4, 4, 2), (1, 64, 64, 64, 8, 4, 2), (1, 32, 32, 64, 8, 4, 2),
    (1, 32, 32, 128, 8, 5, 2), (1, 64, 64, 64, 15, 4, 2),
]


PLANAR_CASES = [  # the planar rule's edges: 1-15 output channels, the suite's heads
    (1, 32, 32, 128, 3, 5, 2), (16, 32, 32, 128, 3, 5, 2), (1, 32, 32, 64, 3, 4, 2),
    (16, 32, 32, 64, 3, 4, 2), (1, 110, 110, 96, 3, 7, 2), (16, 110, 110, 96, 3, 7, 2),
    (1, 240, 320, 56, 1, 9, 2), (1, 224, 224, 3, 3, 3, 2), (16, 224, 224, 3, 3, 3, 2),
    (1, 120, 160, 56, 1, 9, 2), (1, 64, 64, 64, 1, 3, 1), (1, 64, 64, 32, 1, 5, 2),
    (1, 64, 64, 16, 1, 4, 2), (4, 32, 32, 8, 1, 3, 2), (1, 16, 16, 64, 1, 4, 2),
    (1, 8, 8, 64, 1, 4, 2), (1, 64, 64, 3, 1, 3, 2), (16, 28, 28, 16, 1, 3, 2),
    (1, 64, 64, 4, 1, 9, 3), (1, 64, 64, 64, 2, 4, 2), (1, 32, 32, 32, 2, 3, 2),
    (1, 64, 64, 4, 2, 3, 2), (1, 16, 16, 128, 2, 4, 2), (1, 16, 16, 64, 3, 4, 2),
    (1, 8, 8, 64, 3, 4, 2), (1, 64, 64, 3, 3, 3, 1), (1, 64, 64, 256, 3, 3, 1),
    (1, 64, 64, 16, 4, 3, 2), (1, 32, 32, 256, 4, 4, 2), (1, 64, 64, 64, 8, 4, 2),
    (1, 32, 32, 64, 8, 4, 2), (1, 32, 32, 128, 8, 5, 2), (16, 28, 28, 64, 8, 4, 2),
    (1, 64, 64, 64, 15, 4, 2), (1, 64, 64, 2, 8, 3, 2), (4, 28, 28, 3, 8, 3, 2),
    (1, 128, 128, 8, 3, 4, 2), (1, 256, 256, 3, 3, 4, 2), (16, 64, 64, 4, 2, 3, 2),
    (1, 128, 128, 16, 3, 3, 1), (1, 64, 64, 32, 3, 4, 2), (1, 64, 64, 12, 4, 3, 2),
    (16, 32, 32, 8, 3, 4, 2), (1, 128, 128, 24, 3, 5, 2), (4, 64, 64, 16, 8, 3, 2),
]


def median_ms(fn, rounds=5):
    """Median over ``rounds`` samples of cdeconv bench's sampler (>= 30 ms loops), ms."""
    fn()
    return float(np.median([_time_once(fn) for _ in range(rounds)])) * 1e3

ALL_NAMES = {0: "gemm", 1: "direct", 2: "dot", 3: "igemm", 4: "lanes", 5: "rows",
             6: "winograd", 7: "scatter", 8: "planar"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--igemm-only", action="store_true",
                    help="only the implicit-GEMM rule's shapes")
    ap.add_argument("--rows-only", action="store_true",
                    help="only the phase-rows rule's shapes")
    ap.add_argument("--direct-only", action="store_true",
                    help="only the direct-rows rule's shapes")
    ap.add_argument("--winograd-only", action="store_true",
                    help="only the Winograd rule's shapes")
    ap.add_argument("--scatter-only", action="store_true",
                    help="only the scatter-rows rule's shapes")
    ap.add_argument("--planar-only", action="store_true",
                    help="only the planar rule's shapes")
    args = ap.parse_args()
    cases = (IGEMM_CASES if args.igemm_only else ROWS_CASES if args.rows_only
             else DIRECT_CASES if args.direct_only else WINO_CASES if args.winograd_only
             else SCATTER_CASES if args.scatter_only
             else PLANAR_CASES if args.planar_only
             # the rule lists share shapes at their common edge: each timed once
             else list(dict.fromkeys(CASES + IGEMM_CASES + ROWS_CASES + DIRECT_CASES)))
    rng = np.random.default_rng(0)
    for th in (int(t) for t in args.threads.split(",")):
        cdeconv.set_num_threads(th)
        for b, h, w, cin, cout, k, s in cases:
            x = rng.random((b, h, w, cin), np.float32)
            f = rng.random((k, k, cout, cin), np.float32)
            pad = "VALID" if h == 1 else "SAME"
            geom = _geometry.transposed_geometry(2, x, f, None, s, pad, "NHWC", None)
            y = np.empty(geom.shape("big"), np.float32)
            names = ({a: ALL_NAMES[a] for a in (0, 1, 3, 5)}
                     if args.rows_only or args.direct_only
                     else {a: ALL_NAMES[a] for a in (0, 3, 4, 6)} if args.winograd_only
                     else {a: ALL_NAMES[a] for a in (0, 3, 5, 7)} if args.scatter_only
                     else {a: ALL_NAMES[a] for a in (0, 5, 7, 8)} if args.planar_only
                     else ALL_NAMES)
            # the direct kernel only where its rule could apply (few input channels),
            # Winograd only where it can run (2-D, 1-4 taps per phase), planar up to
            # 8 output channels
            ms = {a: median_ms(lambda a=a: _driver.run(geom, x, f, y, "transpose", algo=a))
                  for a in names if (a != 1 or cin <= _driver.DIRECT_MAX_IN_CHANNELS)
                  and (a != 6 or _driver.winograd_fits(geom))
                  and (a != 8 or _driver.transpose_planar_fits(geom))}
            best = min(ms, key=ms.get)
            times = "  ".join(f"{names[a]} {t:8.3f}" for a, t in ms.items())
            print(f"{th} thread(s)  batch {b:2d}  {h}x{w}x{cin} -> {cout}  k{k} s{s}: "
                  f"{times} ms  fastest {names[best]}  picks "
                  f"{ALL_NAMES[_driver.choose_transpose_algo(geom)]}", flush=True)

if __name__ == "__main__":
    main()
