"""Sweeps: the grid, deterministic shards, resuming, the results table, and on real
Fashion-MNIST the rate (KL) falling as beta grows."""

import json

import numpy as np
import pandas as pd
import pytest

import tfp_vae
from tfp_vae import sweep as sw
from tfp_vae.cli import main

BASE = tfp_vae.VAEConfig(latent_dim=2, hidden_units=(16,), epochs=1, batch_size=32)


def test_grid_is_the_product_named_by_its_values():
    points = sw.grid_points(BASE, {"seed": [0, 1], "beta": [0.5, 4.0], "hidden_units": [(8, 4)]})
    assert [p.name for p in points] == [
        "beta=0.5,hidden_units=8x4,seed=0", "beta=0.5,hidden_units=8x4,seed=1",
        "beta=4,hidden_units=8x4,seed=0", "beta=4,hidden_units=8x4,seed=1",
    ]
    assert points[3].config == BASE.replace(beta=4.0, seed=1, hidden_units=(8, 4))
    assert points[3].values == {"beta": 4.0, "hidden_units": (8, 4), "seed": 1}


@pytest.mark.parametrize("grid, message", [
    ({}, "grid is empty"),
    ({"betta": [1.0]}, "'betta' is not a VAEConfig field"),
    ({"beta": []}, "non-empty list"),
    ({"beta": [1.0, -2.0]}, r"sweep point beta=-2: VAEConfig.beta=-2.0"),
    ({"beta": [1.0, 1.0]}, "repeats a value"),
])
def test_bad_grids_are_named(grid, message):
    with pytest.raises(tfp_vae.ConfigError, match=message):
        sw.grid_points(BASE, grid)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_shards_are_disjoint_cover_and_balanced(n):
    points = sw.grid_points(BASE, {"beta": [0.25, 0.5, 1.0, 2.0, 4.0], "seed": [0, 1, 2]})
    shards = [[p.name for p in sw.shard_points(points, (i, n))] for i in range(1, n + 1)]
    flat = [name for shard in shards for name in shard]
    assert sorted(flat) == sorted(p.name for p in points)  # every point exactly once
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_shard_assignment_ignores_the_order_the_grid_was_written_in():
    a = sw.grid_points(BASE, {"beta": [0.5, 1.0, 4.0], "seed": [0, 1]})
    b = sw.grid_points(BASE, {"seed": [1, 0], "beta": [4.0, 0.5, 1.0]})
    for i in (1, 2, 3):
        assert sorted(p.name for p in sw.shard_points(a, (i, 3))) == sorted(
            p.name for p in sw.shard_points(b, (i, 3)))
    # The split is fixed: shard 1 of 2 takes ranks 0, 2, 4 of the sorted names.
    assert [p.name for p in sw.shard_points(a, (1, 2))] == ["beta=0.5,seed=0", "beta=1,seed=0", "beta=4,seed=0"]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1-2", "a/b", "1/0"])
def test_bad_shard_is_named(text):
    with pytest.raises(tfp_vae.ConfigError, match="shard"):
        sw.parse_shard(text)
    assert sw.parse_shard("2/5") == (2, 5)


def test_cli_grid_values_take_the_field_type():
    grid = sw.parse_grid([["beta", "0.5", "4"], ["seed", "0", "1"], ["hidden-units", "32,16", "8"],
                          ["binarize", "none", "static"], ["encoder", "conv"]])
    assert grid == {"beta": [0.5, 4.0], "seed": [0, 1], "hidden_units": [(32, 16), (8,)],
                    "binarize": [None, "static"], "encoder": ["conv"]}
    with pytest.raises(tfp_vae.ConfigError, match="cannot read 'x' as int"):
        sw.parse_grid([["seed", "x"]])
