import pytest
import torch

from skhop.nn import RowHopfieldLayer
from skhop.nn._optim import AdamW, CosineSchedule, FusedAdamW, fused_adamw


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


def _layer(dtype):
    torch.manual_seed(0)
    layer = RowHopfieldLayer(3, 20, 2, 8, mlp_size=4, num_frequencies=2, dtype=dtype)
    return layer.store_(torch.randn(20, 3).to(getattr(torch, dtype)), torch.arange(20) % 2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_adamw_and_cosine_schedule_match_torch_bit_for_bit(dtype):
    # the same kernel on the same state: equal, not close; two groups at two rates
    ours, theirs = _layer(dtype), _layer(dtype)
    opt = FusedAdamW(ours.parameter_groups(0.05), lr=0.05, weight_decay=0.01)
    ref = torch.optim.AdamW(theirs.parameter_groups(0.05), lr=0.05, weight_decay=0.01, fused=True)
    schedules = (CosineSchedule(opt, T_max=4), torch.optim.lr_scheduler.CosineAnnealingLR(ref, 4))
    own = torch.full((20,), -torch.inf, dtype=getattr(torch, dtype))
    idx = torch.arange(20)
    for _ in range(4):  # epochs
        for _ in range(3):  # steps
            for net, o in ((ours, opt), (theirs, ref)):
                o.zero_grad(set_to_none=True)
                loss = net.training_loss(idx, net.labels, torch.ones(20, dtype=own.dtype), own)
                loss.backward()
                o.step()
        for s in schedules:
            s.step()
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in ref.param_groups]
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_fused_adamw_skips_parameters_without_gradient_and_falls_back():
    a = torch.zeros(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    opt = FusedAdamW([a, b], lr=0.1, weight_decay=0.0)
    a.sum().backward()
    opt.step()
    assert torch.equal(b, torch.ones(3)) and (a < 0).all()
    # a device or dtype the fused kernel does not take: torch's optimizer instead
    ints = torch.zeros(3, dtype=torch.float16, device="meta", requires_grad=True)
    assert not isinstance(fused_adamw([ints], 0.1, 0.0), FusedAdamW)
