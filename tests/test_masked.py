import numpy as np
import torch

from skhop.nn import masked


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
