"""End-to-end inference of the DCGAN generator fixture: Keras on TensorFlow vs cdeconv
(the same .keras file), batch 1 and 16, interleaved rounds in one process, medians.
Needs TensorFlow and cdeconv in the same environment:

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu h5py .
    /tmp/tfvenv/bin/python tools/keras_timing.py [threads]
"""
import pathlib
import statistics
import sys
import time

import numpy as np

N_THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 1
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(N_THREADS)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras  # noqa: E402

import cdeconv  # noqa: E402

PATH = pathlib.Path(__file__).resolve().parents[1] / "tests/data/keras/dcgan.keras"


def per_call(fn, min_s=0.05):
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n


def main():
    cdeconv.set_num_threads(N_THREADS)
    km = keras.saving.load_model(PATH)
    cm = cdeconv.load_model(PATH)
    kfn = tf.function(lambda v: km(v, training=False))
    for batch in (1, 16):
        z = np.random.default_rng(0).normal(size=(batch, 32)).astype(np.float32)
        zt = tf.constant(z)
        err = np.abs(kfn(zt).numpy() - cm.predict(z)).max()
        times = {"keras": [], "cdeconv": []}
        for _ in range(7):
            times["keras"].append(per_call(lambda: kfn(zt).numpy()))
            time.sleep(0.05)
            times["cdeconv"].append(per_call(lambda: cm.predict(z)))
            time.sleep(0.05)
        k, c = (statistics.median(times[n]) * 1e3 for n in ("keras", "cdeconv"))
        print(f"threads {N_THREADS} batch {batch:2d}: Keras/TF {k:.3f} ms, cdeconv "
              f"{c:.3f} ms, Keras/cdeconv {k / c:.2f}x; max |diff| {err:.1e}")


if __name__ == "__main__":
    main()
