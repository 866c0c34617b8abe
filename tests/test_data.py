import numpy as np
import pytest

from actflow import data


def test_sine_dataset_is_reproducible_and_seeded():
    a = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, seed=7)
    b = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, seed=7)
    c = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, seed=8)
    assert a.equals(b)
    assert not np.allclose(a["y"], c["y"])


def test_sine_dataset_matches_the_study_s_definition():
    df = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, seed=0)
    assert len(df) == 200
    assert df["x"].min() == -np.pi and df["x"].max() == np.pi
    np.testing.assert_allclose(df["y_clean"], np.sin(df["x"]))
    noise = df["y"] - df["y_clean"]
    assert abs(noise.mean()) < 0.03 and 0.08 < noise.std() < 0.12


def test_uniform_sampling_stays_in_range_and_sorted():
    df = data.make_train_set("sin", 500, -1.0, 2.0, 0.0, seed=1, sampling="uniform")
    assert df["x"].is_monotonic_increasing and df["x"].between(-1, 2).all()
    np.testing.assert_array_equal(df["y"], df["y_clean"])


def test_unknown_target_is_named():
    with pytest.raises(KeyError, match="known targets"):
        data.make_train_set("sawtooth", 10, -1, 1, 0.1, 0)


@pytest.mark.parametrize(
    "target,formula",
    [("sin", np.sin), ("abs", np.abs), ("step", lambda x: (x >= 0).astype(float)),
     ("sin10", lambda x: np.sin(10 * x)), ("cubic", lambda x: x**3)],
)
def test_each_target_matches_its_formula(target, formula):
    df = data.make_train_set(target, 101, -np.pi, np.pi, 0.1, seed=0)
    np.testing.assert_allclose(df["y_clean"], formula(df["x"].to_numpy()), rtol=1e-12, atol=1e-12)
    grid = data.make_test_grid(target, 1000, -np.pi, np.pi)
    np.testing.assert_allclose(grid["y"], formula(grid["x"].to_numpy()), rtol=1e-12, atol=1e-12)


def test_test_grid_is_clean_dense_and_evenly_spaced():
    grid = data.make_test_grid("sin10", 1000, -np.pi, np.pi)
    assert len(grid) == 1000 and list(grid.columns) == ["x", "y"]
    step = np.diff(grid["x"].to_numpy())
    np.testing.assert_allclose(step, step[0], rtol=1e-9)
    assert grid["x"].iloc[0] == -np.pi and grid["x"].iloc[-1] == np.pi


def test_adding_a_target_does_not_change_another_s_data():
    a = data.make_train_set("abs", 50, -1, 1, 0.1, seed=3)
    data.make_train_set("cubic", 50, -1, 1, 0.1, seed=3)
    b = data.make_train_set("abs", 50, -1, 1, 0.1, seed=3)
    c = data.make_train_set("sin", 50, -1, 1, 0.1, seed=3)
    assert a.equals(b)
    assert not np.allclose(a["y"] - a["y_clean"], c["y"] - c["y_clean"])  # own noise per target
