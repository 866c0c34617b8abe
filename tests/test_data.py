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


def test_per_seed_data_gives_each_training_seed_its_own_draw():
    shared = data.make_dataset(["sin"], 50, -1, 1, 0.1, seed=7)
    per = data.make_dataset(["sin"], 50, -1, 1, 0.1, seed=7, per_seed=True, seeds=[0, 1, 2])
    assert "seed" not in shared and list(per["seed"].unique()) == [0, 1, 2]
    noise = {s: (g["y"] - g["y_clean"]).to_numpy() for s, g in per.groupby("seed")}
    assert not np.allclose(noise[0], noise[1]) and not np.allclose(noise[1], noise[2])
    # reproducible, and a seed's draw does not depend on which other seeds are listed
    again = data.make_dataset(["sin"], 50, -1, 1, 0.1, seed=7, per_seed=True, seeds=[2])
    np.testing.assert_array_equal(again["y"], per[per["seed"] == 2]["y"])
    # uniform sampling draws x per seed too; linspace keeps x
    uni = data.make_dataset(["sin"], 50, -1, 1, 0.1, seed=7, sampling="uniform", per_seed=True,
                            seeds=[0, 1])
    assert not np.allclose(uni[uni.seed == 0]["x"], uni[uni.seed == 1]["x"])
    np.testing.assert_array_equal(per[per.seed == 0]["x"], per[per.seed == 1]["x"])


def test_runs_data_stacks_each_run_s_own_draw_in_run_order():
    per = data.make_dataset(["sin", "abs"], 20, -1, 1, 0.1, seed=1, per_seed=True, seeds=[4, 5])
    x, y, clean = data.runs_data(per, ["sin", "abs"], [4, 5])
    assert x.shape == y.shape == (4, 20, 1)
    rows = per[(per.target == "abs") & (per.seed == 4)]
    np.testing.assert_array_equal(y[2, :, 0], rows["y"])  # targets outer, seeds inner
    shared = data.make_dataset(["sin"], 20, -1, 1, 0.1, seed=1).drop(columns="target")
    x, y, _ = data.runs_data(shared, None, [4, 5])
    assert x.shape == (20, 1)  # one draw shared by every run: the study's setup


def test_clean_targets_have_no_noise():
    clean = data.make_dataset(["step", "cubic"], 30, -2, 2, 0.0, seed=3)
    np.testing.assert_array_equal(clean["y"], clean["y_clean"])
