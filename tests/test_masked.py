import numpy as np
import torch

from skhop.nn import masked
from skhop.nn._optim import AdamW


def test_plain_adamw_matches_torch_adamw():
    torch.manual_seed(0)
    target = torch.randn(5, dtype=torch.float64)
    ours, theirs = (torch.zeros(5, dtype=torch.float64, requires_grad=True) for _ in range(2))
    opts = (AdamW([ours], lr=0.1, weight_decay=0.01), torch.optim.AdamW([theirs], lr=0.1))
    for _ in range(20):
        for p, opt in zip((ours, theirs), opts, strict=True):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def _memory(seed=0, n=40, d=5):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, d)
    obs = rng.rand(n, d) > 0.2
    x = torch.as_tensor(np.where(obs, x, 0.0), dtype=torch.float64)
    observed = torch.as_tensor(obs, dtype=torch.float64)
    return masked.MaskedMemory(x, observed, torch.zeros(d, dtype=torch.float64), "neg_l2")


def test_hide_one_masks_the_row_itself_and_rows_lacking_the_column():
    mem = _memory()
    rows = torch.tensor([0, 3, 5])
    col = torch.tensor([1, 2, 4])
    s, lacking = masked.hide_one(mem.x, mem.observed, rows, col, mem.scores)
    assert lacking[torch.arange(3), rows].all()
    assert torch.equal(lacking | (mem.observed[:, col].mT < 0.5), lacking)
    assert torch.isneginf(s[lacking]).all() and torch.isfinite(s[~lacking]).all()


def test_grid_errors_by_squaring_match_the_direct_softmax():
    mem = _memory(seed=1)
    rows, col = torch.arange(10), torch.tensor([0, 1, 2, 3, 4] * 2)
    s, lacking = masked.hide_one(mem.x, mem.observed, rows, col, mem.scores)
    betas = torch.tensor([2.0**k for k in range(-2, 6)], dtype=torch.float64)
    fast = masked._grid_errors(s, lacking, mem, rows, col, betas, "softmax", None)
    slow = masked._grid_errors(s, lacking, mem, rows, col, betas, "topk", s.shape[1])
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-12)
