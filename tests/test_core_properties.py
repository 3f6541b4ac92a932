"""Property-based tests (hypothesis) and numerical extremes for the functional core."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skhop.nn.functional import hopfield_energy, hopfield_retrieve, similarity_scores

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def problems(draw, max_m=12, max_d=5):
    L = draw(st.integers(1, 4))
    M = draw(st.integers(1, max_m))
    d = draw(st.integers(1, max_d))
    elems = st.floats(-3, 3, allow_nan=False, width=64)
    q = draw(arrays(np.float64, (L, d), elements=elems))
    x = draw(arrays(np.float64, (M, d), elements=elems))
    beta = draw(st.floats(0.01, 20.0))
    return torch.from_numpy(q), torch.from_numpy(x), beta


@SETTINGS
@given(problems(), st.sampled_from(["dot", "cosine", "neg_l2"]))
def test_softmax_output_lies_in_convex_hull_of_values(problem, similarity):
    q, x, beta = problem
    out, attn = hopfield_retrieve(q, x, beta=beta, similarity=similarity, return_attention=True)
    assert (attn >= 0).all()
    torch.testing.assert_close(attn.sum(-1), torch.ones(len(q), dtype=q.dtype))
    # a convex combination: each coordinate within the values' range
    lo, hi = x.min(0).values, x.max(0).values
    assert (out >= lo - 1e-9).all() and (out <= hi + 1e-9).all()


@SETTINGS
@given(problems(), st.integers(1, 6))
def test_energy_is_non_increasing(problem, steps):
    q, x, beta = problem
    e = [hopfield_energy(q, x, beta=beta)]
    s = q
    for _ in range(steps):
        s = hopfield_retrieve(s, x, beta=beta)
        e.append(hopfield_energy(s, x, beta=beta))
    e = torch.stack(e)
    assert (e[1:] <= e[:-1] + 1e-8 * (1 + e[:-1].abs())).all()


@SETTINGS
@given(
    problems(max_m=40),
    st.integers(1, 40),
    st.sampled_from(["softmax", "softmax1", "topk"]),
    st.sampled_from(["dot", "cosine", "neg_l2"]),
)
def test_chunked_equals_unchunked(problem, chunk, separation, similarity):
    q, x, beta = problem
    kw = dict(beta=beta, separation=separation, similarity=similarity, top_k=3)
    chunked, whole = hopfield_retrieve(q, x, chunk_size=chunk, **kw), hopfield_retrieve(q, x, **kw)
    if separation == "topk":
        # A BLAS product of a chunk may round a score differently in the last bit
        # from the product of the whole memory, so a near-tie at the k-th score can
        # keep a different set. Only rows whose kept set the scores decide beyond
        # rounding are compared (exact ties: the dyadic test below).
        decided = _topk_decided(q, x, similarity, k=3)
        chunked, whole = chunked[decided], whole[decided]
    torch.testing.assert_close(chunked, whole)


def _topk_decided(q, x, similarity, k):
    """Rows whose k-th and (k+1)-th scores differ by more than a rounding bound."""
    if len(x) <= k:
        return torch.ones(len(q), dtype=torch.bool)
    scores = similarity_scores(q, x, similarity).sort(-1, descending=True).values
    qn, xn = q.norm(dim=-1), x.norm(dim=-1).max()
    scale = {"dot": qn * xn, "cosine": torch.ones_like(qn), "neg_l2": (qn + xn) ** 2}
    eps = torch.finfo(q.dtype).eps
    bound = 16 * (q.shape[-1] + 2) * eps * scale[similarity]
    return scores[:, k - 1] - scores[:, k] > bound


@SETTINGS
@given(
    st.integers(1, 4),
    st.integers(4, 40),
    st.integers(1, 5),
    st.data(),
    st.integers(1, 40),
    st.integers(1, 5),
)
def test_chunked_topk_breaks_exact_ties_as_unchunked(L, M, d, data, chunk, k):
    # values on a coarse dyadic grid: every dot product is exact in float64 in any
    # summation order, so scores tie exactly and the tie rule alone decides the kept
    # set; each memory reads out its own index, so a different set shows
    grid = st.integers(-4, 4).map(lambda v: v / 4)
    q = torch.tensor(data.draw(arrays(np.float64, (L, d), elements=grid)))
    x = torch.tensor(data.draw(arrays(np.float64, (M, d), elements=grid)))
    v = torch.arange(M, dtype=torch.float64).unsqueeze(1)
    kw = dict(beta=1.5, separation="topk", similarity="dot", top_k=k)
    torch.testing.assert_close(
        hopfield_retrieve(q, x, v, chunk_size=chunk, **kw), hopfield_retrieve(q, x, v, **kw)
    )


@SETTINGS
@given(problems(), st.data(), st.sampled_from(["softmax", "sparsemax", "entmax15", "topk"]))
def test_masking_a_memory_equals_removing_it(problem, data, separation):
    q, x, beta = problem
    keep = torch.tensor(data.draw(st.lists(st.booleans(), min_size=len(x), max_size=len(x))))
    if not keep.any():
        keep[0] = True
    masked = hopfield_retrieve(
        q, x, beta=beta, separation=separation, top_k=2, mask=(~keep).unsqueeze(0)
    )
    removed = hopfield_retrieve(q, x[keep], beta=beta, separation=separation, top_k=2)
    if separation == "topk":
        # the product with fewer memories may round a score differently (see above)
        decided = _topk_decided(q, x[keep], "dot", k=2)
        masked, removed = masked[decided], removed[decided]
    torch.testing.assert_close(masked, removed)


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
@pytest.mark.parametrize("similarity", ["dot", "cosine", "neg_l2"])
def test_extreme_scales_and_beta_retrieve_exactly(scale, similarity):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 16, generator=g, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True)
    q = x[:10] + 0.05 * torch.randn(10, 16, generator=g, dtype=torch.float64)
    beta = {"dot": 1e4 / scale**2, "cosine": 1e4, "neg_l2": 1e4 / scale**2}[similarity]
    out = hopfield_retrieve(q * scale, x * scale, beta=beta, similarity=similarity)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out / scale, x[:10], atol=1e-6, rtol=0)


def test_beta_1e4_is_finite_in_float32_chunked():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3000, 8, generator=g)
    out = hopfield_retrieve(x[:5], x, beta=1e4, chunk_size=256, similarity="neg_l2")
    torch.testing.assert_close(out, x[:5])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    g = torch.Generator().manual_seed(2)
    x, q = torch.randn(20, 8, generator=g), torch.randn(3, 8, generator=g)
    out = hopfield_retrieve(q.to(dtype), x.to(dtype), beta=0.5)
    assert out.dtype == dtype
    ref = hopfield_retrieve(q.to(dtype).float(), x.to(dtype).float(), beta=0.5)
    torch.testing.assert_close(out.float(), ref, atol=1e-2, rtol=1e-2)


def test_identical_patterns_single_memory_and_one_dimension():
    x = torch.ones(5, 3)
    torch.testing.assert_close(hopfield_retrieve(torch.randn(2, 3), x, beta=10.0), torch.ones(2, 3))
    one = torch.tensor([[2.0, -1.0]])
    torch.testing.assert_close(hopfield_retrieve(torch.randn(4, 2), one), one.expand(4, 2))
    x1 = torch.tensor([[-1.0], [1.0]])
    out = hopfield_retrieve(torch.tensor([[0.9], [-0.7]]), x1, beta=100.0)
    torch.testing.assert_close(out, torch.tensor([[1.0], [-1.0]]))
    # more memories than queries, fewer than dims: fine
    assert hopfield_retrieve(torch.randn(1, 50), torch.randn(3, 50)).shape == (1, 50)


def test_inputs_are_not_mutated():
    g = torch.Generator().manual_seed(3)
    q, x = torch.randn(4, 5, generator=g), torch.randn(3000, 5, generator=g)
    q[0, 1] = float("nan")
    q0, x0 = q.clone(), x.clone()
    hopfield_retrieve(q, x, query_mask="nan", chunk_size=100)
    hopfield_retrieve(q, x, query_mask="nan", num_steps=3, similarity="cosine")
    torch.testing.assert_close(q, q0, equal_nan=True)
    torch.testing.assert_close(x, x0)
