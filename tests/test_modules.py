import numpy as np
import pytest
import torch

from skhop.nn import Hopfield, HopfieldLayer, HopfieldPooling


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _grads_ok(module):
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hopfield_shapes_gradients_dtypes(dtype):
    torch.manual_seed(0)
    layer = Hopfield(
        8,
        stored_size=6,
        hidden_size=12,
        output_size=5,
        num_heads=3,
        learn_beta=True,
        normalize=True,
    ).to(dtype)
    q = torch.randn(4, 3, 8, dtype=dtype)
    s = torch.randn(4, 7, 6, dtype=dtype)
    out, attn = layer(q, s, return_attention=True)
    assert out.shape == (4, 3, 5) and out.dtype == dtype
    assert attn.shape == (4, 3, 3, 7)
    torch.testing.assert_close(attn.sum(-1), torch.ones(4, 3, 3, dtype=dtype))
    out.sum().backward()
    _grads_ok(layer)


def test_hopfield_is_multihead_attention():
    torch.manual_seed(0)
    # in float64: the test is about the math, not about float32 rounding of two kernels
    layer = Hopfield(8, num_heads=2).double()
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(
            torch.cat([layer.q_proj.weight, layer.k_proj.weight, layer.v_proj.weight])
        )
        mha.in_proj_bias.copy_(torch.cat([layer.q_proj.bias, layer.k_proj.bias, layer.v_proj.bias]))
        mha.out_proj.weight.copy_(layer.out_proj.weight)
        mha.out_proj.bias.copy_(layer.out_proj.bias)
    q, s = torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(2, 5, 8, dtype=torch.float64)
    pad = torch.tensor([[False] * 5, [False, False, True, True, True]])
    ours, attn = layer(q, s, key_padding_mask=pad, return_attention=True)
    ref, ref_attn = mha(q, s, s, key_padding_mask=pad, average_attn_weights=False)
    # beta is kept as a float32 log(beta), exact to ~1e-7 relative: the rest is float64
    torch.testing.assert_close(ours, ref, atol=1e-9, rtol=1e-6)
    torch.testing.assert_close(attn, ref_attn, atol=1e-9, rtol=1e-6)


def test_hopfield_batch_first_false_and_attn_mask():
    torch.manual_seed(1)
    layer = Hopfield(4).double()  # float64: the transposed layout may sum in another order
    q, s = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 6, 4, dtype=torch.float64)
    a = layer(q, s)
    layer.batch_first = False
    b = layer(q.transpose(0, 1), s.transpose(0, 1)).transpose(0, 1)
    torch.testing.assert_close(a, b)
    layer.batch_first = True
    forbid = torch.zeros(3, 6, dtype=torch.bool)
    forbid[:, 0] = True
    _, attn = layer(q, s, attn_mask=forbid, return_attention=True)
    assert (attn[..., 0] == 0).all()


def test_pooling_padding_does_not_change_a_bag():
    torch.manual_seed(2)
    # float64: a padded bag is summed in other blocks than the bag alone
    pool = HopfieldPooling(5, hidden_size=8, num_heads=2, num_queries=3).double().eval()
    bag = torch.randn(1, 4, 5, dtype=torch.float64)
    alone = pool(bag)
    padded = torch.cat([bag, torch.randn(1, 6, 5, dtype=torch.float64) * 100], dim=1)
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, 4:] = True
    torch.testing.assert_close(pool(padded, key_padding_mask=mask), alone, atol=1e-12, rtol=1e-10)
    out, attn = pool(padded, key_padding_mask=mask, return_attention=True)
    assert attn.shape == (1, 2, 3, 10) and (attn[..., 4:] == 0).all()
    out.sum().backward()
    _grads_ok(pool)


def test_pooling_unflattened_shape():
    pool = HopfieldPooling(5, output_size=7, num_queries=2, flatten=False)
    assert pool(torch.randn(3, 4, 5)).shape == (3, 2, 7)


@pytest.mark.parametrize("hidden_size, num_heads", [(None, 1), (12, 3)])
def test_hopfield_layer_retrieves_its_targets(hidden_size, num_heads):
    torch.manual_seed(3)
    layer = HopfieldLayer(
        6,
        num_memories=10,
        output_size=3,
        hidden_size=hidden_size,
        num_heads=num_heads,
        beta=500.0,
        similarity="cosine",
    )
    patterns = torch.randn(10, 6)
    targets = torch.randn(10, 3)
    layer.init_memories_(patterns, targets)
    out, attn = layer(patterns, return_attention=True)
    assert attn.shape == (10, num_heads, 10)
    if hidden_size is None:
        torch.testing.assert_close(out, targets, atol=1e-3, rtol=0)
    out.sum().backward()
    _grads_ok(layer)


def test_hopfield_layer_leading_dims_and_steps():
    layer = HopfieldLayer(
        4,
        num_memories=5,
        output_size=2,
        hidden_size=8,
        num_heads=2,
        num_steps=3,
        dropout=0.1,
        learn_beta=True,
    )
    x = torch.randn(2, 3, 4)
    assert layer(x).shape == (2, 3, 2)
    layer.double().eval()  # float64: a batch of one may be summed in another order
    x = x.double()
    torch.testing.assert_close(layer(x)[1, 2], layer(x[1, 2]))


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: Hopfield(0), "input_size"),
        (lambda: Hopfield(8, hidden_size=10, num_heads=3), "divisible"),
        (lambda: Hopfield(8, beta=0.0), "beta"),
        (lambda: Hopfield(8, separation="hardmax"), "separation"),
        (lambda: Hopfield(8, similarity="l1"), "similarity"),
        (lambda: Hopfield(8, dropout=1.0), "dropout"),
        (lambda: HopfieldPooling(8, num_queries=0), "num_queries"),
        (lambda: HopfieldLayer(8, num_memories=0), "num_memories"),
        (lambda: HopfieldLayer(8, 4, num_heads=2), "hidden_size"),
        (lambda: Hopfield(8, separation="topk"), "top_k"),
    ],
)
def test_bad_constructor_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_bad_forward_inputs():
    layer = Hopfield(4)
    with pytest.raises(ValueError, match="query must have 4 features"):
        layer(torch.randn(2, 3, 5), torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="different batch sizes"):
        layer(torch.randn(2, 3, 4), torch.randn(3, 3, 4))
    # shapes are checked, values are not (no scan on every forward): a NaN reaches the output
    assert torch.isnan(layer(torch.full((1, 1, 4), float("nan")), torch.randn(1, 3, 4))).all()
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        layer(
            torch.randn(2, 3, 4),
            torch.randn(2, 3, 4),
            key_padding_mask=torch.zeros(2, 4, dtype=torch.bool),
        )
    pool = HopfieldPooling(4)
    with pytest.raises(ValueError, match="3 dimensions"):
        pool(torch.randn(3, 4))
    with pytest.raises(ValueError, match="features"):
        HopfieldLayer(4, 3)(torch.randn(2, 5))


@pytest.mark.cuda
def test_modules_on_cuda():
    layer = HopfieldPooling(4, num_queries=2).cuda()
    out = layer(torch.randn(3, 5, 4, device="cuda"))
    assert out.device.type == "cuda"


def test_modules_rebuild_from_plain_state():
    from skhop.nn._rebuild import module_from_state, module_to_state

    torch.manual_seed(4)
    for module in (
        Hopfield(4, num_heads=2, learn_beta=True),
        HopfieldPooling(4, num_queries=2),
        HopfieldLayer(4, 6, output_size=2),
    ):
        state = module_to_state(module.eval())
        assert all(isinstance(v, np.ndarray) for v in state["state"].values())
        rebuilt = module_from_state(state)
        for (k, a), (_, b) in zip(
            module.state_dict().items(), rebuilt.state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), k
        assert not rebuilt.training


def test_rebuild_refuses_foreign_classes():
    from skhop.nn._rebuild import module_from_state

    with pytest.raises(ValueError, match="not a skhop.nn class"):
        module_from_state(
            {
                "__skhop_module__": "os:system",
                "args": [],
                "kwargs": {},
                "state": {},
                "training": False,
            }
        )


def test_sizes_may_be_numpy_integers_and_messages_show_values():
    import pickle

    import numpy as np

    y = np.array([3, 9])
    layer = HopfieldLayer(
        np.int64(6),
        np.int32(10),
        output_size=y.max() + 1,
        hidden_size=np.int64(8),
        num_heads=np.int8(2),
    )
    assert layer(torch.randn(4, 6)).shape == (4, 10)
    pool = HopfieldPooling(np.int64(5), num_queries=np.int64(2), num_heads=np.int64(1))
    assert pool(torch.randn(3, 4, 5)).shape[0] == 3
    # the stored constructor arguments are plain Python values, so the layer rebuilds
    from skhop.nn._rebuild import module_from_state, module_to_state

    state = module_to_state(layer)
    assert all(type(v) is int for v in state["args"])
    rebuilt = module_from_state(pickle.loads(pickle.dumps(state)))
    x = torch.randn(2, 6)
    torch.testing.assert_close(rebuilt.eval()(x), layer.eval()(x))
    with pytest.raises(ValueError, match=r"num_memories must be a positive int, got 0\.$"):
        HopfieldLayer(6, np.int64(0))
    with pytest.raises(ValueError, match=r"got True"):
        HopfieldLayer(6, True)
