"""
=======================================================
Hopfield layers inside skorch: callbacks and schedules
=======================================================

The skhop estimators are the quickest way to a Hopfield model in an sklearn
workflow. When you want skorch's machinery instead (callbacks, checkpoints,
learning-rate schedulers, a training history you can plot), the layers of
:mod:`skhop.nn` are plain :class:`torch.nn.Module` objects and drop straight
into :class:`skorch.NeuralNetClassifier`.

Here a :class:`~skhop.nn.HopfieldLayer` with learned stored patterns
classifies sklearn's handwritten digits. skorch trains it with a cosine
learning-rate schedule and keeps the best epoch by validation accuracy; the
same data go through :class:`~skhop.HopfieldClassifier` for comparison.
"""

# %%
# The module
# ----------
# skorch instantiates ``module`` itself from ``module__*`` parameters. The
# network returns class scores (logits); with ``criterion=CrossEntropyLoss``
# skorch applies the softmax in ``predict_proba`` when told so below.
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

from skhop import HopfieldClassifier
from skhop.nn import HopfieldLayer

try:
    import skorch
    from skorch.callbacks import Checkpoint, EpochScoring, LRScheduler
except ImportError as exc:  # pragma: no cover - a clear message for users
    raise SystemExit("This example needs skorch: pip install skorch") from exc

QUICK = os.environ.get("SKHOP_EXAMPLES_QUICK") == "1"
torch.set_num_threads(1)


class HopfieldDigits(nn.Module):
    """A Hopfield layer whose stored patterns are learned prototypes."""

    def __init__(self, n_features=64, n_classes=10, num_memories=100, hidden_size=64, num_heads=4):
        super().__init__()
        self.hopfield = HopfieldLayer(
            n_features,
            num_memories,
            output_size=n_classes,
            hidden_size=hidden_size,
            num_heads=num_heads,
        )

    def forward(self, X):
        return self.hopfield(X)


# %%
# Data
# ----
X, y = load_digits(return_X_y=True)
if QUICK:
    X, y = X[:500], y[:500]
X = StandardScaler().fit_transform(X).astype(np.float32)
y = y.astype(np.int64)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0, stratify=y
)

# %%
# skorch: a schedule, a checkpoint of the best epoch, a scoring callback
# ----------------------------------------------------------------------
max_epochs = 8 if QUICK else 40
torch.manual_seed(0)
net = skorch.NeuralNetClassifier(
    HopfieldDigits,
    criterion=nn.CrossEntropyLoss,
    optimizer=torch.optim.AdamW,
    lr=1e-2,
    max_epochs=max_epochs,
    batch_size=128,
    train_split=skorch.dataset.ValidSplit(0.2, stratified=True, random_state=0),
    callbacks=[
        LRScheduler(policy="CosineAnnealingLR", T_max=max_epochs),
        EpochScoring("accuracy", name="valid_accuracy", lower_is_better=False),
        Checkpoint(
            monitor="valid_accuracy_best",
            load_best=True,
            dirname=None,
            f_params=None,
            f_optimizer=None,
            f_criterion=None,
            f_history=None,
        ),
    ],
    verbose=0,
)
# ``Checkpoint(..., f_params=None, ...)`` keeps the best weights in memory only.
t0 = time.perf_counter()
net.fit(X_train, y_train)
skorch_seconds = time.perf_counter() - t0
skorch_accuracy = net.score(X_test, y_test)

# %%
# The same model family as an skhop estimator
# -------------------------------------------
t0 = time.perf_counter()
clf = HopfieldClassifier(random_state=0).fit(X_train, y_train)
skhop_seconds = time.perf_counter() - t0
skhop_accuracy = clf.score(X_test, y_test)

print(f"skorch + HopfieldLayer: test accuracy {skorch_accuracy:.3f} in {skorch_seconds:.1f} s")
print(f"HopfieldClassifier:     test accuracy {skhop_accuracy:.3f} in {skhop_seconds:.1f} s")

# %%
# skorch's history
# ----------------
# Every epoch's losses, scores and learning rate are in ``net.history``.
history = net.history
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
ax1.plot(history[:, "train_loss"], label="train loss")
ax1.plot(history[:, "valid_loss"], label="validation loss")
ax1.set_xlabel("epoch")
ax1.legend()
ax2.plot(history[:, "valid_accuracy"], color="C2")
ax2.set_xlabel("epoch")
ax2.set_ylabel("validation accuracy")
fig.suptitle("HopfieldLayer trained by skorch")
fig.tight_layout()

# %%
# When to use which
# -----------------
# * :class:`~skhop.HopfieldClassifier` is an sklearn estimator through and
#   through: it passes sklearn's estimator checks, clones and pickles, runs
#   one torch thread by default and chooses its training set-up itself.
# * skorch is the path when you need its callbacks, checkpoints to disk,
#   custom schedules or your own network around the skhop layers.
