"""Draw the paper's Figs 3–10 from the aggregated tables (Snakemake `script:` entrypoint)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import failure, figures

failure.install(snakemake.rule)

i, o = snakemake.input, snakemake.output
t = {name: pd.read_parquet(i[name]) for name in ("g1", "g2", "g3", "decorrelated", "dexperts")}
figures.save(figures.fig03_g1(t["g1"]), o.fig03)
figures.save(figures.fig04_word_probabilities(t["g1"], snakemake.params.words), o.fig04)
figures.save(figures.fig05_g1_vs_g2(t["g1"], t["g2"]), o.fig05)
figures.save(figures.fig06_dexperts_vs_weights(t["dexperts"], t["g2"]), o.fig06)
figures.save(figures.fig07_g3(t["g3"]), o.fig07)
figures.save(figures.fig08_g3_nll(t["g3"]), o.fig08)
figures.save(figures.fig09_weight_norms(pd.read_parquet(i.norms)), o.fig09)
figures.save(figures.fig10_decorrelated(t["decorrelated"]), o.fig10)
