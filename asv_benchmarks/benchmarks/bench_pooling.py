"""max_pool_with_argmax / max_unpool on a ZFNet-like feature map."""
import numpy as np

import cdeconv


class MaxPoolWithArgmax:
    param_names = ["batch"]
    params = [[1, 16]]

    def setup(self, batch):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((batch, 110, 110, 96)).astype(np.float32)
        self.y, self.a = cdeconv.max_pool_with_argmax(self.x, 3, 2, "SAME")

    def time_max_pool_with_argmax(self, batch):
        cdeconv.max_pool_with_argmax(self.x, 3, 2, "SAME")

    def time_max_unpool(self, batch):
        cdeconv.max_unpool(self.y, self.a, self.x.shape)
