"""Experiment configs, a package installed with jaxprune: `configs.common` (shared recipes), per-paper sweeps, `configs.mini`, protocol examples."""
