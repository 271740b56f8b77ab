"""Your own models: specs on the command line and in Python, checked before training, run everywhere the built-ins
run, saved in checkpoints that load only when the user trusts their code, and costed beside their accuracy."""

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from PIL import Image

from conftest import assert_one_line_error, run_cli
from mnistlab.models import MODELS
from test_scale_out import numbers

MODEL_FILE = textwrap.dedent('''
    import torch
    from torch import nn


    class Tiny(nn.Module):
        """A one-hidden-layer network of a user's own."""

        recipe = {"epochs": 2, "learning_rate": 3e-3}

        def __init__(self, width: int = 8, num_classes: int = 10):
            super().__init__()
            self.width = width
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.ReLU(), nn.Linear(width, num_classes))

        def forward(self, images):
            return self.body(images)


    def make_tiny(width=4):
        return Tiny(width=width)
''')


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "mine.py"
    path.write_text(MODEL_FILE)
    return path


def tiny_compare(capsys, data_dir, out, models, *extra):
    return run_cli(capsys, "--quiet", "--data-dir", data_dir, "compare", "--dataset", "tiny", "--models", models,
                   "--epochs", "1", "--threads", "1", "--out", out, *extra)


# --- specs ----------------------------------------------------------------------------------------------------------

def test_specs_are_read_as_written(model_file):
    from mnistlab.models.spec import parse_spec, split_specs

    assert split_specs(f"ann,{model_file}:Tiny(width=4, sizes=[1, 2]),b=x.y:Z") == [
        "ann", f"{model_file}:Tiny(width=4, sizes=[1, 2])", "b=x.y:Z"]
    spec = parse_spec(f"small={model_file}:Tiny(width=4)")
    assert (spec.label, spec.kind, spec.arguments) == ("small", "file", {"width": 4})
    assert spec.source == MODEL_FILE and spec.source_sha256 == hashlib.sha256(MODEL_FILE.encode()).hexdigest()
    assert parse_spec(f"{model_file}:make_tiny").label == "make_tiny"
    assert (parse_spec("pkg.nets:Wide").kind, parse_spec("pkg.nets:Wide").label) == ("module", "Wide")
    assert parse_spec("cnn").builtin and str(parse_spec(f"small={model_file}:Tiny(width=4)")).startswith("small=")


@pytest.mark.parametrize("text, fragment", [
    ("cnn(width=3)", "built-in models take no constructor arguments"),
    ("x.py:Net(3)", "only name=value arguments"),
    ("x.py:Net(width=open('f'))", "cannot read its arguments"),
    ("bad label!=x.py:Net", "not usable as a name"),
    ("nosuch", "unknown model 'nosuch'"),
    ("models/x.txt:Net", "is not a .py file"),
    ("models/x.py:Net", "no such file models/x.py"),
])
def test_a_bad_spec_is_refused_when_read(text, fragment, tmp_path, monkeypatch):
    from mnistlab.common.errors import ConfigError
    from mnistlab.models.spec import parse_spec

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(text)


BAD_MODELS = {  # file text, the class to name, what the one-line error must say
    "syntax": ("class Net(nn.Module:\n    pass\n", "Net", "line 1: syntax error"),
    "missing class": (MODEL_FILE, "Nope", "has no 'Nope'; its nn.Module classes: Tiny"),
    "needs arguments": (MODEL_FILE.replace("width: int = 8", "width: int"), "Tiny", "give every constructor argument"),
    "wrong output": (MODEL_FILE.replace("nn.Linear(width, num_classes)", "nn.Linear(width, 3)"), "Tiny",
                     "returns shape (2, 3) for a batch of 2, not (2, 10)"),
    "wrong input": (MODEL_FILE.replace("nn.Flatten(), nn.Linear(784, width)", "nn.Flatten(), nn.Linear(3, width)"),
                    "Tiny", "fails in forward (testing: RuntimeError"),
    "nan": (MODEL_FILE.replace("return self.body(images)", "return self.body(images) * float('nan')"), "Tiny",
            "NaN or infinite logits"),
    "not a module": (MODEL_FILE + "\ndef five():\n    return 5\n", "five", "not a torch.nn.Module"),
    "import fails": ("import not_a_package_anywhere\n", "Net", "running"),
    "bad recipe": (MODEL_FILE.replace('"epochs": 2', '"epochs": "two"'), "Tiny", "from its recipe"),
    "recipe not a dict": (MODEL_FILE.replace('recipe = {"epochs": 2, "learning_rate": 3e-3}', "recipe = 5"), "Tiny",
                          "recipe attribute is a int"),
    "exits at import": ("import sys\nsys.exit(0)\n", "Net", "running"),
    "integer output": (MODEL_FILE.replace("return self.body(images)", "return self.body(images).long()"), "Tiny",
                       "torch.int64 values, not float logits"),
    "no gradient": (MODEL_FILE.replace("return self.body(images)", "return self.body(images).detach()"), "Tiny",
                    "does not depend on its parameters"),
    "fixed batch": (MODEL_FILE.replace("return self.body(images)", "return self.body(images[:2])"), "Tiny",
                    "returns shape (2, 10) for a batch of 3"),
    "fails in training": (MODEL_FILE.replace("return self.body(images)",
                                             "assert not self.training, 'eval only'\n        return self.body(images)"),
                          "Tiny", "fails in forward (training: AssertionError"),
    "no parameters": (MODEL_FILE.replace("super().__init__()", "super().__init__(); self.requires_grad_(False)")
                      .replace("    def forward", "        self.requires_grad_(False)\n\n    def forward"), "Tiny",
                      "no trainable parameters"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_a_model_that_breaks_the_contract_is_a_one_line_error_before_training(case, tiny_dataset, tmp_path, capsys):
    text, name, fragment = BAD_MODELS[case]
    _, data_dir, _, _ = tiny_dataset
    path = tmp_path / "bad.py"
    path.write_text("import torch\nfrom torch import nn\n" + text if case != "syntax" else text)
    out = tmp_path / "run"
    code, _, err = tiny_compare(capsys, data_dir, out, f"ann,{path}:{name}")
    assert_one_line_error(code, err, f"{path}:{name}", fragment)
    assert not out.exists()  # refused before the run folder was made


def test_a_module_that_cannot_be_imported_is_a_one_line_error(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    code, _, err = tiny_compare(capsys, data_dir, tmp_path / "run", "no_such_package_here.nets:Net")
    assert_one_line_error(code, err, "cannot import no_such_package_here.nets", "install the package")


# --- running them -----------------------------------------------------------------------------------------------------

def test_a_file_model_is_compared_with_the_built_ins_and_costed(model_file, tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    out = tmp_path / "run"
    code, stdout, err = tiny_compare(capsys, data_dir, out, f"ann,small={model_file}:Tiny(width=4)", "--seeds", "2")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["models"]) == ["ann", "small"]
    small = metrics["models"]["small"]
    assert small["spec"] == {"label": "small", "kind": "file", "target": f"{model_file.as_posix()}:Tiny",
                             "arguments": {"width": 4}, "source_sha256": hashlib.sha256(MODEL_FILE.encode()).hexdigest(),
                             "recipe": {"epochs": 2, "learning_rate": 3e-3}}
    assert small["params"] == 784 * 4 + 4 + 4 * 10 + 10  # built with width=4
    assert small["config"]["learning_rate"] == 3e-3 and small["config"]["epochs"] == 1  # recipe, then the flags
    assert small["cost"]["multiply_adds"] == 784 * 4 + 4 * 10  # two linear layers, one image
    assert metrics["models"]["ann"]["cost"]["multiply_adds"] == 784 * 128 + 128 * 64 + 64 * 10
    for name in ("ann", "small"):
        cost = metrics["models"][name]["cost"]
        assert cost["checkpoint_bytes"] == (out / metrics["models"][name]["seeds"][0]["checkpoint"]).stat().st_size
        assert cost["inference"]["latency_ms_p50"] > 0 and cost["inference"]["threads"] == 1
    assert [comparison["models"] for comparison in metrics["comparisons"]] == [["ann", "small"]]
    report = (out / "report.md").read_text()
    assert "## What each model costs" in report and "accuracy_vs_cost.png" in report and (out / "accuracy_vs_cost.png").is_file()
    assert "small-seed0.pt" in {path.name for path in out.glob("*.pt")} and "multiply-adds" in stdout.splitlines()[0]


def test_resume_keeps_a_file_model_and_refuses_a_changed_file(model_file, tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    out = tmp_path / "run"
    assert tiny_compare(capsys, data_dir, out, f"{model_file}:Tiny")[0] == 0
    before = numbers(out)
    assert tiny_compare(capsys, data_dir, out, f"{model_file}:Tiny", "--resume")[0] == 0
    assert numbers(out) == before
    model_file.write_text(MODEL_FILE.replace("nn.ReLU()", "nn.Tanh()"))
    code, _, err = tiny_compare(capsys, data_dir, out, f"{model_file}:Tiny", "--resume")
    assert_one_line_error(code, err, "was started with different model_specs")


@pytest.mark.slow  # two worker processes start PyTorch: about 15 s
def test_a_file_model_trains_in_workers_without_its_file_to_the_sequential_numbers(model_file, tiny_dataset, tmp_path):
    """Workers build the model from the source the spec carries: the file is gone before they start."""
    from mnistlab.models.spec import parse_spec
    from mnistlab.study.compare import run_compare
    from mnistlab.study.plan import plan_placement

    _, data_dir, _, _ = tiny_dataset
    settings = {"dataset": str(data_dir / "tiny"), "epochs": 1}
    spec = parse_spec(f"{model_file}:Tiny")
    model_file.unlink()
    run_compare([spec, "logreg"], settings, tmp_path / "one", seeds=[0, 1], placement=plan_placement(1, 1),
                progress=False)
    run_compare([spec, "logreg"], settings, tmp_path / "two", seeds=[0, 1], placement=plan_placement(2, 1),
                progress=False)
    assert numbers(tmp_path / "two") == numbers(tmp_path / "one")


RAY_DRIVER = """
import sys
from mnistlab.models.spec import parse_spec
from mnistlab.study.compare import run_compare
from mnistlab.study.plan import plan_placement
spec = parse_spec(sys.argv[1])
__import__("os").remove(sys.argv[1].rpartition(":")[0])  # the cluster gets the model from the spec alone
run_compare([spec, "logreg"], {"dataset": sys.argv[2], "epochs": 1}, sys.argv[3], seeds=[0, 1],
            placement=plan_placement(1, 1, ray_address=sys.argv[4]), progress=False)
"""


def test_a_file_model_on_ray_gives_the_sequential_numbers(model_file, tiny_dataset, ray_cluster, tmp_path):
    from mnistlab.models.spec import parse_spec
    from mnistlab.study.compare import run_compare
    from mnistlab.study.plan import plan_placement

    address, env = ray_cluster
    _, data_dir, _, _ = tiny_dataset
    folder = str(data_dir / "tiny")
    run_compare([parse_spec(f"{model_file}:Tiny"), "logreg"], {"dataset": folder, "epochs": 1}, tmp_path / "one",
                seeds=[0, 1], placement=plan_placement(1, 1), progress=False)
    result = subprocess.run([sys.executable, "-c", RAY_DRIVER, f"{model_file}:Tiny", folder, str(tmp_path / "ray"),
                             address], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert numbers(tmp_path / "ray") == numbers(tmp_path / "one")


def test_tune_searches_a_file_model(model_file, tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    out = tmp_path / "tune"
    code, stdout, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "tune", f"{model_file}:Tiny", "--dataset",
                                "tiny", "--trials", "2", "--epochs", "1", "--threads", "1", "--out", out)
    assert code == 0, err
    assert stdout.startswith("Tiny: best trial") and "--config Tiny=best.toml" in (out / "tune.md").read_text()


def test_python_api_takes_specs(model_file, tiny_dataset):
    import mnistlab

    _, data_dir, _, _ = tiny_dataset
    trained = mnistlab.train(f"{model_file}:Tiny(width=4)", "tiny", data_dir=data_dir, epochs=1, threads=1)
    assert trained.name == "Tiny" and sum(p.numel() for p in trained.module.parameters()) == 784 * 4 + 4 + 50
    assert isinstance(mnistlab.create_model(f"{model_file}:make_tiny"), torch.nn.Module)


def test_an_installed_package_adds_models_through_entry_points(tmp_path, monkeypatch, tiny_dataset, capsys):
    package = tmp_path / "site" / "tinyplug"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(MODEL_FILE)
    info = tmp_path / "site" / "tinyplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mnistlab.models]\ntinyplug = tinyplug:Tiny\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    _, data_dir, _, _ = tiny_dataset
    code, _, err = tiny_compare(capsys, data_dir, tmp_path / "run", "tinyplug")
    assert code == 0, err
    spec = json.loads((tmp_path / "run" / "metrics.json").read_text())["models"]["tinyplug"]["spec"]
    assert spec["kind"] == "plugin" and spec["source_sha256"] == hashlib.sha256(MODEL_FILE.encode()).hexdigest()


# --- checkpoints that carry the model ---------------------------------------------------------------------------------

@pytest.fixture
def trained(model_file, tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    checkpoint = tmp_path / "out" / "mine.pt"
    code, _, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "train", f"{model_file}:Tiny", "--dataset", "tiny",
                           "--epochs", "1", "--threads", "1", "--out", checkpoint)
    assert code == 0, err
    image = tmp_path / "digit.png"
    Image.fromarray(np.pad(np.full((12, 4), 255, np.uint8), 8)).save(image)
    return checkpoint, image, data_dir


def test_a_checkpoint_of_ones_own_model_loads_only_when_trusted(trained, model_file, capsys):
    checkpoint, image, _ = trained
    state = torch.load(checkpoint, weights_only=True)
    assert state["model_spec"]["source"] == MODEL_FILE and state["model_name"] == "Tiny"
    code, _, err = run_cli(capsys, "predict", checkpoint, image)
    assert_one_line_error(code, err, "model Tiny is built by running code", f"{model_file.as_posix()}:Tiny",
                          "--trust-code")
    code, out, err = run_cli(capsys, "predict", checkpoint, image, "--trust-code", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["error"] is None and len(json.loads(out)[0]["top"]) == 3
    model_file.write_text(MODEL_FILE + "\n# edited\n")
    code, _, err = run_cli(capsys, "predict", checkpoint, image)
    assert_one_line_error(code, err, "has changed since training", "--trust-code")
    model_file.unlink()  # trusted, the recorded copy runs: the file is not needed
    assert run_cli(capsys, "predict", checkpoint, image, "--trust-code")[0] == 0


def test_a_checkpoint_whose_recorded_source_was_altered_is_refused_even_when_trusted(trained, capsys):
    checkpoint, image, _ = trained
    state = torch.load(checkpoint, weights_only=True)
    state["model_spec"]["source"] += "\nimport os  # injected\n"
    torch.save(state, checkpoint)
    code, _, err = run_cli(capsys, "predict", checkpoint, image, "--trust-code")
    assert_one_line_error(code, err, "does not match its SHA-256")


def test_evaluate_export_serve_and_python_open_a_trusted_checkpoint(trained, capsys, tmp_path):
    import mnistlab
    from mnistlab.common.errors import CheckpointError

    checkpoint, image, data_dir = trained
    code, out, err = run_cli(capsys, "--data-dir", data_dir, "evaluate", checkpoint, "--trust-code", "--json")
    assert code == 0 and json.loads(out)["model"] == "Tiny", err
    assert_one_line_error(*run_cli(capsys, "--data-dir", data_dir, "evaluate", checkpoint)[::2], "--trust-code")
    onnx = tmp_path / "mine.onnx"
    code, _, err = run_cli(capsys, "export", checkpoint, "--out", onnx, "--trust-code")
    assert code == 0 and onnx.stat().st_size > 0, err
    with pytest.raises(CheckpointError, match="trust_code=True"):
        mnistlab.load(checkpoint)
    classifier = mnistlab.load(checkpoint, trust_code=True)
    assert classifier.predict(np.zeros((2, 28, 28), np.uint8)).shape == (2,)
    pytest.importorskip("fastapi")
    from mnistlab.serve.app import create_app

    skipped: list[str] = []
    with pytest.raises(CheckpointError, match="none of the checkpoints could be loaded"):
        create_app([checkpoint], skipped=skipped)
    assert "--trust-code" in skipped[0]
    assert [loaded.name for loaded in create_app([checkpoint], trust_code=True).state.models] == ["Tiny"]


# --- cost -------------------------------------------------------------------------------------------------------------

def test_multiply_adds_are_counted_per_image():
    from mnistlab.evaluation.cost import multiply_adds
    from mnistlab.models import build_model

    assert multiply_adds(build_model("logreg")) == 784 * 10
    assert multiply_adds(build_model("ann")) == 784 * 128 + 128 * 64 + 64 * 10


class _Attending(torch.nn.Module):
    """Products that are not layers: a matmul, an einsum, attention and a bias-free linear on image rows."""

    def __init__(self):
        super().__init__()
        self.query = torch.nn.Linear(28, 16, bias=False)
        self.head = torch.nn.Linear(28 * 16, 10)

    def forward(self, images):
        rows = images.flatten(0, 1)  # (B, 28, 28)
        query = self.query(rows)
        mixed = torch.nn.functional.scaled_dot_product_attention(query, query, query)
        scores = torch.einsum("brd,bsd->brs", mixed, query) @ query
        return self.head(scores.flatten(1))


class _Branching(torch.nn.Module):
    """A higher-order operator: `torch.cond` picks one of two heads."""

    def __init__(self):
        super().__init__()
        self.small, self.large = torch.nn.Linear(784, 10), torch.nn.Linear(784, 100)

    def forward(self, images):
        flat = images.flatten(1)
        return torch.cond(flat.sum() > 0, lambda x: self.small(x), lambda x: self.large(x)[:, :10], (flat,))


@pytest.mark.parametrize("name", [*MODELS, "attending", "branching"])
def test_multiply_adds_are_pytorchs_flop_count(name):
    """The counter behind `cost.multiply_adds` (which keeps PyTorch's compiler unimported) counts what PyTorch's
    FlopCounterMode counts, for every registered model, for one built of bare products and attention, and for one
    with a higher-order operator (counted by FlopCounterMode itself)."""
    from torch.utils.flop_counter import FlopCounterMode

    from mnistlab.evaluation.cost import multiply_adds
    from mnistlab.models import build_model

    model = {"attending": _Attending, "branching": _Branching}.get(name, lambda: build_model(name))()
    image = torch.rand(1, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.eval()(image)
    assert multiply_adds(model) == counter.get_total_flops() // 2 > 0


@given(st.dictionaries(st.sampled_from("abcdefgh"), st.tuples(st.floats(0, 1), st.integers(1, 10**9)), min_size=1))
def test_best_trade_offs_are_exactly_the_undominated_models(points):
    from mnistlab.reporting.cost import best_trade_offs

    front = best_trade_offs(points)

    def beaten(name):
        accuracy, cost = points[name]
        return any(a >= accuracy and c <= cost and (a, c) != (accuracy, cost) for other, (a, c) in points.items())

    assert set(front) == {name for name in points if not beaten(name)}
    assert [points[name][1] for name in front] == sorted(points[name][1] for name in front)


def test_a_config_file_names_a_model_with_its_arguments(model_file, tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    config = tmp_path / "study.toml"
    config.write_text(f'[train]\nepochs = 1\n\n[models.narrow]\nspec = "{model_file.as_posix()}:Tiny"\n'
                      f'arguments = {{ width = 3 }}\n')
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "compare", "--dataset", "tiny", "--models",
                           "logreg,narrow", "--config", config, "--threads", "1", "--out", out)
    assert code == 0, err
    narrow = json.loads((out / "metrics.json").read_text())["models"]["narrow"]
    assert narrow["spec"]["arguments"] == {"width": 3} and narrow["params"] == 784 * 3 + 3 + 3 * 10 + 10
    assert narrow["config"]["epochs"] == 1  # the file's [train] table over the model's recipe
    config.write_text('[models.narrow]\nspec = 3\n')
    code, _, err = run_cli(capsys, "compare", "--models", "narrow", "--config", config, "--out", tmp_path / "r2")
    assert_one_line_error(code, err, "[models.narrow] needs spec")


def test_a_model_registered_in_this_process_is_refused_for_workers_before_training(tiny_dataset, tmp_path, monkeypatch):
    from torch import nn

    from mnistlab.common.errors import ConfigError
    from mnistlab.models import registry
    from mnistlab.study.compare import run_compare
    from mnistlab.study.plan import plan_placement

    monkeypatch.setitem(registry.MODELS, "notebook-net", lambda num_classes=10: nn.Linear(784, num_classes))
    monkeypatch.setitem(registry.RECIPES, "notebook-net", {})
    _, data_dir, _, _ = tiny_dataset
    with pytest.raises(ConfigError, match="registered in this process only.*FILE.py:Class"):
        run_compare(["notebook-net"], {"dataset": str(data_dir / "tiny")}, tmp_path / "run",
                    placement=plan_placement(2, 1), progress=False)
    assert not (tmp_path / "run").exists()


def test_models_lists_installed_plugins_and_how_to_name_ones_own(tmp_path, monkeypatch, capsys):
    info = tmp_path / "site" / "tinyplug-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mnistlab.models]\ntinyplug = tinyplug:Tiny\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "tinyplug    from an installed package: tinyplug:Tiny" in out and "FILE.py:Class" in out


def test_the_model_card_of_ones_own_model_runs_none_of_its_code(trained, capsys):
    checkpoint, _, _ = trained
    card = checkpoint.with_name(checkpoint.name + ".md").read_text()
    assert "A model of the user's own" in card and "trust_code=True" in card and "--trust-code" in card
    code, out, err = run_cli(capsys, "card", checkpoint)
    assert code == 0 and out == card, err


def test_a_checkpoint_cannot_pass_arguments_to_a_built_in_model(tiny_dataset, tmp_path, capsys):
    """A crafted record must not size a built-in network (e.g. hidden layers of a billion units)."""
    _, data_dir, _, _ = tiny_dataset
    checkpoint = tmp_path / "ann.pt"
    assert run_cli(capsys, "--quiet", "--data-dir", data_dir, "train", "ann", "--dataset", "tiny", "--epochs", "1",
                   "--out", checkpoint)[0] == 0
    state = torch.load(checkpoint, weights_only=True)
    state["model_spec"] = {"label": "ann", "kind": "built-in", "target": "ann",
                           "arguments": {"hidden": [10**9, 10**9]}}
    torch.save(state, checkpoint)
    image = tmp_path / "digit.png"
    Image.fromarray(np.pad(np.full((12, 4), 255, np.uint8), 8)).save(image)
    code, _, err = run_cli(capsys, "predict", checkpoint, image, "--trust-code")
    assert_one_line_error(code, err, "gives arguments to a built-in model")


@pytest.mark.parametrize("labels", ["a=FILE:Tiny,a_normalised=FILE:Tiny", "Net=FILE:Tiny,net=FILE:Tiny"])
def test_labels_whose_files_would_collide_are_refused(labels, model_file, tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    code, _, err = tiny_compare(capsys, data_dir, tmp_path / "run", labels.replace("FILE", str(model_file)))
    assert_one_line_error(code, err, "would both write", "label them apart")
    assert not (tmp_path / "run").exists()


def test_a_model_file_that_draws_random_numbers_at_import_draws_the_same_ones_everywhere(tmp_path):
    """Its module runs with the global streams seeded (as in a worker process) and leaves the caller's streams."""
    from mnistlab.models.contract import resolve
    from mnistlab.models.spec import parse_spec

    path = tmp_path / "drawing.py"
    path.write_text(MODEL_FILE + "\nSHIFT = torch.rand(1).item()\n")
    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    spec = resolve(parse_spec(f"{path}:Tiny"))
    assert torch.equal(torch.rand(1), expected_next)
    module = sys.modules[f"mnistlab_user_model_{spec.source_sha256[:16]}"]
    assert module.SHIFT == torch.rand(1, generator=torch.Generator().manual_seed(0)).item()


def test_a_model_that_fails_in_training_is_one_line_from_train(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    path = tmp_path / "late.py"
    path.write_text(MODEL_FILE.replace("        return self.body(images)", """        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > 3:
            raise RuntimeError("gave up")
        return self.body(images)"""))
    code, _, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "train", f"{path}:Tiny", "--dataset", "tiny",
                           "--epochs", "2", "--batch-size", "16", "--out", tmp_path / "late.pt")
    assert_one_line_error(code, err, "training failed (RuntimeError: gave up)")


CRAFTED = {  # a record a crafted checkpoint may hold, and what refuses it
    "deep arguments": ({"arguments": {"width": [[[1]]]}}, "not what a model spec holds"),
    "many arguments": ({"arguments": {"width": list(range(10_000))}}, "not what a model spec holds"),
    "odd label": ({"label": "a label\x1b[2K"}, "not what a model spec holds"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_model_record_is_refused_before_anything_reads_it(case, trained, capsys):
    checkpoint, image, _ = trained
    state = torch.load(checkpoint, weights_only=True)
    change, fragment = CRAFTED[case]
    state["model_spec"].update(change)
    if "label" in change:
        state["model_name"] = change["label"]
    torch.save(state, checkpoint)
    for argv in (["predict", checkpoint, image], ["card", checkpoint]):
        code, _, err = run_cli(capsys, *argv)
        assert_one_line_error(code, err, fragment)
        assert "\x1b" not in err


def test_an_untrusted_checkpoint_makes_mnistlab_read_no_file_but_a_model_file(tmp_path):
    from mnistlab.training.checkpoint import changed_since_training

    big = tmp_path / "big.py"
    big.write_bytes(b"#" * 2_000_000)
    other = tmp_path / "notes.txt"
    other.write_text("x")
    assert not changed_since_training(str(big), "0" * 64)  # too large to be a model file: not read
    assert not changed_since_training(str(other), "0" * 64)  # not a .py file: not read
    assert not changed_since_training("/proc/self/mem", "0" * 64)
    small = tmp_path / "small.py"
    small.write_text("x = 1\n")
    assert changed_since_training(str(small), "0" * 64)


def test_resume_with_explain_runs_no_code_a_checkpoint_in_the_folder_records(tiny_dataset, tmp_path, capsys):
    """A checkpoint swapped into a run folder must not run its recorded code when the run resumes."""
    pytest.importorskip("captum")
    _, data_dir, _, _ = tiny_dataset
    out = tmp_path / "run"
    assert tiny_compare(capsys, data_dir, out, "ann")[0] == 0
    marker = tmp_path / "ran"
    source = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\nfrom mnistlab.models.registry import MODELS\nNet = MODELS['ann']\n"
    state = torch.load(out / "ann.pt", weights_only=True)
    state["model_spec"] = {"label": "ann", "kind": "file", "target": str(tmp_path / "evil.py") + ":Net",
                           "arguments": {}, "source": source,
                           "source_sha256": hashlib.sha256(source.encode()).hexdigest()}
    torch.save(state, out / "ann.pt")
    code, _, err = tiny_compare(capsys, data_dir, out, "ann", "--resume", "--explain")
    assert_one_line_error(code, err, "--trust-code")
    assert not marker.exists()


def test_control_characters_in_an_error_never_reach_the_terminal(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    code, _, err = tiny_compare(capsys, data_dir, tmp_path / "run", "models/x\x1b[2K\x07.py:Net")
    assert_one_line_error(code, err, "no such file models/x?[2K?.py")
    assert "\x1b" not in err and "\x07" not in err
