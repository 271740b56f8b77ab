"""TOML configuration: defaults, file values, flag overrides and clear errors."""

import pytest

from mnistlab.training.config import TrainConfig, load_config
from mnistlab.common.errors import ConfigError


def test_defaults_are_the_seed_protocol():
    config = load_config()
    assert (config.epochs, config.batch_size, config.learning_rate, config.validation_fraction) == (5, 128, 1e-3, 0.1)
    assert config == TrainConfig()


def test_file_values_then_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[train]\nepochs = 2\nseed = 11\nlearning_rate = 0.002\n")
    config = load_config(path, seed=3, batch_size=None)
    assert (config.epochs, config.seed, config.learning_rate, config.batch_size) == (2, 3, 0.002, 128)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs = 0", "epochs = 0 is invalid"),
        ("epoch = 3", "unknown config key.*epoch"),
        ("epochs = 'five'", "epochs = 'five' has the wrong type"),
        ("epochs = [", "not valid TOML"),
        ("validation_fraction = 1.5", "validation_fraction = 1.5 is invalid"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.toml")


def test_recipe_fills_defaults_and_user_settings_win():
    recipe = {"epochs": 2, "schedule": "onecycle", "learning_rate": 0.01}
    assert load_config(recipe=recipe).epochs == 2
    config = load_config(recipe=recipe, epochs=3)
    assert (config.epochs, config.schedule, config.learning_rate) == (3, "onecycle", 0.01)


def test_unknown_schedule_names_the_choices():
    with pytest.raises(ConfigError, match="schedule = 'step' is invalid; it must be one of constant, onecycle, cosine"):
        load_config(schedule="step")
