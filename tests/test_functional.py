import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skhop.nn import separate
from skhop.nn._scores import exp as _exp
from skhop.nn._scores import exp_ as _exp_
from skhop.nn.functional import hopfield_energy, hopfield_retrieve, similarity_scores


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _digits(n=300):
    X = load_digits().data[:n] / 16.0
    return torch.tensor(X, dtype=torch.float64)


def test_one_step_equals_scaled_dot_product_attention():
    g = _gen()
    q, k, v = (torch.randn(2, 3, n, 16, generator=g) for n in (5, 40, 40))
    beta = 1 / math.sqrt(16)
    ours = hopfield_retrieve(q, k, v, beta=beta)
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    naive = torch.softmax(beta * q @ k.mT, -1) @ v
    torch.testing.assert_close(ours, sdpa, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours, naive, atol=1e-5, rtol=1e-5)


def test_padding_mask_matches_sdpa():
    g = _gen(1)
    q, k = torch.randn(2, 4, 8, generator=g), torch.randn(2, 9, 8, generator=g)
    pad = torch.zeros(2, 9, dtype=torch.bool)
    pad[0, 5:] = True
    ours = hopfield_retrieve(q, k, beta=8**-0.5, mask=pad.unsqueeze(1))
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, k, attn_mask=~pad.unsqueeze(1))
    torch.testing.assert_close(ours, sdpa, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("memory_kind", ["random", "digits"])
def test_energy_never_increases(memory_kind):
    if memory_kind == "random":
        memory = torch.randn(50, 10, generator=_gen(2), dtype=torch.float64)
        state = torch.randn(20, 10, generator=_gen(3), dtype=torch.float64)
    else:
        memory = _digits()
        state = memory[:40] + 0.5 * torch.randn(40, 64, generator=_gen(4), dtype=torch.float64)
    for beta in (0.1, 1.0, 8.0):
        energies = [hopfield_energy(state, memory, beta=beta)]
        s = state
        for _ in range(10):
            s = hopfield_retrieve(s, memory, beta=beta)
            energies.append(hopfield_energy(s, memory, beta=beta))
        e = torch.stack(energies)
        assert (e[1:] <= e[:-1] + 1e-9).all()


def test_neg_l2_energy_never_increases():
    memory = _digits()
    state = memory[:40] + 0.5 * torch.randn(40, 64, generator=_gen(4), dtype=torch.float64)
    for beta in (0.1, 1.0, 8.0):
        energies = [hopfield_energy(state, memory, beta=beta, similarity="neg_l2")]
        s = state
        for _ in range(5):
            s = hopfield_retrieve(s, memory, beta=beta, similarity="neg_l2")
            energies.append(
                hopfield_energy(s, memory, beta=beta, similarity="neg_l2", chunk_size=7)
            )
        e = torch.stack(energies)
        assert (e >= 0).all()
        assert (e[1:] <= e[:-1] + 1e-9).all()
        assert (e[-1] < e[0]).all()


def test_energy_of_other_similarities_matches_formula():
    memory = torch.randn(7, 3, generator=_gen(5), dtype=torch.float64)
    xi = torch.randn(2, 3, generator=_gen(6), dtype=torch.float64)
    beta = 2.0
    d2 = ((xi[:, None, :] - memory[None]) ** 2).sum(-1)
    expected = -torch.logsumexp(-0.5 * beta * d2, -1) / beta + math.log(7) / beta
    for chunk in (None, 3):
        torch.testing.assert_close(
            hopfield_energy(xi, memory, beta=beta, similarity="neg_l2", chunk_size=chunk), expected
        )
        unit = hopfield_energy(
            xi / xi.norm(dim=1, keepdim=True), memory / memory.norm(dim=1, keepdim=True), beta=beta
        )
        torch.testing.assert_close(
            hopfield_energy(3.0 * xi, memory, beta=beta, similarity="cosine", chunk_size=chunk),
            unit,
        )
    with pytest.raises(ValueError, match="similarity"):
        hopfield_energy(xi, memory, similarity="l1")


def test_energy_matches_formula():
    memory = torch.randn(7, 3, generator=_gen(5), dtype=torch.float64)
    xi = torch.randn(2, 3, generator=_gen(6), dtype=torch.float64)
    beta = 2.0
    lse = torch.logsumexp(beta * xi @ memory.T, -1) / beta
    m_max = memory.norm(dim=1).max()
    expected = -lse + 0.5 * (xi**2).sum(1) + math.log(7) / beta + 0.5 * m_max**2
    torch.testing.assert_close(hopfield_energy(xi, memory, beta=beta), expected)
    torch.testing.assert_close(hopfield_energy(xi, memory, beta=beta, chunk_size=2), expected)


def test_retrieves_well_separated_patterns_from_noisy_and_half_masked_queries():
    g = _gen(7)
    memory = torch.sign(torch.randn(30, 64, generator=g))  # nearly orthogonal +-1 patterns
    noisy = memory + 0.5 * torch.randn(30, 64, generator=g)
    half = memory.clone()
    half[:, 32:] = 0.0
    for query in (noisy, half):
        out = hopfield_retrieve(query, memory, beta=1.0)
        torch.testing.assert_close(out, memory, atol=1e-4, rtol=0)


def test_fixed_point_regimes():
    memory = _digits(200)
    memory = memory / memory.norm(dim=1, keepdim=True)  # equal norms: separation = 1 - cos
    query = memory[:20]
    mean = memory.mean(0, keepdim=True).expand_as(query)
    # small beta: one global fixed point, the average of all stored patterns
    out = hopfield_retrieve(query, memory, beta=1e-4, num_steps=5)
    torch.testing.assert_close(out, mean, atol=1e-3, rtol=0)
    # large beta (beta * separation >> log M): every stored pattern is a fixed point
    out = hopfield_retrieve(query, memory, beta=1000.0, num_steps=5)
    torch.testing.assert_close(out, query, atol=1e-5, rtol=0)
    # intermediate beta: metastable states mixing several (but not all) patterns
    _, attn = hopfield_retrieve(query, memory, beta=60.0, num_steps=3, return_attention=True)
    eff = 1.0 / (attn**2).sum(-1)  # effective number of patterns in the mix
    assert (eff > 1.5).float().mean() >= 0.25 and (eff < 0.5 * len(memory)).all()


def test_num_steps_counts_updates_and_tol_stops_early():
    memory = torch.randn(20, 5, generator=_gen(8), dtype=torch.float64)
    q = torch.randn(3, 5, generator=_gen(9), dtype=torch.float64)
    manual = q
    for _ in range(3):
        manual = hopfield_retrieve(manual, memory, beta=2.0)
    torch.testing.assert_close(hopfield_retrieve(q, memory, beta=2.0, num_steps=3), manual)
    converged = hopfield_retrieve(q, memory, beta=2.0, num_steps=200)
    early = hopfield_retrieve(q, memory, beta=2.0, num_steps=200, tol=1e-12)
    torch.testing.assert_close(early, converged)


@pytest.mark.parametrize("similarity", ["dot", "cosine", "neg_l2"])
@pytest.mark.parametrize("separation", ["softmax", "softmax1", "topk"])
def test_chunked_equals_unchunked(similarity, separation):
    g = _gen(10)
    q = torch.randn(2, 6, 12, generator=g, dtype=torch.float64)
    m = torch.randn(2, 97, 12, generator=g, dtype=torch.float64)
    v = torch.randn(2, 97, 4, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 6, 97, generator=g) < 0.3
    kw = dict(beta=1.7, similarity=similarity, separation=separation, top_k=5, mask=mask)
    full = hopfield_retrieve(q, m, v, **kw)
    for chunk in (1, 10, 96):
        torch.testing.assert_close(hopfield_retrieve(q, m, v, chunk_size=chunk, **kw), full)


def test_chunked_gradients_equal_unchunked():
    g = _gen(11)
    q = torch.randn(4, 8, generator=g, dtype=torch.float64, requires_grad=True)
    m = torch.randn(50, 8, generator=g, dtype=torch.float64, requires_grad=True)
    grads = []
    for chunk in (None, 7):
        out = hopfield_retrieve(q, m, beta=0.7, chunk_size=chunk)
        grads.append(torch.autograd.grad(out.square().sum(), (q, m)))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


_PEAK_SCRIPT = """
import resource, sys, torch
from skhop.nn.functional import hopfield_retrieve
torch.set_num_threads(1)
L, M, d, chunk = 1000, 200_000, 8, {chunk}
q, m = torch.randn(L, d), torch.randn(M, d)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hopfield_retrieve(q, m, chunk_size=chunk)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024)
"""


@pytest.mark.heavy  # a subprocess with 200,000 memories
def test_chunked_peak_memory_is_bounded():
    import subprocess
    import sys

    full_scores_bytes = 1000 * 200_000 * 4  # 800 MB for the unchunked score matrix
    chunk = 4096
    res = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT.format(chunk=chunk)],
        capture_output=True,
        text=True,
        check=True,
    )
    extra = int(res.stdout.strip())
    block = 1000 * chunk * 4  # one chunk of scores: 16 MB
    assert extra < 4 * block + 20_000_000, extra
    assert extra < full_scores_bytes / 8


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exp_matches_torch_exp_over_the_whole_range(dtype):
    # the softmax weights' exp (by exp2, fast below the underflow): the same numbers
    x = torch.linspace(-120.0, 80.0, 20001, dtype=dtype)
    x = torch.cat([x, torch.tensor([-math.inf, 0.0], dtype=dtype)])
    ours = _exp(x)
    ref = torch.exp(x.double())
    eps = torch.finfo(dtype).eps
    # exp2 of a rounded product: relative error up to about (|x| + 2) * eps
    rel = (ours.double() - ref).abs() / ref.clamp_min(torch.finfo(dtype).tiny)
    normal = ref >= torch.finfo(dtype).tiny
    assert (rel[normal] <= (x.double().abs()[normal] + 2) * eps).all()
    assert ours[-2] == 0 and ours[-1] == 1
    inplace = x.clone()
    assert _exp_(inplace) is inplace and torch.equal(inplace, ours)


@pytest.mark.slow  # timing
def test_exp_is_as_fast_below_the_underflow_as_above():
    # a softmax over far patterns puts most arguments below -87, where the
    # vectorised CPU exp slows down many times; the retrieval's exp must not
    import time

    def best(x):
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            _exp(x)
            times.append(time.perf_counter() - t0)
        return min(times)

    g = _gen(3)
    near = -10 * torch.rand(256, 1024, generator=g)  # every weight normal
    far = near - 100.0  # every weight below float32's smallest normal
    far[:, ::7] = -math.inf  # masked patterns
    assert best(far) < 3 * best(near)


@pytest.mark.parametrize("separation", ["sparsemax", "entmax15"])
def test_sparse_separations_sum_to_one_with_exact_zeros(separation):
    scores = torch.randn(10, 30, generator=_gen(14)) * 3
    w = separate(scores, separation)
    torch.testing.assert_close(w.sum(-1), torch.ones(10))
    assert (w == 0).any(dim=-1).all()
    mask = torch.rand(10, 30, generator=_gen(15)) < 0.5
    mask[:, 0] = False
    w = separate(scores, separation, mask=mask)
    assert (w[mask] == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(10))


@pytest.mark.parametrize("separation", ["softmax", "softmax1", "sparsemax", "entmax15", "topk"])
def test_masked_memories_get_exactly_zero_weight(separation):
    g = _gen(16)
    q, m = torch.randn(5, 4, generator=g), torch.randn(12, 4, generator=g)
    mask = torch.zeros(5, 12, dtype=torch.bool)
    mask[:, 3:7] = True
    mask[2] = True  # a query that may attend to nothing
    out, attn = hopfield_retrieve(
        q, m, separation=separation, top_k=3, mask=mask, return_attention=True
    )
    assert (attn[mask] == 0).all()
    assert (out[2] == 0).all() and torch.isfinite(out).all()


def test_masking_a_memory_equals_removing_it():
    g = _gen(17)
    q, m = torch.randn(5, 4, generator=g), torch.randn(12, 4, generator=g)
    mask = torch.zeros(12, dtype=torch.bool)
    mask[[1, 5, 6]] = True
    masked = hopfield_retrieve(q, m, beta=2.0, mask=mask.unsqueeze(0))
    removed = hopfield_retrieve(q, m[~mask], beta=2.0)
    torch.testing.assert_close(masked, removed)


def test_softmax1_can_attend_to_nothing():
    scores = torch.full((1, 4), -50.0)
    w = separate(scores, "softmax1")
    assert w.sum() < 1e-10
    torch.testing.assert_close(separate(torch.zeros(1, 3), "softmax1"), torch.full((1, 3), 0.25))


def test_topk_keeps_only_k_memories():
    scores = torch.randn(6, 20, generator=_gen(18))
    w = separate(scores, "topk", top_k=4)
    assert ((w > 0).sum(-1) == 4).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(6))


def test_similarities_against_naive_formulas():
    g = _gen(19)
    q, m = (
        torch.randn(3, 5, generator=g, dtype=torch.float64),
        torch.randn(4, 5, generator=g, dtype=torch.float64),
    )
    cos = torch.nn.functional.cosine_similarity(q[:, None], m[None], dim=-1)
    torch.testing.assert_close(similarity_scores(q, m, "cosine"), cos)
    torch.testing.assert_close(similarity_scores(q, m, "neg_l2"), -0.5 * torch.cdist(q, m) ** 2)


def test_query_mask_uses_observed_coordinates_only():
    g = _gen(20)
    q, m = (
        torch.randn(3, 6, generator=g, dtype=torch.float64),
        torch.randn(8, 6, generator=g, dtype=torch.float64),
    )
    hidden = torch.zeros(3, 6, dtype=torch.bool)
    hidden[:, [1, 4]] = True
    obs = [0, 2, 3, 5]
    for sim in ("dot", "cosine", "neg_l2"):
        out, attn = hopfield_retrieve(
            q, m, beta=1.3, similarity=sim, query_mask=hidden, return_attention=True
        )
        _, ref = (
            hopfield_retrieve(q[:, obs], m[:, obs], beta=1.3, similarity=sim, return_attention=True)
            if sim == "cosine"
            else (None, None)
        )
        if sim == "cosine":
            torch.testing.assert_close(attn, ref)
        # observed entries come back unchanged; hidden ones are filled from the memory
        torch.testing.assert_close(out[:, obs], q[:, obs])
        torch.testing.assert_close(out[:, [1, 4]], (attn @ m)[:, [1, 4]])
    # nan-Euclidean scaling, as in sklearn
    from sklearn.metrics.pairwise import nan_euclidean_distances

    qn = q.clone()
    qn[hidden] = float("nan")
    _, attn = hopfield_retrieve(
        qn, m, beta=1.0, similarity="neg_l2", query_mask="nan", return_attention=True
    )
    d2 = torch.tensor(nan_euclidean_distances(qn.numpy(), m.numpy())) ** 2
    torch.testing.assert_close(attn, torch.softmax(-0.5 * d2, -1))


def test_half_masked_digits_are_completed_exactly_at_large_beta():
    memory = _digits(500)
    hidden = torch.zeros_like(memory, dtype=torch.bool)
    hidden[:, 32:] = True
    out = hopfield_retrieve(
        memory.masked_fill(hidden, 0), memory, beta=200.0, similarity="neg_l2", query_mask=hidden
    )
    hit = (torch.cdist(out, memory).argmin(1) == torch.arange(500)).float().mean()
    assert hit > 0.97


def test_gradients_flow_and_attention_enters_a_loss():
    g = _gen(21)
    q = torch.randn(4, 8, generator=g, requires_grad=True)
    m = torch.randn(10, 8, generator=g, requires_grad=True)
    beta = torch.tensor(1.5, requires_grad=True)
    out, attn = hopfield_retrieve(q, m, beta=beta, return_attention=True)
    (out.sum() + attn[:, 0].sum()).backward()
    for t in (q, m, beta):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype):
    q, m = torch.randn(3, 4, dtype=dtype), torch.randn(9, 4, dtype=dtype)
    assert hopfield_retrieve(q, m).dtype == dtype
    assert hopfield_retrieve(q, m, chunk_size=2).dtype == dtype


def test_cpu_device():
    q, m = torch.randn(3, 4, device="cpu"), torch.randn(9, 4, device="cpu")
    assert hopfield_retrieve(q, m).device.type == "cpu"


@pytest.mark.cuda
def test_cuda_matches_cpu():
    q, m = torch.randn(30, 16), torch.randn(1000, 16)
    cpu = hopfield_retrieve(q, m, chunk_size=100)
    gpu = hopfield_retrieve(q.cuda(), m.cuda(), chunk_size=100)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(query=torch.randn(2, 3), memory=torch.randn(4, 5)), "same last dimension"),
        (dict(values=torch.randn(3, 5)), "one row per stored pattern"),
        (dict(similarity="manhattan"), "similarity must be one of"),
        (dict(separation="argmax"), "separation must be one of"),
        (dict(beta=0.0), "beta must be a positive"),
        (dict(beta=-1.0), "beta must be a positive"),
        (dict(beta=float("nan")), "beta must be a positive"),
        (dict(num_steps=0), "num_steps"),
        (dict(separation="topk"), "top_k"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(separation="sparsemax", chunk_size=2), "chunk_size is supported"),
        (dict(query=torch.tensor([[float("nan"), 0.0, 0.0]])), "query contains NaN"),
        (dict(memory=torch.tensor([[float("inf"), 0.0, 0.0]] * 4)), "memory contains NaN"),
        (dict(memory=torch.zeros(0, 3)), "memory is empty"),
        (dict(mask=torch.zeros(2, 7, dtype=torch.bool)), "mask"),
        (dict(query=torch.randn(3)), "at least 2 dimensions"),
        (dict(tol=-1.0), "tol"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    args = dict(query=torch.randn(2, 3), memory=torch.randn(4, 3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        hopfield_retrieve(**args)


def test_non_tensor_and_integer_inputs_raise_type_error():
    with pytest.raises(TypeError, match="query must be a torch.Tensor"):
        hopfield_retrieve(np.zeros((2, 3)), torch.zeros(4, 3))
    with pytest.raises(TypeError, match="floating point"):
        hopfield_retrieve(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(4, 3))
