"""Drivers: from a validated Geometry to a kernel call (threads, BLAS guard, workspace).

Strategy, chosen per call (src/_conv.pyx has the details):
- GEMMs are cut into a fixed set of tiles run in an OpenMP loop, each tile one
  single-threaded BLAS call; BLAS is held at one thread meanwhile (no oversubscription).
- The column buffer is bounded by ``CHUNK_BYTES`` whatever the batch; the chunking
  depends only on shapes, so results are bitwise identical for every thread count.
- 1x1 kernels with stride 1 and no padding skip im2col/col2im: the GEMM is the result.
- Transposed, channels-last: nine kernels (below), each with its measured rule. The
  rules depend only on shapes, so results stay thread-count independent.
"""
import math
import os

import numpy as np

from . import _conv
from ._threads import blas_single_thread, get_num_threads

#: Upper bound on the column buffer of one call, in bytes (one chunk of small rows;
#: at least one row even if a single row is larger). 2 MiB measured best or within noise
#: of the best among 256 KiB .. 32 MiB on the workload suite (1 and 2 threads): the
#: buffer stays in cache between the GEMM that writes it and the col2im that reads it.
CHUNK_BYTES = 2 << 20

#: The direct-rows kernel (src/_dot.h, cd_dr_*: the igemm micro-kernel on one big row
#: at a time, output channels in the vector lanes, 4 outputs per tile with no bounds
#: checks where every tap is inside, the taps past the edge never read; no column
#: buffer, each output written once) runs for channels-last inputs with >=
#: DIRECT_MIN_OUT_CHANNELS output channels per group and either <=
#: DIRECT_MAX_IN_CHANNELS input channels per group, or one tap per phase (kernel ==
#: stride, no dilation: U-Net's 2x2 stride-2 up-convolutions) from
#: DIRECT_ONE_TAP_MIN_PIXELS input pixels; the packed filter as for igemm (<=
#: IGEMM_MAX_FILTER_ELEMENTS). Measured (tools/dispatch_rules.py --direct-only, and
#: the U-Net layers forced, medians of 5-7 x 30 ms loops, 1 and 2 threads, 2026-12-02):
#: 1.3-2.0x faster than phase rows and 1.2-2.6x than igemm with 1-2 input channels
#: into 32-256 (28x28x1 -> 32 b16: 0.68 / 0.22 ms against rows 1.28 / 0.33 ms);
#: 1.1-1.6x than igemm with 3-16 input channels into 32-128 (32x32x16 -> 64 1.13x /
#: 1.07x, 64x64x4 -> 64 1.56x); U-Net up2-up4 at batch 1 and 16 1.04-1.66x than igemm
#: (up4 b1 2.9 against 4.9 ms at 1 thread), up1 b16 1.08-1.10x; slower with 32+
#: input channels and several taps per phase (0.66-0.96x: deep reductions, igemm's
#: 6-row tiles reuse each filter load more) and with 8-16 output channels (phase rows:
#: 0.5-1.0x). One tap per phase from 256 pixels since 2026-12-08 (was 1024: up1 at
#: batch 1 had read 0.88x at 2 threads on the 2026-12-02 machine): on the Zen 4, igemm
#: time / direct time, medians over 6 processes of 3 interleaved rounds, 1 / 2 threads:
#: U-Net up1 b1 (256 pixels) 1.04 / 1.01, 16x16x256 -> 128 1.05 / 1.03, 24x24x256 -> 128
#: 1.03 / 1.02, 16x32x512 -> 256 1.03 / 1.02, 16x16x128 -> 64 1.09 / 1.06; below 256
#: pixels pixel lanes keep them (8x8x512 -> 256 lanes 1.10 / 1.17x faster; 8x16x512 ->
#: 256 1.05 / 1.00). (Its register path
#: for taps x input channels x vectors <= 16, 2026-12-08, made the 1-4 channel layers
#: 1.17-1.92x faster still: bits unchanged.) With it, the direct kernel also takes
#: DIRECT_FEW_OUT_CHANNELS .. DIRECT_MIN_OUT_CHANNELS - 1 output channels from <=
#: DIRECT_FEW_IN_CHANNELS input channels, no dilation, while a phase's taps x input
#: channels x 16-lane vectors of output channels <= DIRECT_FEW_REGISTERS (the register
#: path's bound on AVX-512), which phase rows had. Measured 2026-12-08 on the Zen 4
#: (forced, medians of 5 interleaved rounds; phase rows time / direct time at 1 / 2
#: threads, batch 1 and 16): 28x28x1 -> 16 3x3 s2 1.92-1.94 / 1.57-1.77; 64x64x1 -> 16
#: 1.96-2.44 / 2.01-2.30; 28x28x2 -> 16 1.71-1.84 / 1.43-1.73; 28x28x3 -> 16 1.45-1.55 /
#: 1.49-1.75; 28x28x4 -> 16 1.40-1.44 / 1.48-1.76; 64x64x3 -> 16 1.86-2.23 / 1.93-2.40;
#: 28x28x1 -> 24 1.20-1.29 / 1.18-1.42; 28x28x1 -> 16 4x4 s2 1.22-1.24 / 1.15-1.44, 5x5
#: s2 1.07-1.08 / 1.07-1.37; 32x32x1 -> 16 3x3 s1 0.99-1.05 / 1.02-1.27. Left out: past
#: the bound, 32x32x2 -> 16 3x3 s1 (18: 0.79-0.88 / 0.83-1.07), 28x28x2 -> 16 5x5 s2 (18:
#: 1.02-1.27) and 28x28x3 -> 24 (24: 1.13-1.41), and 8 output channels (64x64x2 -> 8 4x4
#: s2: 0.45-0.54, half the lanes empty).
DIRECT_MAX_IN_CHANNELS = 16
DIRECT_MIN_OUT_CHANNELS = 32
DIRECT_ONE_TAP_MIN_PIXELS = 256
DIRECT_FEW_OUT_CHANNELS = 16
DIRECT_FEW_IN_CHANNELS = 4
DIRECT_FEW_REGISTERS = 16
DIRECT_FEW_LANES = 16          # float32 lanes of the AVX-512 vector the bound counts

#: The dot kernel (src/_dot.h: every output a sum of dot products over the input
#: channels, the filter streamed once, no column buffer) runs for channels-last inputs
#: with few input pixels: batch * H * W <= DOT_MAX_PIXELS, at least 2x2 of them,
#: >= DOT_MIN_IN_CHANNELS input and >= 4 output channels per group (batch-1 generator
#: heads: BLAS would pack the whole filter for a GEMM of a few rows).
#: Measured (tools/dispatch_rules.py, median of 5 x 30 ms loops, 1 and 2 threads) on
#: the suite plus 20 shapes around the boundaries: dot / GEMM 1.05-2.9x faster inside
#: the rule; outside it GEMM wins: 8x8 inputs (0.86-0.94x), 1x1 inputs (0.46-0.83x:
#: each output has one tap, nothing to reuse), 1-3 output channels (0.38-0.96x, since
#: col2im unrolls the adds for 1-4 channels; before that the dot kernel had won 1.1-1.5x
#: for one output channel, e.g. FSRCNN, and had a rule of its own).
DOT_MAX_PIXELS = 32
DOT_MIN_IN_CHANNELS = 128

#: The implicit-GEMM kernel (src/_dot.h, cd_ig_*: output channels in the vector lanes,
#: the filter packed once per call, each output's taps summed in registers; no column
#: buffer, no col2im) runs for channels-last inputs with >= IGEMM_MIN_OUT_CHANNELS
#: output channels per group and >= IGEMM_MIN_PIXELS input pixels (batch * D * H * W:
#: the per-call packing of the filter is then paid back), while one phase's reduction
#: (taps / prod(strides) * input channels per group) stays <= IGEMM_MAX_PHASE_DEPTH
#: (its filter panels stay in L2), or <= IGEMM_MAX_PHASE_DEPTH_WIDE once there are
#: >= IGEMM_WIDE_PIXELS input pixels, and the filter has <= IGEMM_MAX_FILTER_ELEMENTS
#: (its packed copy: 16 MiB in float32).
#: Measured (tools/dispatch_rules.py, median of 5 x 30 ms loops; cdeconv bench): on
#: the suite's GEMM-heavy layers 1.0-2.2x faster than GEMM + col2im at 1 and 2 threads
#: (DCGAN g2/g3 b16 and stride-1 3x3 at ~100 % of sgemm); 3-16 input channels into 64
#: outputs 2.4-10x; slower below 16 output channels (0.3-0.9x: the vector lanes are
#: mostly empty), below 256 pixels (0.2-0.95x at batch 1: the packing is not paid back)
#: and on deep phases with few pixels (0.7-0.9x: 16x4x4x1024 -> 512, 5x5).
#: The pixel-lanes kernel (src/_dot.h, cd_pl_*: the igemm micro-kernel turned round,
#: the input pixels in the vector lanes, the filter rows broadcast in place so each
#: filter element is loaded once, each (tap, 8 channels) tile added into the big side)
#: runs for channels-last inputs with LANES_MIN_PIXELS <= batch * D * H * W <=
#: LANES_MAX_PIXELS (256 only when a phase is >= LANES_DEEP_PHASE deep), >=
#: LANES_MIN_IN_CHANNELS input and >= LANES_MIN_OUT_CHANNELS output channels per group:
#: generator heads at batch 1-16. Measured (tools/dispatch_rules.py): 1.2-2.3x faster
#: than the dot kernel and GEMM on 4x4-12x12 inputs with 128-1024 channels (DCGAN g1/g2
#: at batch 1: 78-101 GFLOP/s at 1 thread), 1.1-1.2x on 16x4x4x1024 -> 512; slower on
#: 2x2 and 2x4 inputs (a quarter or half of the 16 lanes used: the dot kernel keeps
#: them), with <= 3 output channels, and from 256 pixels with shallow phases (igemm:
#: equal at depth 1024-1600; at depth 2048, 16x4x4x512 -> 256, lanes 1.32x / 1.08x).
#: Inputs of one pixel per image (a latent vector into a generator's first layer, PyTorch
#: DCGAN g0) take the lanes from LANES_MIN_PIXELS_1X1 images: the dot kernel does not run
#: on them and GEMM + col2im's skinny GEMMs are slow (measured on a Zen 4, 2026-12-07,
#: tools/dispatch_rules.py --igemm-only; GEMM time / lanes time at 1 / 2 threads):
#: 1x1x100 -> 512 4x4 b8 1.91 / 1.47, b12 1.98 / 1.94; 1x1x128 -> 256 b8 2.30 / 2.03;
#: 1x1x64-128 -> 512 b8 1.44-1.85 / -; 1x1x512 -> 256 b8 1.43 / 0.96; 1x1x256 -> 512
#: b8 1.35 / -; at b4 0.96-1.78 (cs 256-512 under 1), so not below 8 - unless there are
#: fewer than LANES_1X1_SHALLOW input channels, where the GEMM's few rows go to OpenBLAS
#: (the unpacked A @ B^T kernel takes them from 128 deep, ABT_MIN_K in src/_conv.pyx):
#: then from LANES_MIN_PIXELS_1X1_SHALLOW images, 32-120 -> 128-512 channels at b2-b7
#: 1.07-1.65x / 1.07-2.38x (128-192 channels at b3-b4 0.56-1.20: left to GEMM).
LANES_MIN_PIXELS = 16
LANES_MIN_PIXELS_1X1 = 8
LANES_MIN_PIXELS_1X1_SHALLOW = 2
LANES_1X1_SHALLOW = 128
LANES_MAX_PIXELS = 256
LANES_DEEP_PHASE = 2048
LANES_MIN_IN_CHANNELS = 32
LANES_MIN_OUT_CHANNELS = 8

IGEMM_MIN_OUT_CHANNELS = 16
IGEMM_MIN_PIXELS = 256
IGEMM_MAX_PHASE_DEPTH = 2048
IGEMM_WIDE_PIXELS = 1024
IGEMM_MAX_PHASE_DEPTH_WIDE = 4096
IGEMM_MAX_FILTER_ELEMENTS = 4 << 20

#: The phase-rows kernel (src/_dot.h, cd_pr_*: the igemm micro-kernel with a flat run
#: of one phase's outputs in the vector lanes, the filter rows broadcast in place, the
#: small rows a task reads transposed into channel-major planes and the outputs
#: transposed back 16 x 16 in registers) runs for channels-last inputs with
#: (a) <= ROWS_MAX_IN_CHANNELS input and >= ROWS_MIN_OUT_CHANNELS output channels per
#: group (below DIRECT_MIN_OUT_CHANNELS, where the direct kernel's lanes are half
#: empty), or (b) ROWS_FEW_OUT_CHANNELS[0] .. [1] output channels per group and >=
#: ROWS_MIN_PIXELS input pixels (generator and decoder heads into RGB); in both while
#: one task's scratch is <= ROWS_MAX_SCRATCH_BYTES. Measured (tools/dispatch_rules.py
#: --rows-only, medians of 5 x 30 ms loops):
#: (a) 1.2-4.5x faster than the old Cython AXPY direct kernel and 1.1-1.9x than igemm
#: (28x28x1 -> 32 at batch 1 and 16, 28x28x2 -> 64, 56x56x2 -> 32, 64x64x1 -> 16,
#: 64x64x2 -> 8; the first three now take direct rows); from 3 to 8 input channels
#: (--direct-only, 2026-12-02): 28x28x3 -> 16 b4, 64x64x4 -> 16 and 64x64x6 -> 16
#: 1.6-2.5x faster than igemm, which had them;
#: (b) on an AVX-512 machine (2026-12-02, evening; GEMM time / rows time at 1 / 2
#: threads): 32x32x128 -> 3 5x5 b1 1.47 / 1.08, b16 1.20 / 1.63; 32x32x64 -> 3 4x4 b1
#: 1.67 / 1.23, b16 1.94 / 1.55; 16x16x64 -> 3 (256 pixels) 1.47 / 1.17; 32x32x64 -> 8
#: 1.60 / 1.54; 64x64x16 -> 4 1.36 / 1.64; 110x110x96 -> 3 1.90 / 1.85; 224x224x3 -> 3
#: 2.6 / 1.7; slower on 8x8x64 -> 3 (64 pixels: 0.71 / 0.65) and with 1-2 output
#: channels (FSRCNN 0.90 / 0.95-1.00; 64x64x64 -> 1 and -> 2 1.0-1.16: left to GEMM).
#: (An earlier machine had batch-1 32x32 heads at 0.83-0.88x and 64x64x16 -> 4 at 0.83x,
#: so (b) then required 4096 pixels and <= 4 or >= 32 input channels.)
#: (Since the scatter-rows kernel below, (b) also takes the 1-2 channel layers scatter
#: rows does not: 64x64x4 -> 1 9x9 s3 2.9 / 1.9x faster than GEMM, 64x64x3 -> 1 and
#: 64x64x4 -> 2 3x3 s2 1.03-1.26x, 32x32x32 -> 2 1.26 / 0.96x.)
#: (c), since 2026-12-07: <= ROWS_MID_MAX_IN_CHANNELS input and fewer than
#: DIRECT_MIN_OUT_CHANNELS output channels per group from ROWS_MID_MIN_PIXELS input
#: pixels, which went to igemm before. Measured on that day's Zen 4 (python
#: tools/dispatch_rules.py --rows-only, its 12-32 -> 16-31 shapes; igemm time / rows
#: time at 1 / 2 threads): 64x64 and 16x28x28 inputs, 3x3 s2, 4x4 s2 and 3x3 s1, 12-16
#: -> 16-24 channels 1.12-1.93 / 1.21-1.53, -> 31 0.87-1.32 / 0.99-1.17; 24 -> 16-24
#: 1.04-1.44 / 0.98-1.42, -> 31 0.95-1.26 / 1.00-1.07. Left out: 256-pixel inputs at 2
#: threads (16x16x12-24 -> 16-31: 0.71-1.62, a median under 1) and 32 input channels
#: (0.94-1.50 at 1 thread, Winograd taking the 4x4 s2 ones).
ROWS_MAX_IN_CHANNELS = 8
ROWS_MID_MAX_IN_CHANNELS = 24
ROWS_MID_MIN_PIXELS = 1024
ROWS_MIN_OUT_CHANNELS = 8
ROWS_FEW_OUT_CHANNELS = (1, IGEMM_MIN_OUT_CHANNELS - 1)
ROWS_MIN_PIXELS = 256
ROWS_MAX_SCRATCH_BYTES = 8 << 20

#: The Winograd phase kernel (src/_wino_impl.h, _run_winograd in src/_conv.pyx: the
#: s*s phases of a stride-s layer as stride-1 correlations of r = ceil(k / s) taps,
#: each by Winograd's F(m, r) - m = 3 for r = 2, m = 2 for r = 3, so every tile reads
#: 4 x 4 inputs - with one input transform shared by all phases, per transform
#: position a GEMM over a block of tiles on the igemm micro-kernel with the filter
#: transform packed into its panels once per call, and the output transform; Inf/NaN
#: in the filter or the transformed input hands the call to GEMM + col2im) runs for
#: 2-D channels-last layers it takes (winograd_fits) that save >= WINOGRAD_MIN_SAVING
#: x the multiplications of the direct sum (taps / prod(strides) against a*a / m*m:
#: 2.25 for 3x3 stride 1, 2x2 stride 1, 4x4 and 6x6 stride 2; 1.56 for 5x5 stride 2,
#: 1.27 for 3x3 stride 2), with >= WINOGRAD_MIN_TILES tiles (the filter transform is
#: paid back: each of its elements serves one multiply-add per tile), >=
#: WINOGRAD_MIN_IN_CHANNELS input channels and >= WINOGRAD_MIN_COLUMNS output channels
#: times phases (the GEMMs' depth and width), and a transformed filter of <=
#: WINOGRAD_MAX_FILTER_ELEMENTS. Measured (tools/dispatch_rules.py --winograd-only,
#: median of 5 x 30 ms loops, an AVX-512 machine, 2026-12-02; igemm time / Winograd
#: time at 1 / 2 threads): inside the rule 1.11-1.86x / 1.08-2.17x (3x3 s1 56x56x64 b1
#: 1.11 / 1.16, b16 1.28 / 1.39, 28x28x128 1.39 / 2.17, 14x14x256 b4 1.70 / 1.50,
#: 64x64x32 -> 64 1.35 / 1.42; 4x4 s2 16x16x128 -> 64 b4-b16 1.17-1.51 / 1.17-1.39,
#: 8x8x256 -> 128 b16 1.18 / 1.13, 64x64x64 -> 32 1.86 / 1.52; 6x6 s2 1.57 / 1.65;
#: 2x2 s1 1.11 / 1.08; at the tile bound, 24x24x64 b1 (144 tiles) 1.03 / 0.98); outside
#: it slower or even: 5x5 s2 0.98-1.18, 3x3 s2 1.14 / 0.82, 16-64 tiles 0.15-0.93
#: (4x4x512 -> 256 b16 0.15: a 32 MiB filter transform for 64 tiles), 32 output
#: columns 0.50-0.68, 16 columns 0.42-0.47.
#: A smaller saving, >= WINOGRAD_LOW_SAVING (5x5 and 5x5 stride 3: 1.56, 7x7 stride 4:
#: 1.72, 8x8 stride 3: 1.78; 3x3 stride 2's 1.27 stays out), pays with >= 2 x
#: WINOGRAD_MIN_COLUMNS columns from WINOGRAD_LOW_SAVING_TILES[1] tiles, or from [0]
#: tiles with >= 4 x WINOGRAD_MIN_COLUMNS columns and >= 2 x WINOGRAD_MIN_IN_CHANNELS
#: input channels. Measured (python tools/dispatch_rules.py --winograd-only, its 5x5-8x8
#: shapes; medians of 5 x 30 ms loops, a Zen 4 AVX-512 machine (one 512-bit FMA a cycle: 113 GFLOP/s per core in a
#: register-only loop), 2026-12-07; igemm time / Winograd time at 1 / 2 threads): 5x5 s2
#: 16x16x256 -> 128 (DCGAN TF g3) b16 (1296 tiles) 1.12 / 1.12, b8 1.08 / 1.09, b4 (324)
#: 1.10 / 1.06, b2 (162) 1.03 / 0.96, b1 (81) 0.88 / -; 32x32x128 -> 64 b1 (289) 1.17 /
#: 1.12, b4 1.27 / 1.18; 64x64x64 -> 32 (1089) 1.14-1.30 / 1.14-1.20; 64x64x128 -> 64
#: 1.33 / 1.24, -> 32 1.17 / 1.12; 16x32x32x64 -> 64 1.23 / 1.16; 64x64x32 -> 32 1.06 /
#: 1.08; 128x128x32 -> 32 1.23 / 1.11; 5x5 s3 48x48x128 -> 64 (289) 1.24 / 1.14; 7x7 s4
#: 48x48x64 -> 32 (289) 1.32 / 1.11; 8x8 s3 2x32x32x128 -> 64 (578) 1.43 / 1.43. Left
#: out: 64 columns (64x64x64 -> 16, 1089 tiles: 1.01 / 0.86; 32x32x64 -> 16: 0.94 /
#: 0.86; but 64x64x32 -> 16 1.12 / 1.11 and 128x128x32 -> 16 1.20 / 1.18, misses), 289
#: tiles of 32 input channels (32x32x32 -> 64: 0.88 / 0.92) or 128 columns (32x32x128 ->
#: 32: 1.08 / 0.83; 32x32x256 -> 32 1.29 / 1.13, a miss), 121-169 tiles (24x24x128 ->
#: 128 1.09 / 0.98, 20x20x256 -> 64 1.01 / 1.01; 5x5 s3 32x32x128 -> 64 1.22, a miss).
#: (The machine of 2026-12-02, two 512-bit FMAs a cycle, had 5x5 s2 at 0.98-1.18 under
#: the one rule.)
#: Fewer tiles, WINOGRAD_FEW_TILES[0] .. WINOGRAD_MIN_TILES - 1 (since 2026-12-08, after
#: the blocks were made equal and a multiple of the threads): the saving on the outputs
#: the tiles hold (a phase's tiles past the big side's edge are computed and dropped:
#: 18x18 inputs at 4x4 s2 fill 73 % of 7 x 7 tiles of 3 x 3, 2.25 -> 1.65x) >=
#: WINOGRAD_FEW_TILES_SAVING, >= 2 x WINOGRAD_MIN_COLUMNS columns (>= 1 x from
#: WINOGRAD_FEW_TILES[1] tiles) and a transformed filter of <= WINOGRAD_FEW_TILES_MAX_FILTER
#: elements. Measured on the Zen 4 (algos forced, 5-9 interleaved rounds, and python
#: tools/dispatch_rules.py --winograd-only, its few-tiles shapes; igemm time / Winograd
#: time at 1 / 2 threads): 4x4 s2 28x28x128 -> 64 (100 tiles) 1.35 / 1.12, 26x26x64 -> 32
#: (81) 1.49 / 1.27, 32x32x64 -> 32 (121) 1.46 / 1.25, 28x28x64 -> 32 1.38 / 1.14,
#: 32x32x32 -> 16 1.41 / 1.23; 3x3 s1 20x20x64 -> 64 (100) 1.35 / 1.11, 22x22x64 -> 64
#: (121) 1.35 / 1.20. In the host's noisy spells the 2-thread figures fell to 0.81-1.06
#: (medians over 7 processes: Winograd's per-call traffic through L3 - its transformed
#: filter, re-read by every block - suffers more from a busy neighbour than igemm's
#: L2-resident panels). Left out: 48-64 tiles, 1.1-1.4x at 1 thread and 1.06-1.25x at 2
#: when the host was quiet but 0.67-0.87x in its noisy spells (20x20x128 -> 64, 49 tiles,
#: 1.26 / 1.10 and 0.74; 14x14x256 -> 256 1.35 / 1.14 and 0.77; 16x16x128 -> 128 3x3 s1,
#: 64 tiles, 1.23 / 1.21 and 0.87); 18x18x64 -> 64 (81 tiles, 64 columns) 1.40 / 1.03;
#: 18x18x128 -> 64 (49 tiles, 73 % filled) 1.04 / 0.90; 24x24x256 -> 128 (81 tiles, 79 %
#: filled: 1.78x) 1.24 / 1.10, a miss; 14x14x512 -> 512 (a 4M-element transform) 0.88 /
#: 0.85. DCGAN PyTorch g3 at batch 1 (36 tiles, 79 % filled) 1.13 / 1.03-1.07 stays on
#: igemm. No case of the suite changes kernel.
#: The scatter-rows kernel (src/_dot.h, cd_sr_*: the pixel-lanes micro-kernel over
#: runs of a band's small pixels, every (tap, channel) filter row the band needs
#: broadcast, each result row added into a per-(row, tap column) buffer at fixed
#: lanes, then the tap columns summed into phases and interleaved into Y) runs for 2-D
#: channels-last layers with 1 .. len(SCATTER_MIN_IN_CHANNELS) output channels per
#: group, >= SCATTER_MIN_IN_CHANNELS[cb - 1] input channels per group (phase rows
#: gains on it as the output channels fill its tiles, so the bound rises with them)
#: and >= SCATTER_MIN_PIXELS input pixels, while a one-phase task's scratch is <=
#: ROWS_MAX_SCRATCH_BYTES. Measured (tools/dispatch_rules.py --scatter-only, median of
#: 5 x 30 ms loops, AVX-512, 2026-12-02; best of GEMM / igemm / phase rows over scatter
#: rows, 1 / 2 threads): FSRCNN 240x320x56 -> 1 9x9 s2 2.04 / 2.29 (4.8 against GEMM's
#: 9.8 ms), 120x160x56 -> 1 1.90 / 2.25, 64x64x64 -> 1 3x3 s1 1.62 / 1.43, 64x64x32
#: -> 1 5x5 1.55 / 1.79, 16x16x64 -> 1 1.3 / 1.2, 4x32x32x8 -> 1 1.0 / 1.4,
#: 16x28x28x16 -> 1 1.23 / 1.28; 64x64x64 -> 2 0.96 / 1.14, 16x16x128 -> 2 1.26 /
#: 1.0; 32x32x128 -> 3 5x5 (TF DCGAN g4) b1 1.19 / 1.28, b16 1.16 / 1.14, 64x64x256
#: -> 3 3x3 s1 1.44 / 1.15. Slower: 8x8 inputs (64 pixels: 0.64-1.0), 1-2 channels
#: from 3-4 input channels (64x64x4 -> 1 9x9 s3 0.42, -> 2 0.37-0.57: a tile's few
#: multiply-adds per add), 32x32x32 -> 2 (0.63 at 1 thread), 3 channels from 32-96
#: (PyTorch DCGAN g4 0.71, ZFNet 110x110x96 -> 3 7x7 0.88-0.90), 4-15 channels
#: (0.57-1.02).
#: The planar transposed conv (src/_fplanar_impl.h, cd_tplrun_; _run_transpose_planar in
#: src/_conv.pyx: the planar forward's planes, of the small rows a band of big rows
#: reads, with the lanes consecutive big pixels of one column phase, every tap of the
#: phase one contiguous vector of a plane times the filter broadcast; all column phases
#: of a block interleaved into the big row; a filter holding Inf or NaN goes to GEMM +
#: col2im) runs for 1-D/2-D channels-last layers of one group with TPLANAR_OUT_CHANNELS
#: big-side and <= TPLANAR_MAX_IN_CHANNELS small-side channels: image-to-image layers
#: into RGB or a few maps, where the other kernels' tiles are mostly empty. Measured
#: (python tools/dispatch_rules.py --planar-only, medians of 5 x 30 ms loops, AVX-512,
#: 2026-12-03; best of GEMM / phase rows / scatter rows over planar at 1 / 2 threads):
#: 224x224x3 -> 3 3x3 s2 (article_rgb224) b1 1.54 / 1.11, b16 1.19 / 1.77; 256x256x3
#: -> 3 4x4 1.04 / 2.09; 128x128x8 -> 3 1.31 / 1.78; 16x32x32x8 -> 3 1.02 / 1.84;
#: 64x64x4 -> 2 1.59 / 1.56, b16 1.14 / 1.72; 64x64x12 -> 4 1.47 / 1.62; 64x64x2 -> 8
#: 1.42 / 1.40; 4x28x28x3 -> 8 1.15 / 1.81; 64x64x3 -> 3 3x3 s1 1.00 / 1.07. Slower
#: with 16+ input channels (64x64x16 -> 4 0.89 / 0.93, 128x128x16 -> 3 s1 0.66 / 1.10,
#: 24-256 channels 0.39-0.96: one plane load and one broadcast per few multiply-adds,
#: where scatter rows and phase rows reuse each load across a tile) and into one channel
#: (64x64x3 -> 1 1.26 / 0.71, 4x32x32x8 -> 1 0.94 / 0.88, 64x64x4 -> 1 9x9 s3 1.01 /
#: 0.98).
#: Since 2026-12-07 planar takes only what phase rows does not (few pixels, or a rows
#: scratch over the bound): on that day's Zen 4 machine (one 512-bit FMA a cycle; the
#: table above is from a machine with two), with phase rows' register transposes of
#: 2026-12-03 night, phase rows beat planar on the rule's shapes (python
#: tools/dispatch_rules.py --planar-only and a 7-round rows/planar alternation; planar
#: time / rows time at 1 / 2 threads): 224x224x3 -> 3 3x3 s2 b1 1.31 / 1.38, b2 1.15 /
#: 1.24, b4 1.03 / 1.17, b8 0.98 / 0.94, b16 0.90 / 1.08; 112x112x3 -> 3 1.34 / 1.22;
#: 256x256x3 -> 3 4x4 1.47 / 1.30; 64x64x4 -> 2 1.31 / 1.10, b16 1.27 / 1.15; 64x64x3
#: -> 3 s1 1.31 / 1.00; 64x64x2 -> 8 1.22 / 1.38; 4x28x28x3 -> 8 1.19 / 1.29;
#: 128x128x8 -> 3 1.06 / 1.17; 128x128x4 -> 4 4x4 1.22 / 1.14; 64x64x12 -> 4 1.23 /
#: 1.07; 16x32x32x8 -> 3 1.15 / 1.23; 16x64x64x3 -> 3 1.20 / 1.26; 64x64x8 -> 8 1.31 /
#: 0.92; 64x64x6 -> 6 s1 1.15 / 0.98; 32x32x3 -> 3 1.23 / 1.02.
TPLANAR_OUT_CHANNELS = (2, 8)
TPLANAR_MAX_IN_CHANNELS = 12
TPLANAR = 8
SCATTER_MIN_IN_CHANNELS = (8, 64, 128)
SCATTER_MIN_PIXELS = 256
SCATTER = 7
WINOGRAD_MIN_SAVING = 2.0
WINOGRAD_LOW_SAVING = 1.5
WINOGRAD_LOW_SAVING_TILES = (256, 1024)
WINOGRAD_MIN_TILES = 128
WINOGRAD_FEW_TILES = (81, 96)
WINOGRAD_FEW_TILES_SAVING = 1.9
WINOGRAD_FEW_TILES_MAX_FILTER = 2 << 20
WINOGRAD_MIN_IN_CHANNELS = 32
WINOGRAD_MIN_COLUMNS = 64
WINOGRAD_MAX_FILTER_ELEMENTS = 4 << 20
WINOGRAD = 6

#: The forward conv on the igemm micro-kernel (src/_dot.h, cd_igf_*): channels-last,
#: >= FWD_IGEMM_MIN_OUT_CHANNELS output and >= FWD_IGEMM_MIN_IN_CHANNELS input channels
#: per group, >= FWD_IGEMM_MIN_PIXELS output pixels, the filter as for igemm.
FWD_IGEMM_MIN_OUT_CHANNELS = 16
FWD_IGEMM_MIN_IN_CHANNELS = 16
FWD_IGEMM_MIN_PIXELS = 16
#: The forward "tap rows" kernel (src/_conv.pyx _run_forward_taps, cd_gemm_taps): im2col +
#: GEMM with no column buffer (a zero-padded input band, the kernel rows as taps of
#: kw * cb contiguous inputs), for 1-D/2-D, one group, no width dilation, >=
#: FWD_TAPS_MIN_OUT_CHANNELS output channels, a filter of <= FWD_TAPS_MAX_FILTER elements
#: and >= FWD_IGEMM_MIN_PIXELS output pixels: taken from FWD_TAPS_MIN_PIXELS output
#: pixels, and below that where the implicit GEMM's rule does not apply (measured with
#: tools/forward_rules.py on the suite turned round, 1 and 2 threads: tap rows / igemm
#: 0.8-1.1x at batch 1 with 256-3136 pixels, where igemm wins at 2 threads, 1.0-2.1x
#: from 4096 pixels; tap rows / im2col + GEMM 1.1-1.8x on 1-3 channel images).
FWD_TAPS_MIN_OUT_CHANNELS = 3
FWD_TAPS_MAX_FILTER = 1 << 20
FWD_TAPS_MIN_PIXELS = 4096
FWD_TAPS = 5
#: The planar forward (src/_fplanar_impl.h, _run_forward_planar in src/_conv.pyx: the
#: vector lanes are consecutive output pixels of a row; the input rows a band reads are
#: turned into planes per (row, input channel, column phase) so every tap reads one
#: contiguous vector, the filter broadcast) runs for 1-D/2-D channels-last layers with
#: one group and 1 .. FWD_PLANAR_MAX_OUT_CHANNELS output channels, where im2col + GEMM
#: and tap rows leave most lanes empty. Measured (python tools/forward_rules.py
#: --planar: medians of 5 x 30 ms loops, kernels forced, AVX-512, 2026-12-03; best of
#: im2col + GEMM / tap rows over planar at 1 / 2 threads): 448x448x3 -> 3 3x3 s2 (article_rgb224
#: turned round) b1 2.70 / 2.37, b16 1.68 / 1.59; 56x56x32 -> 1 s2 (article_mnist) b1
#: 2.07 / 3.83, b16 2.37 / 5.58; 224x224x64 -> 3 s1 1.63 / 1.71; 240x320x32 -> 1 5x5
#: 3.7 / 11; 480x640x1 -> 1 9x9 s2 3.7 / 5.4; 64x64x128 -> 3 5x5 s2 b4 1.18 / 1.96;
#: 256x256x32 -> 3 4x4 s2 1.45 / 1.92; 64x64x256 -> 1 1.80 / 2.58, -> 8 1.32 / 1.48;
#: 32x32x512 -> 4 2.5 / 2.4; 128x128x16 -> 4 3.1 / 3.0; 128x128x64 -> 8 1.9 / 2.3;
#: 16x16x64 -> 2 3.8 / 4.2; the closest, 16x28x28x64 -> 8 s2, 0.91-1.02 / 1.09 (tap rows
#: about even there).
FWD_PLANAR_MAX_OUT_CHANNELS = 8
FWD_PLANAR = 6


def _gemm_tiles():
    """GEMMs are cut into one tile per CPU of the machine (2..8): enough for every
    thread count the machine can run in parallel, and fixed per machine, so results
    never depend on the thread count (see _gemm_tiled in src/_conv.pyx)."""
    return min(8, max(2, os.cpu_count() or 2))


_conv.set_gemm_tiles(_gemm_tiles())


# the fused Cython entry points, specialised per dtype once (skips the per-call
# dispatch on the buffers' dtype)
_KERNELS = {(kind, np.dtype(dt)): fn[ctype]
            for kind, fn in (("transpose", _conv.conv_transpose),
                             ("forward", _conv.conv_forward),
                             ("backprop_filter", _conv.conv_backprop_filter))
            for dt, ctype in ((np.float32, "float"), (np.float64, "double"))}


def winograd_fits(geom):
    """Whether the Winograd kernel takes geom as a 2-D layer (channels-last, one group,
    no dilation, 1-4 taps per phase per axis with a tile size for them: _wi_plan)."""
    return geom.n == 2 and not geom.cf and _conv.winograd_plan(geom.kernel_args()) is not None


def transpose_planar_fits(geom):
    """Whether the planar transposed conv takes geom (channels-last, 1-D/2-D, one group,
    1-8 big-side channels: _tpl_fits in src/_conv.pyx)."""
    return not geom.cf and _conv.transpose_planar_fits(geom.kernel_args())


def _winograd_pays(geom):
    """The Winograd rule (see WINOGRAD_MIN_SAVING), for a geom winograd_fits."""
    if geom.cs < WINOGRAD_MIN_IN_CHANNELS:
        return False
    tiles, inputs, outputs = _conv.winograd_plan(geom.kernel_args())
    saving = math.prod(geom.k) / math.prod(geom.s) * outputs / inputs
    columns = math.prod(geom.s) * geom.cb
    if WINOGRAD_FEW_TILES[0] <= tiles < WINOGRAD_MIN_TILES:
        # the few-tiles rule: the saving on the outputs the tiles hold, not past the edge
        fill = geom.batch * math.prod(geom.big) / (tiles * math.prod(geom.s) * outputs)
        return (saving * fill >= WINOGRAD_FEW_TILES_SAVING
                and (columns >= 2 * WINOGRAD_MIN_COLUMNS
                     or (columns >= WINOGRAD_MIN_COLUMNS and tiles >= WINOGRAD_FEW_TILES[1]))
                and inputs * geom.cs * columns <= WINOGRAD_FEW_TILES_MAX_FILTER)
    if saving < WINOGRAD_MIN_SAVING and not (
            saving >= WINOGRAD_LOW_SAVING and columns >= 2 * WINOGRAD_MIN_COLUMNS
            and (tiles >= WINOGRAD_LOW_SAVING_TILES[1]
                 or (tiles >= WINOGRAD_LOW_SAVING_TILES[0]
                     and columns >= 4 * WINOGRAD_MIN_COLUMNS
                     and geom.cs >= 2 * WINOGRAD_MIN_IN_CHANNELS))):
        return False
    return (columns >= WINOGRAD_MIN_COLUMNS and tiles >= WINOGRAD_MIN_TILES
            and inputs * geom.cs * columns <= WINOGRAD_MAX_FILTER_ELEMENTS)


def choose_transpose_algo(geom):
    """The transposed-convolution kernel: 0 = GEMM + col2im, 1 = direct, 2 = dot,
    3 = implicit GEMM, 4 = pixel lanes, 5 = phase rows, 6 = Winograd phases, 7 =
    scatter rows, 8 = planar (see above). Depends only on the shapes."""
    if geom.cf:
        return 0
    taps = math.prod(geom.k)
    pixels = geom.batch * math.prod(geom.small)
    if taps > _conv.DOT_MAX_TAPS:
        return 0
    filter_ok = taps * geom.groups * geom.cb * geom.cs <= IGEMM_MAX_FILTER_ELEMENTS
    one_tap = all(k == s and d == 1 for k, s, d in zip(geom.k, geom.s, geom.d))
    if filter_ok and geom.cb >= DIRECT_MIN_OUT_CHANNELS and (
            geom.cs <= DIRECT_MAX_IN_CHANNELS
            or (one_tap and pixels >= DIRECT_ONE_TAP_MIN_PIXELS)):
        return 1
    if (filter_ok and DIRECT_FEW_OUT_CHANNELS <= geom.cb < DIRECT_MIN_OUT_CHANNELS
            and geom.cs <= DIRECT_FEW_IN_CHANNELS and all(d == 1 for d in geom.d)
            and math.prod(-(-k // s) for k, s in zip(geom.k, geom.s)) * geom.cs
            * -(-geom.cb // DIRECT_FEW_LANES) <= DIRECT_FEW_REGISTERS):
        return 1
    if (geom.n == 2 and geom.cb <= len(SCATTER_MIN_IN_CHANNELS)
            and geom.cs >= SCATTER_MIN_IN_CHANNELS[geom.cb - 1]
            and pixels >= SCATTER_MIN_PIXELS and _conv.scatter_rows_fits(geom.kernel_args())
            and _conv.scatter_rows_scratch_bytes(geom.kernel_args())
            <= ROWS_MAX_SCRATCH_BYTES):
        return SCATTER
    if ((geom.cs <= ROWS_MAX_IN_CHANNELS and geom.cb >= ROWS_MIN_OUT_CHANNELS)
            or (ROWS_FEW_OUT_CHANNELS[0] <= geom.cb <= ROWS_FEW_OUT_CHANNELS[1]
                and pixels >= ROWS_MIN_PIXELS)
            or (geom.cs <= ROWS_MID_MAX_IN_CHANNELS and geom.cb < DIRECT_MIN_OUT_CHANNELS
                and pixels >= ROWS_MID_MIN_PIXELS)):
        if _conv.phase_rows_scratch_bytes(geom.kernel_args()) <= ROWS_MAX_SCRATCH_BYTES:
            return 5
    if (TPLANAR_OUT_CHANNELS[0] <= geom.cb <= TPLANAR_OUT_CHANNELS[1]
            and geom.cs <= TPLANAR_MAX_IN_CHANNELS and transpose_planar_fits(geom)):
        return TPLANAR
    if winograd_fits(geom) and _winograd_pays(geom):
        return 6
    depth = taps / math.prod(geom.s) * geom.cs
    igemm_depth = (depth <= IGEMM_MAX_PHASE_DEPTH
                   or (pixels >= IGEMM_WIDE_PIXELS and depth <= IGEMM_MAX_PHASE_DEPTH_WIDE))
    lanes_min = (LANES_MIN_PIXELS if pixels != geom.batch
                 else LANES_MIN_PIXELS_1X1_SHALLOW if geom.cs < LANES_1X1_SHALLOW
                 else LANES_MIN_PIXELS_1X1)
    if (lanes_min <= pixels <= LANES_MAX_PIXELS
            and (pixels < LANES_MAX_PIXELS or depth >= LANES_DEEP_PHASE)
            and geom.cs >= LANES_MIN_IN_CHANNELS and geom.cb >= LANES_MIN_OUT_CHANNELS):
        return 4
    if (pixels <= DOT_MAX_PIXELS and min(geom.small[-2:]) >= 2
            and geom.cs >= DOT_MIN_IN_CHANNELS and geom.cb >= 4):
        return 2
    if (geom.cb >= IGEMM_MIN_OUT_CHANNELS and pixels >= IGEMM_MIN_PIXELS and igemm_depth
            and filter_ok):
        return 3
    return 0


def choose_forward_algo(geom):
    """The forward-convolution kernel: 0 = im2col + GEMM, 3 = implicit GEMM, 5 = tap
    rows, 6 = planar (see above). Depends only on the shapes."""
    if geom.cf or math.prod(geom.k) > _conv.DOT_MAX_TAPS:
        return 0
    if (geom.cs <= FWD_PLANAR_MAX_OUT_CHANNELS
            and _conv.forward_planar_fits(geom.kernel_args())):
        return FWD_PLANAR
    pixels = geom.batch * math.prod(geom.small)
    filt = math.prod(geom.k) * geom.groups * geom.cb * geom.cs
    taps = (geom.cs >= FWD_TAPS_MIN_OUT_CHANNELS and filt <= FWD_TAPS_MAX_FILTER
            and pixels >= FWD_IGEMM_MIN_PIXELS
            and _conv.forward_taps_fits(geom.kernel_args()))
    if taps and pixels >= FWD_TAPS_MIN_PIXELS:
        return FWD_TAPS
    if (geom.cs >= FWD_IGEMM_MIN_OUT_CHANNELS and geom.cb >= FWD_IGEMM_MIN_IN_CHANNELS
            and pixels >= FWD_IGEMM_MIN_PIXELS and filt <= IGEMM_MAX_FILTER_ELEMENTS):
        return 3
    return FWD_TAPS if taps else 0


#: kernels that never call BLAS, so run without the BLAS guard (1.6 us a call): the
#: transposed direct rows, dot, pixel lanes and scatter rows, and the forward implicit
#: GEMM, tap rows and planar. (The transposed igemm and phase rows hand an Inf/NaN filter to
#: GEMM + col2im.)
_NO_BLAS = frozenset({("transpose", 1), ("transpose", 2), ("transpose", 4),
                      ("transpose", 7), ("forward", 3), ("forward", 5), ("forward", 6)})

#: the kernel choice per kind of op (memoised on the geometry by run)
_CHOOSE = {"transpose": choose_transpose_algo, "forward": choose_forward_algo}


def run(geom, a, b, out, kind, chunk_bytes=None, algo=None):
    """Run one kernel per ``geom``; out is overwritten entirely.

    kind 'transpose':       out (big side)   := conv_transpose(a = small side, b = filter)
    kind 'forward':         out (small side) := conv(a = big side, b = filter)
    kind 'backprop_filter': out (filter)     := d<conv(a, w), b = small side>/dw

    a, b, out are C-contiguous, native float arrays of one dtype (validated upstream).
    """
    if out.size == 0:
        return out
    if not out.flags.aligned:
        # a misaligned out= (e.g. a view at an odd byte offset): the kernels and BLAS
        # must not see it (misaligned loads/stores are undefined behaviour in C)
        tmp = run(geom, a, b, np.empty(out.shape, out.dtype), kind, chunk_bytes, algo)
        out[...] = tmp
        return out
    if kind == "forward" and a.size == 0:
        # an input with no pixels: each output is a sum of (padding) zeros times the
        # filter: 0, or NaN where the filter holds NaN/Inf (0 * Inf), as the kernel's
        # own arithmetic would give. w is (taps..., cb, G*cs): sum per output channel.
        zero = (b * 0).reshape(-1, b.shape[-1]).sum(axis=0)
        out[...] = zero.reshape((1, -1) + (1,) * geom.n) if geom.cf else zero
        return out
    kernel = _KERNELS[kind, out.dtype]
    args = (a.reshape(-1), b.reshape(-1), out.reshape(-1), geom.kernel_args(),
            geom.cf, get_num_threads(), CHUNK_BYTES if chunk_bytes is None else chunk_bytes)
    choose = _CHOOSE.get(kind)
    if choose is None:
        with blas_single_thread:
            kernel(*args)
        return out
    if algo is None:
        algo = geom.algo
        if algo is None:
            algo = geom.algo = choose(geom)
    if (kind, algo) in _NO_BLAS:
        kernel(*args, algo)
    else:
        with blas_single_thread:
            kernel(*args, algo)
    return out
