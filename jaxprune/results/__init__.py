"""The results layer: runs many configs and turns their rows into findings.

Above `protocols` (it runs them) and never imported by the core:
  sweeps         -- a base config plus a grid of overrides -> `results.jsonl`.
  report         -- rows -> mean ± std tables (markdown, CSV), published
                    numbers beside ours; `figures` draws them.
  verdicts       -- claims checked by code against aggregated rows.
  reproduce      -- reproduction suites (sweeps + studies + verdicts) ->
                    `REPORT.md`.
  paper_results  -- the papers' published numbers (third_party CSVs).
  studies        -- analysis experiments over finished runs (JSV, OrthP).
  setups, setup_labels -- Wang et al. 2023 Table 2 comparison setups of runs
                    and of protocol config points.
"""
