"""dlfound: reproduce, measure and extend the foundational claims of deep learning about MLPs.

    import jax
    from dlfound import Config, load, make_train
    data = load("mnist1d")
    train = make_train(Config(depth=4, width=64, activation="relu", num_epochs=10))
    results = jax.jit(jax.vmap(train, in_axes=(0, None)))(jax.random.split(jax.random.key(0), 5), data)
"""

from dlfound.config import Config
from dlfound.data import Dataset, load
from dlfound.errors import ConfigError
from dlfound.hyperparams import Hyperparams
from dlfound.models import MLP
from dlfound.train import TrainState, evaluate, make_train, train_epoch, train_step

__all__ = ["Config", "ConfigError", "Dataset", "Hyperparams", "MLP", "TrainState", "evaluate", "load",
           "make_train", "train_epoch", "train_step"]
__version__ = "0.1.0"
