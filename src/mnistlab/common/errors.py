"""Errors that mnistlab reports to users as one line (the CLI exits with code 2)."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an error's message, cut to `limit` characters: what a one-line report can quote."""
    return (str(error).splitlines() or [""])[0][:limit]


class MnistlabError(Exception):
    """Base class: a problem the user can fix, with the message saying how."""


class DatasetError(MnistlabError):
    """A dataset file is missing, damaged, or does not match its pinned checksum."""


class ConfigError(MnistlabError):
    """A configuration value or file is invalid."""


class CheckpointError(MnistlabError):
    """A checkpoint file cannot be read or does not describe a known model."""


class PreprocessError(MnistlabError):
    """An image cannot be decoded, is too large, or holds no digit to classify."""


class TrainingDiverged(MnistlabError):
    """The training loss stopped being a finite number (usually: the learning rate is too high)."""
