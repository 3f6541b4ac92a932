"""The one training loop every skhop estimator uses.

The loop trains a ``torch.nn.Module`` on a tuple of tensors that share their
first dimension (features, targets, sample weights, padding masks, ...).
Estimators call it inside :func:`skhop._base.seeded`, so shuffling, dropout
and initialisation are reproducible and the caller's RNG is untouched.
Full-batch when the data fit in one batch, shuffled mini-batches otherwise.
"""

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import kendalltau, theilslopes

from .nn._optim import cosine_schedule

__all__ = ["TrainResult", "cut_short_schedule", "train", "resolve_batch_size", "split_validation"]

# The cut-short rule reads the trend of at least this many final epochs, at
# this level of Kendall's test.
_TREND_EPOCHS = 5
_TREND_LEVEL = 0.01


@dataclass
class TrainResult:
    """What a run of :func:`train` produced."""

    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    best_validation_score: float | None = None
    converged: bool = False


def resolve_batch_size(batch_size, n_samples):
    """``batch_size`` clipped to ``[1, n_samples]`` (full batch when >= n)."""
    return max(1, min(int(batch_size), n_samples))


def split_validation(y_stratify, validation_fraction, rng):
    """Indices (train, validation), stratified when ``y_stratify`` is given."""
    from sklearn.model_selection import train_test_split

    n = len(y_stratify) if y_stratify is not None else None
    idx = np.arange(n)
    stratify = y_stratify
    if stratify is not None:
        _, counts = np.unique(stratify, return_counts=True)
        n_val = int(np.ceil(validation_fraction * n))
        if counts.min() < 2 or n_val < len(counts):
            stratify = None
    train_idx, val_idx = train_test_split(
        idx, test_size=validation_fraction, random_state=rng, stratify=stratify
    )
    return np.sort(train_idx), np.sort(val_idx)


def train(
    module,
    batch_loss,
    tensors,
    *,
    max_iter,
    batch_size,
    learning_rate,
    weight_decay=0.0,
    tol=1e-4,
    n_iter_no_change=10,
    validation=None,
    validation_score=None,
    optimizer=None,
    verbose=0,
    name="",
    lr_schedule="constant",
):
    """Train ``module`` in place.

    Parameters
    ----------
    module : torch.nn.Module
    batch_loss : callable ``(module, *batch) -> scalar Tensor``
        Mean loss over a batch (sample weights, if any, among ``batch``).
    tensors : tuple of Tensor
        Training data, all with the same first dimension, already on the
        device of ``module``.
    max_iter : int
        Maximum number of epochs.
    batch_size : int
    learning_rate, weight_decay : float
        For AdamW.
    tol : float
        Minimum improvement. Without ``validation``, training stops once the
        training loss has not dropped by ``tol`` for ``n_iter_no_change``
        epochs; with ``validation``, once the validation score has not risen
        by ``tol`` for that long, and the best epoch's weights are restored.
    n_iter_no_change : int
    validation : tuple of Tensor, optional
        Held-out data for ``validation_score``.
    validation_score : callable ``(module, *validation) -> float``
        Higher is better; called in eval mode without gradients.
    optimizer : torch.optim.Optimizer, optional
        To continue a previous run (``warm_start``); a new AdamW otherwise.
    verbose : int
        Print one line per epoch when > 0.
    lr_schedule : {"constant", "cosine"}
        Cosine annealing to 0 over ``max_iter`` epochs, or a constant rate.

    Returns
    -------
    result : TrainResult
    """
    n = tensors[0].shape[0]
    bs = resolve_batch_size(batch_size, n)
    params = [p for p in module.parameters() if p.requires_grad]
    if optimizer is None:
        optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    scheduler = None
    if lr_schedule == "cosine":
        scheduler = cosine_schedule(optimizer, max_iter)
    result = TrainResult()
    best_loss = np.inf
    best_score = -np.inf
    best_state = None
    no_change = 0
    device = tensors[0].device
    module.train()  # train() walks every submodule: once, and again after each validation
    for epoch in range(max_iter):
        t0 = time.perf_counter()
        order = torch.randperm(n, device=device) if bs < n else None
        total = torch.zeros((), device=device)
        for start in range(0, n, bs):
            if order is None:
                batch = tensors
            else:
                idx = order[start : start + bs]
                batch = tuple(t[idx] for t in tensors)
            loss = batch_loss(module, *batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total = total + loss.detach() * batch[0].shape[0]
        if scheduler is not None:
            scheduler.step()
        epoch_loss = float(total) / n
        if not np.isfinite(epoch_loss):
            raise FloatingPointError(
                f"{name or 'training'}: the loss became {epoch_loss} at epoch {epoch + 1}; "
                "lower learning_rate or scale the input."
            )
        result.loss_curve.append(epoch_loss)
        result.n_iter = epoch + 1
        msg = f"Iteration {epoch + 1}, loss = {epoch_loss:.8f}"
        if validation is not None:
            module.eval()
            with torch.no_grad():
                score = float(validation_score(module, *validation))
            module.train()
            result.validation_scores.append(score)
            msg += f", validation score = {score:.6f}"
            if score > best_score + tol:
                no_change = 0
            else:
                no_change += 1
            if score > best_score:
                best_score = score
                best_state = copy.deepcopy(module.state_dict())
        else:
            if epoch_loss > best_loss - tol:
                no_change += 1
            else:
                no_change = 0
            best_loss = min(best_loss, epoch_loss)
        if verbose:
            print(f"{msg}, time = {time.perf_counter() - t0:.3f}s", flush=True)
        if no_change >= n_iter_no_change:
            result.converged = True
            if verbose:
                what = "Validation score" if validation is not None else "Training loss"
                print(
                    f"{what} did not improve more than tol={tol} for "
                    f"{n_iter_no_change} consecutive epochs. Stopping."
                )
            break
    if validation is not None and best_state is not None:
        module.load_state_dict(best_state)
        result.best_validation_score = best_score
    module.eval()
    return result


def cut_short_schedule(result, max_iter, tol):
    """Whether the loss still fell markedly at the planned end of the schedule.

    The learning rate is annealed to zero over ``max_iter`` epochs, so reaching
    ``max_iter`` is the planned end of a fit; only a loss that still falls
    markedly at a near-zero learning rate says the schedule was too short.
    Each epoch's loss is measured on its own draw of keys, so it varies from
    epoch to epoch with the draw, and one unlucky draw can spike it: the fall
    counts only when the last fifth of the epochs (at least 5) falls in a
    trend that noise alone would show less than once in a hundred fits
    (Kendall's rank test, exact under exchangeable noise), by a median
    pairwise slope (Theil-Sen) over ``10 * tol`` an epoch. With fewer than 5
    epochs, the fall from the first to the last decides.
    """
    curve = result.loss_curve
    if result.converged or result.validation_scores or len(curve) < max(2, max_iter):
        return False
    if len(curve) < _TREND_EPOCHS:
        return (curve[0] - curve[-1]) / (len(curve) - 1) > 10 * tol
    m = max(_TREND_EPOCHS, len(curve) // 5)
    y = np.asarray(curve[-m:], dtype=np.float64)
    t = np.arange(m, dtype=np.float64)
    falling = kendalltau(t, y, alternative="less").pvalue < _TREND_LEVEL
    return bool(falling and -theilslopes(y, t).slope > 10 * tol)
