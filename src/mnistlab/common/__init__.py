"""What every layer uses: one-line user errors, files written whole or not at all, and file locks."""
