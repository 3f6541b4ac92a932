"""
==================================================
Energy landscape and fixed points as beta grows
==================================================

A modern Hopfield network moves a query downhill on an energy whose minima
sit near the stored patterns. How many minima there are, and where, depends
on the inverse temperature ``beta``:

- small ``beta``: one fixed point near the **global average** of all
  patterns;
- intermediate ``beta``: **metastable states**, one per group of similar
  patterns, at the group's average;
- large ``beta``: one fixed point next to every **single pattern**.

We store six patterns in the plane, three of them close together, and
follow queries from a grid of starting points until they stop moving.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from skhop.nn.functional import hopfield_energy, hopfield_retrieve

torch.set_num_threads(1)
QUICK = os.environ.get("SKHOP_EXAMPLES_QUICK", "0") not in ("", "0")

# %%
# Six stored patterns on a circle of radius 2; the three on the right are
# 18 degrees apart, the others far from everything.
angles = np.deg2rad([0, 18, -18, 125, 215, 290])
memory = torch.tensor(2.0 * np.c_[np.cos(angles), np.sin(angles)], dtype=torch.float64)

n_grid = 21 if QUICK else 41
axis = torch.linspace(-3, 3, n_grid, dtype=torch.float64)
starts = torch.cartesian_prod(axis, axis)  # one query per grid point


def fixed_points(beta, n_steps=500):
    """Run the update from every grid point until it stops; distinct end points."""
    ends = hopfield_retrieve(starts, memory, beta=beta, num_steps=n_steps, tol=1e-9)
    found = []
    for p in ends:
        if all(torch.dist(p, q) > 0.05 for q in found):
            found.append(p)
    return torch.stack(found)


# %%
# The energy and its minima for three values of ``beta``
# ------------------------------------------------------
# Contours show ``hopfield_energy`` over the plane; dots are the stored
# patterns, stars the points where the update rule comes to rest, and the
# thin lines the paths of a few queries (one update per vertex).
betas = [0.2, 5.0, 50.0]
titles = ["global average", "metastable states", "single patterns"]
fine = torch.linspace(-3, 3, 121, dtype=torch.float64)
gx, gy = torch.meshgrid(fine, fine, indexing="xy")
plane = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
paths_from = torch.tensor(
    [[-2.5, 0.2], [2.5, 2.5], [0.5, -2.8], [2.8, -1.0], [0.0, 2.8]], dtype=torch.float64
)

fig, axes = plt.subplots(1, 3, figsize=(12, 4.8), sharey=True, layout="constrained")
for ax, beta, title in zip(axes, betas, titles, strict=True):
    energy = hopfield_energy(plane, memory, beta=beta).reshape(gx.shape)
    ax.contourf(gx, gy, energy, levels=30, cmap="viridis")
    for start in paths_from:
        path = [start[None]]
        for _ in range(15):
            path.append(hopfield_retrieve(path[-1], memory, beta=beta))
        path = torch.cat(path)
        ax.plot(path[:, 0], path[:, 1], "-", color="white", lw=0.8, alpha=0.8)
    ax.plot(memory[:, 0], memory[:, 1], "o", color="tab:red", ms=6, label="stored patterns")
    fp = fixed_points(beta)
    ax.plot(fp[:, 0], fp[:, 1], "*", color="yellow", mec="black", ms=14, label="fixed points")
    ax.set_title(f"beta = {beta:g}: {title}\n{len(fp)} fixed point{'s' if len(fp) > 1 else ''}")
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
axes[0].set_ylabel("x2")
mean = memory.mean(dim=0)
axes[0].plot(mean[0], mean[1], "x", color="white", ms=10, mew=2, label="mean of the patterns")
axes[0].legend(loc="lower left", fontsize=8)

# %%
# With ``beta = 0.2`` every query ends at the same point, close to the mean
# of the six patterns (the white cross), pulled a little towards the group
# of three. With ``beta = 5`` the three far patterns each have a
# fixed point of their own, but the close group on the right has a single
# one, between its members: a metastable state that stands for the group.
# With ``beta = 50`` every pattern is a fixed point, reached in one update
# from nearby.
#
# How the number of fixed points grows with beta
# ----------------------------------------------
# The separation of a pattern, ``Delta_i = x_i.x_i - max_j x_i.x_j``, is
# about 0.2 inside the close group and above 3 for the others. A pattern
# becomes a fixed point of its own once ``beta * Delta_i`` is large, so the
# far patterns separate first and the close ones only at a larger ``beta``.
sweep = np.geomspace(0.05, 100, 12 if QUICK else 30)
counts = [len(fixed_points(b)) for b in sweep]

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.step(sweep, counts, where="mid", color="tab:blue")
ax.plot(sweep, counts, "o", color="tab:blue", ms=4)
ax.set_xscale("log")
ax.set_yticks(range(1, len(memory) + 1))
ax.set_xlabel("beta")
ax.set_ylabel("distinct fixed points")
ax.set_title("From one global average to one fixed point per pattern")
ax.grid(alpha=0.3)
fig.tight_layout()

# %%
# The energy never increases along the updates
# --------------------------------------------
# The update rule minimises the energy (it is the concave-convex procedure
# for it), so the energy of every query goes down or stays equal at each
# step. Here for 200 random queries at ``beta = 5``.
gen = torch.Generator().manual_seed(0)
state = 3 * torch.rand(200, 2, generator=gen, dtype=torch.float64) - 1.5
energies = [hopfield_energy(state, memory, beta=5.0)]
for _ in range(10):
    state = hopfield_retrieve(state, memory, beta=5.0)
    energies.append(hopfield_energy(state, memory, beta=5.0))
energies = torch.stack(energies)
print(
    "largest increase of any query's energy in one update:",
    float((energies[1:] - energies[:-1]).max()),
)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(energies.numpy(), color="tab:gray", alpha=0.3, lw=0.8)
ax.plot(energies.mean(dim=1).numpy(), color="black", lw=2, label="mean")
ax.set_xlabel("update")
ax.set_ylabel("energy")
ax.set_title("Energy of 200 queries along the updates (beta = 5)")
ax.legend()
fig.tight_layout()
plt.show()
