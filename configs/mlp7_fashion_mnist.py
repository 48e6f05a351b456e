r"""Default experiment: MLP-7-ReLU trained on Fashion-MNIST (offline dataset).

The Dynamical Isometry MLP (7 Dense layers, width 100, inputs resized to 32x32
and flattened to 1024) with the paper's step schedule shape
("0:0.01,30:0.001,60:0.0001" over 90 epochs) as fractions of `num_epochs`
(default 30: LR 0.01, 0.001 from epoch 10, 0.0001 from epoch 20), SGD
momentum 0.9, weight decay 1e-4, batch 128.

Run:
  python -m jaxprune.main --config=configs/mlp7_fashion_mnist.py --workdir=workdirs/mlp7
  (`make demo` runs exactly this after preparing the dataset.)
Expected: ~88-89% test accuracy after 30 epochs, about 1-2 minutes on a 2-core CPU.
Smoke variant (seconds): --config=configs/mlp7_fashion_mnist.py:smoke
"""

from jaxprune import config_utils


def get_config(arg: str | None = None):
  config = config_utils.base_config()
  config.model.name = "mlp7_relu"
  config.data.name = "fashion_mnist_local"
  config.data.image_size = (32, 32)
  config.num_epochs = 30
  config.batch_size = 128
  config.optimizer.name = "sgd"
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 1e-4
  config.schedule.name = "piecewise"
  config.schedule.spec = "0:0.01,1/3:0.001,2/3:0.0001"  # Epochs 10, 20 of 30.
  return config_utils.finalize(config, arg)
