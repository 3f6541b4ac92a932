"""
=====================================================
Attention maps of Hopfield and HopfieldPooling
=====================================================

Every layer in :mod:`skhop.nn` returns its attention from the same forward
pass when called with ``return_attention=True``: the retrieval weights of
each state pattern (query) over the stored patterns. This example shows

1. the attention of :class:`~skhop.nn.Hopfield`, where queries and stored
   patterns are both given at call time;
2. the attention of :class:`~skhop.nn.HopfieldPooling`, where the query is a
   *learned* state pattern, and what that query is after training.
"""

import os

import matplotlib.pyplot as plt
import torch
from torch import nn

from skhop.nn import Hopfield, HopfieldPooling

torch.set_num_threads(1)
QUICK = os.environ.get("SKHOP_EXAMPLES_QUICK", "0") not in ("", "0")
torch.manual_seed(0)

# %%
# Hopfield: queries retrieve from stored patterns
# -----------------------------------------------
# With identity projections, :class:`~skhop.nn.Hopfield` is the plain
# retrieval ``softmax(beta * Q K^T) V``. We store 12 random patterns and
# query with noisy copies of four of them. The attention has shape
# ``(batch, num_heads, n_queries, n_stored)``.
d = 16
layer = Hopfield(input_size=d, beta=0.25, bias=False)
with torch.no_grad():
    for proj in (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj):
        proj.weight.copy_(torch.eye(d))

stored = torch.randn(1, 12, d)
picked = torch.tensor([2, 5, 7, 11])
queries = stored[:, picked] + torch.randn(1, 4, d)
with torch.no_grad():
    out, attn = layer(queries, stored, return_attention=True)
print("output", tuple(out.shape), "attention", tuple(attn.shape))

fig, ax = plt.subplots(figsize=(6, 2.6))
im = ax.imshow(attn[0, 0], cmap="magma", vmin=0, vmax=1)
ax.set_yticks(range(4), [f"noisy copy of {int(i)}" for i in picked])
ax.set_xticks(range(12))
ax.set_xlabel("stored pattern")
ax.set_title("Hopfield: each query finds its pattern")
fig.colorbar(im, ax=ax, label="weight")
fig.tight_layout()

# %%
# Each row sums to one; the weight sits on the pattern the query was copied
# from. A larger ``beta`` makes the rows sharper, a smaller one mixes more
# patterns.
#
# HopfieldPooling: what is the pooling query?
# -------------------------------------------
# :class:`~skhop.nn.HopfieldPooling` turns a bag (a set of instances) into
# one vector. Its stored patterns are the projected instances of the bag,
# ``K = W_k x``; its state pattern is a learned parameter,
# ``pool.query`` of shape ``(num_queries, hidden_size)``. It is the same for
# every bag: a learned question, "which instances look like this?".
#
# We train a pooling layer and a linear read-out on a toy multiple-instance
# problem: a bag of 10 instances is positive when one of its instances is a
# noisy copy of a fixed *key* pattern.
n_bags = 120 if QUICK else 400
n_epochs = 60 if QUICK else 200
bag_size, dim = 10, 8
key = torch.randn(dim)
key = 4.0 * key / key.norm()


def make_bags(n):
    bags = torch.randn(n, bag_size, dim)
    labels = torch.arange(n) % 2
    where = torch.randint(0, bag_size, (n,))
    for b in torch.nonzero(labels).flatten():
        bags[b, where[b]] = key + 0.3 * torch.randn(dim)
    return bags, labels.float(), where


bags, labels, where = make_bags(n_bags)
pool = HopfieldPooling(input_size=dim, hidden_size=16, num_queries=1, learn_beta=True)
model = nn.Sequential(pool, nn.Linear(16, 1))
optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
for _ in range(n_epochs):
    optimizer.zero_grad()
    loss = nn.functional.binary_cross_entropy_with_logits(model(bags).squeeze(1), labels)
    loss.backward()
    optimizer.step()

test_bags, test_labels, test_where = make_bags(200)
with torch.no_grad():
    logits = model(test_bags).squeeze(1)
    _, attention = pool(test_bags, return_attention=True)  # (bags, heads, queries, n)
print(
    f"training loss {loss.item():.3f}, "
    f"test accuracy {((logits > 0).float() == test_labels).float().mean():.3f}"
)

# %%
# The attention of the learned query over the instances of eight test bags:
# in the positive bags (top) it concentrates on the key instance, marked
# with a white frame. The negative bags have no key: the weight spreads
# out, or goes to whichever instance happens to resemble the key most.
show = torch.cat(
    [torch.nonzero(test_labels).flatten()[:4], torch.nonzero(1 - test_labels).flatten()[:4]]
)
weights = attention[show, 0, 0]
fig, ax = plt.subplots(figsize=(6.5, 3.4))
im = ax.imshow(weights, cmap="magma", vmin=0, vmax=1, aspect="auto")
for row, b in enumerate(show[:4]):
    ax.add_patch(
        plt.Rectangle((int(test_where[b]) - 0.5, row - 0.5), 1, 1, fill=False, ec="white", lw=2)
    )
ax.set_yticks(range(8), [f"bag {int(b)} ({'pos' if test_labels[b] else 'neg'})" for b in show])
ax.set_xlabel("instance")
ax.set_title("HopfieldPooling attention of the learned query")
fig.colorbar(im, ax=ax, label="weight")
fig.tight_layout()

# %%
# What the query learned
# ----------------------
# The pooling query lives in the projected space of the stored patterns.
# The attention of a bag is the softmax over its instances of the scores
# ``beta * <query, W_k x>``; comparing the score of noisy copies of the key
# with that of ordinary instances shows what the query asks for.
with torch.no_grad():
    query, beta = pool.query[0], pool.core.beta
    copies = key + 0.3 * torch.randn(500, dim)
    ordinary = torch.randn(500, dim)
    key_scores = beta * pool.k_proj(copies) @ query
    other_scores = beta * pool.k_proj(ordinary) @ query

fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(other_scores.numpy(), bins=30, color="tab:gray", alpha=0.8, label="ordinary instances")
ax.hist(key_scores.numpy(), bins=30, color="tab:red", alpha=0.8, label="copies of the key")
ax.set_xlabel("score beta * <pool.query, W_k x>")
ax.set_ylabel("instances")
ax.set_title("The learned query scores the key far above the rest")
ax.legend()
fig.tight_layout()
print(
    f"learned beta {beta.item():.2f}; mean score: key {key_scores.mean():.1f}, "
    f"ordinary {other_scores.mean():.1f}"
)
plt.show()
