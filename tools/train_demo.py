"""Train the bundled demo CNN for ``cdeconv visualize`` with cdeconv's own layers.

Data: scikit-learn's handwritten digits (1797 real 8x8 images, shipped inside the
scikit-learn package; nothing is downloaded), upsampled to 16x16. Network: Conv2D(8, 3,
relu) -> MaxPooling2D -> Conv2D(16, 3, relu) -> MaxPooling2D -> Flatten -> Dense(10),
trained with softmax cross-entropy and Adam through the layers' backward passes.
Writes cdeconv/data/demo_cnn.npz (the model, cdeconv's .npz export) and
cdeconv/data/demo_digits.npz (64 held-out images, their labels, the test accuracy).

    pip install scikit-learn && python tools/train_demo.py
"""
import pathlib

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from cdeconv import layers as L

OUT = pathlib.Path(__file__).resolve().parents[1] / "cdeconv" / "data"


def main(epochs=30, seed=0):
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    x = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)[..., None]        # 16x16x1
    xtr, xte, ytr, yte = train_test_split(x, digits.target, test_size=0.2,
                                          random_state=seed, stratify=digits.target)
    model = L.Sequential([
        L.Conv2D(8, 3, padding="same", activation="relu", seed=1, name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(16, 3, padding="same", activation="relu", seed=2, name="conv2"),
        L.MaxPooling2D(2, name="pool2"),
        L.Flatten(name="flatten"),
        L.Dense(10, seed=3, name="logits"),
    ], name="digits_cnn")
    rng = np.random.default_rng(seed)
    model.predict(xtr[:1])
    adam = {}
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(xtr))
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            logits = model.forward(xtr[idx])
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(idx)), ytr[idx]] -= 1
            _, grads = model.backward((p / len(idx)).astype(np.float32))
            step += 1
            for layer, gs in zip(model.layers, grads):
                for name, g in zip(layer.weight_names, gs):
                    m, v = adam.get((layer.name, name), (0.0, 0.0))
                    m = 0.9 * m + 0.1 * g
                    v = 0.999 * v + 0.001 * g * g
                    adam[layer.name, name] = (m, v)
                    mh, vh = m / (1 - 0.9 ** step), v / (1 - 0.999 ** step)
                    w = getattr(layer, name) - 0.01 * mh / (np.sqrt(vh) + 1e-8)
                    setattr(layer, name, w.astype(np.float32))
        acc = (model.predict(xte).argmax(1) == yte).mean()
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f}")
    OUT.mkdir(exist_ok=True)
    model._input_shape = [None, 16, 16, 1]
    model.save(OUT / "demo_cnn.npz")
    np.savez(OUT / "demo_digits.npz", images=xte[:64], labels=yte[:64].astype(np.int64),
             test_accuracy=np.float64(acc), n_test=np.int64(len(yte)))
    print(f"saved; test accuracy {acc:.4f} on {len(yte)} held-out images")


if __name__ == "__main__":
    main()
