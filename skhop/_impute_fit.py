"""How :class:`~skhop.HopfieldImputer` fits its retrieval: beta, sharpening, feature weights.

The arithmetic lives in :mod:`skhop.nn.masked`; this module turns the
estimator's parameters into calls of it and of the one training loop.
"""

import math

import numpy as np
import torch

from .nn import masked
from .nn._optim import AdamW
from .nn.functional import AUTO_CHUNK_ELEMENTS


def block_rows(n_memories, batch_size):
    if batch_size is not None:
        return batch_size
    return max(1, AUTO_CHUNK_ELEMENTS // max(n_memories, 1))


# beta = a / (median |score|) for a on this grid when beta="auto"
_BETA_GRID = tuple(2.0**k for k in range(-2, 11))
_DEFAULT_BETA_SCALE = 4.0
# sharpening is kept unless it raises the self-supervised error by more than this share
_SHARPEN_TOL = 0.01
# rows sampled (per repeat) by the self-supervised choice of beta
_SELECT_ROWS = 512
_SELECT_REPEATS = 2
# training of the feature weights: at most this many rows, in batches of this many
_TRAIN_ROWS = 4096
_TRAIN_BATCH = 256
# steps without a new best training loss before the training of the weights stops
_TRAIN_PATIENCE = 20
# feature_weights="auto" learns the weights up to this many features
_AUTO_LEARN_MAX_FEATURES = 256


def _learn_weights(
    x,
    observed,
    complete,
    beta,
    similarity,
    separation,
    top_k,
    *,
    max_iter,
    learning_rate,
    max_rows,
    batch_size,
    learn_beta=True,
    hideable=None,
    verbose=0,
):
    """Fit feature weights and beta by self-supervised completion of hidden observed entries.

    Each step hides one observed entry of each row of a batch, fills it from
    the *other* stored rows, and takes a gradient step on the squared error.
    Uses at most ``max_rows`` stored rows (a random sample). Returns the
    weights (normalised to mean 1), the matching beta and the loss curve.
    """
    from ._training import train

    M, d = x.shape
    if M > max_rows:
        keep = torch.randperm(M, device=x.device)[:max_rows].sort().values
        x, observed = x[keep], observed[keep]
        M = max_rows
    eligible = masked._eligible(observed, hideable)
    if eligible.numel() == 0 or M < 2 or max_iter == 0:
        return None, beta, []
    net = masked.MetricNet(d, math.log(beta)).to(device=x.device, dtype=x.dtype)
    net.log_beta.requires_grad_(learn_beta)

    def batch_loss(module, rows):
        if rows.shape[0] > batch_size:
            # one step per epoch, on a fresh random sample of the rows
            rows = rows[torch.randperm(rows.shape[0], device=x.device)[:batch_size]]
        col = masked.random_hidden(observed[rows], hideable)
        return masked.hidden_entry_loss(
            module, x, observed, complete, similarity, separation, top_k, rows, col
        )

    with torch.enable_grad():
        result = train(
            net,
            batch_loss,
            (eligible,),
            max_iter=max_iter,
            batch_size=eligible.numel(),
            learning_rate=learning_rate,
            weight_decay=0.0,
            tol=1e-4,
            n_iter_no_change=_TRAIN_PATIENCE,
            optimizer=AdamW(net.parameters(), lr=learning_rate),
            verbose=verbose,
            name="feature weights",
        )
    w = net.log_weights.detach().exp()
    beta = float(net.log_beta.detach().exp())
    return (w / w.mean()).cpu().numpy().astype(np.float64), beta, list(result.loss_curve)


def fit_retrieval(est, fitted, rng, device, fit_feature_map):
    """beta, sharpening, feature weights (and the Stage I map) for the working rows.

    ``fit_feature_map`` fits the Stage I map (see :class:`~skhop.KernelHopfieldRetriever`).
    """
    dtype = torch.float32
    memories, memory_mask = fitted["memories_"], fitted["memory_mask_"]
    out = {
        "beta_": 1.0 if est.beta == "auto" else float(est.beta),
        "sharpen_": False,
        "beta_grid_": None,
        "beta_errors_": None,
        "feature_weights_": np.ones(memories.shape[1]),
        "feature_map_": None,
        "loss_curve_": None,
        "n_iter_": 0,
        "_posterior_noise": np.zeros(memories.shape[1]),
        "_posterior_beta": 1.0 if est.beta == "auto" else float(est.beta),
    }
    if memories.shape[1] == 0:
        return out
    x = torch.as_tensor(memories, dtype=dtype, device=device)
    observed = (~torch.as_tensor(memory_mask, device=device)).to(dtype)
    fallback = torch.as_tensor(fitted["_fallback"], dtype=dtype, device=device)
    level = fitted["_work_level"]
    hideable = None if (level < 0).all() else torch.as_tensor(level < 0, device=device)
    feature_map, curve = None, None
    if est._kernel_mode():
        with torch.enable_grad():
            feature_map, curve = fit_feature_map(
                x + (1.0 - observed) * fallback,
                feature_dim=est.feature_dim,
                separation_loss=est.separation_loss,
                tau=est.tau,
                max_iter=est.max_iter,
                learning_rate=est.learning_rate,
            )
    mem = masked.MaskedMemory(x, observed, fallback, est.similarity, feature_map=feature_map)
    beta, sharpen = out["beta_"], False
    noise = np.zeros(memories.shape[1])
    # how both self-supervised choices hide entries and read them back
    probe = (
        est.separation,
        est.top_k,
        block_rows(memories.shape[0], est.batch_size),
        _SELECT_ROWS,
        _SELECT_REPEATS,
        rng,
    )
    if est.beta == "auto":
        errors, _, unit, _ = masked.select_beta(mem, _BETA_GRID, *probe, hideable=hideable)
        if errors is None:
            beta = _DEFAULT_BETA_SCALE
        else:
            grid = np.asarray(_BETA_GRID) / unit
            off, on = int(np.argmin(errors[0])), int(np.argmin(errors[1]))
            # near-ties go to sharpening: stored rows are then recalled exactly
            sharpen = est.similarity != "dot" and (
                errors[1, on] <= (1.0 + _SHARPEN_TOL) * errors[0, off]
            )
            beta = float(grid[on if sharpen else off])
            out["beta_grid_"], out["beta_errors_"] = grid, errors[int(sharpen)]
        if est.verbose:
            print(f"HopfieldImputer: beta = {beta:.4g}, sharpening {'on' if sharpen else 'off'}")
    weights = None
    learned = est.feature_weights == "learned" or (
        est.feature_weights == "auto"
        and not est._kernel_mode()
        and memories.shape[1] <= _AUTO_LEARN_MAX_FEATURES
    )
    if learned:
        weights, beta, curve = _learn_weights(
            x,
            observed,
            mem.complete,
            beta,
            est.similarity,
            est.separation,
            est.top_k,
            max_iter=est.max_iter,
            learning_rate=est.learning_rate,
            max_rows=_TRAIN_ROWS,
            batch_size=_TRAIN_BATCH,
            learn_beta=est.beta == "auto",
            hideable=hideable,
            verbose=est.verbose,
        )
    out.update(beta_=beta, sharpen_=bool(sharpen), loss_curve_=curve)
    # the draws' temperature and noise, calibrated at the metric transform uses
    if weights is not None:
        w = torch.as_tensor(weights, dtype=dtype, device=device)
        mem = masked.MaskedMemory(
            x, observed, fallback, est.similarity, weights=w, feature_map=feature_map
        )
    calibrated = masked.calibrate_draws(mem, beta, sharpen, *probe, hideable=hideable)
    out["_posterior_beta"] = beta
    if calibrated is not None:
        out["_posterior_beta"], noise = calibrated
    # categorical columns are drawn by their vote shares, without noise
    out["_posterior_noise"] = np.where(level < 0, noise, 0.0)
    out["n_iter_"] = 0 if curve is None else len(curve)
    if weights is not None:
        out["feature_weights_"] = weights
    if feature_map is not None:
        out["feature_map_"] = feature_map.cpu()
    return out
