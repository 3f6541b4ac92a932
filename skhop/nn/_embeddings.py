"""Periodic embeddings of numerical features, one small learned map per feature.

The "PBLD" embedding of RealMLP (Holzmüller et al., 2024), a variant of the
periodic embeddings of Gorishniy et al. (2022) used by TabR and TabM: each
feature ``x_f`` becomes ``[x_f, L_f(cos(2 pi w_f x_f + b_f))]``, its own value
beside a learned linear map of learned periodic functions of it. A network on
top then sees any smooth or step-like function of a single feature as a
linear one, which tables of codes and thresholds need.
"""

import math

import torch
from torch import nn

__all__ = ["PeriodicEmbedding"]


class PeriodicEmbedding(nn.Module):
    """``x -> [x_f, L_f(cos(2 pi sigma u_f x_f + b_f))]`` for every feature ``f``, flattened.

    Parameters
    ----------
    num_features : int
        Number of input features.
    num_frequencies : int, default=16
        Periodic functions per feature.
    embedding_dim : int, default=4
        Outputs of each feature's linear map (the feature's own value is kept
        beside them, so each feature gives ``embedding_dim + 1`` outputs).
    sigma : float, default=0.1
        Scale of the initial frequencies (``w = sigma * u``, ``u`` standard
        normal): the inputs are expected standardised. The frequencies are
        learned as ``u``, so an optimizer's step moves them relative to
        ``sigma``.
    dtype : torch.dtype, default=torch.float32

    Examples
    --------
    >>> import torch
    >>> from skhop.nn._embeddings import PeriodicEmbedding
    >>> PeriodicEmbedding(3)(torch.randn(5, 3)).shape
    torch.Size([5, 15])
    """

    def __init__(self, num_features, num_frequencies=16, embedding_dim=4, sigma=0.1, dtype=None):
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma!r}.")
        self.num_features, self.sigma = int(num_features), float(sigma)
        self.num_frequencies, self.embedding_dim = int(num_frequencies), int(embedding_dim)
        f, k, d = self.num_features, self.num_frequencies, self.embedding_dim
        self.frequency = nn.Parameter(torch.randn(f, k, dtype=dtype))
        self.phase = nn.Parameter(torch.empty(f, k, dtype=dtype).uniform_(-math.pi, math.pi))
        bound = 1.0 / math.sqrt(k)  # nn.Linear's initialisation, per feature
        self.weight = nn.Parameter(torch.empty(f, k, d, dtype=dtype).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(f, d, dtype=dtype).uniform_(-bound, bound))

    @property
    def output_size(self):
        """Width of the flattened output, ``num_features * (embedding_dim + 1)``."""
        return self.num_features * (self.embedding_dim + 1)

    def forward(self, x):
        """Embed rows.

        Parameters
        ----------
        x : Tensor of shape (n, num_features)

        Returns
        -------
        embedded : Tensor of shape (n, num_features * (embedding_dim + 1))
        """
        w = (2 * math.pi * self.sigma) * self.frequency
        periodic = torch.cos(torch.addcmul(self.phase, x.unsqueeze(-1), w))  # (n, f, k)
        mapped = torch.einsum("nfk,fkd->nfd", periodic, self.weight) + self.bias
        return torch.cat([x.unsqueeze(-1), mapped], dim=-1).flatten(1)
