"""The report of a comparison across runs (`mnistlab compare-runs`): the entries, the tests, the test set.

Sections only, from the comparison's own record (comparison.json); `study.compare_runs`
renders them with the run report's Markdown and HTML renderers.
"""

from __future__ import annotations

from mnistlab.reporting.document import Section, Table, percent
from mnistlab.reporting.report import comparison_section
from mnistlab.training.config import describe_training

ENTRY_HEADER = ("entry", "model", "seeds", "test accuracy (%)", "std (points)", "95% CI (%)", "run created", "commit")


def entry_rows(result: dict) -> list[list]:
    """One row per entry: its mean test accuracy over the paired seeds, std and t-interval, when and what made it."""
    rows = []
    for index, entry in enumerate(result["entries"]):
        interval = entry["accuracy"]
        ci = "–" if interval["ci_low"] is None else f"{percent(interval['ci_low'])}–{percent(interval['ci_high'])}"
        rows.append([entry["label"], entry["model"], ",".join(map(str, entry["seeds"])),
                     (percent(entry["test_accuracy"]), f"entries.{index}.test_accuracy"), percent(interval["std"]), ci,
                     str(entry["created"])[:16].replace("T", " "), entry.get("commit") or "–"])
    return rows


def run_comparison_sections(result: dict) -> list[Section]:
    """The whole report as sections."""
    seeds = result["seeds"]
    pairing = ("seeds paired by seed" if all(isinstance(seed, int) for seed in seeds) else
               "seeds paired in the order each run lists them (seed pairs shown as first/second/...)")
    summary = Section("Summary", [
        f"Each entry is one model from one run, scored on the same {result['dataset']['test_size']:,} test images of "
        f"{result['dataset']['name']} (test files' checksums checked); {len(seeds)} seed pair(s), {pairing}. "
        f"Accuracies are means over those seeds with a Student-t 95% interval.",
        Table(list(ENTRY_HEADER), entry_rows(result)),
        "Where each entry comes from:",
        *[f"- `{entry['label']}`: model {entry['model']} of run `{entry['run']}`; trained with "
          f"{describe_training(entry['config'])}" for entry in result["entries"]],
    ])
    provenance = Section("Test set", [
        f"- Dataset: {result['dataset']['name']}; compared: {result['created']}",
        "- Test files' payload SHA-256:",
        *(f"  - `{name}`: `{digest}`" for name, digest in result["dataset"]["test_checksums"].items()),
    ])
    return [summary, comparison_section(result), provenance]
