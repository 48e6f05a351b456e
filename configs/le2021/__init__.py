"""Per-paper sweep configs (importable so they can share `configs.common`)."""
