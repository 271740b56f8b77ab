"""Defaults of predicting on image files, read by `vision.predict` and by the CLI's help (which imports no PyTorch)."""

DEFAULT_TOP_K = 3  # classes shown per image unless asked otherwise (fewer when the model has fewer)
