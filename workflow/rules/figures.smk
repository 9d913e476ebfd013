# The paper's figures 3–10, and the weight-difference norms behind Fig 9.


rule weight_norms:
    input:
        theta0=MODELS["theta0"],
        theta_pos=MODELS["theta_pos"],
        reference=REFERENCE,
        theta_c4=MODELS["theta_c4"],
    output:
        norms="results/tables/weight_norms.parquet",
    log:
        "logs/weight_norms/weight_norms.log",
    benchmark:
        "benchmarks/weight_norms/weight_norms.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    params:
        reference="θ0" if REFERENCE == MODELS["theta0"] else "reference",
    script:
        "../../scripts/weight_norms.py"


rule plot:
    input:
        **{family: f"results/tables/{family}.parquet" for family in FAMILIES},
        norms="results/tables/weight_norms.parquet",
    output:
        fig03=report(
            "results/figures/fig03_g1.png",
            caption="../report/fig03.rst",
            category="Figures",
        ),
        fig04=report(
            "results/figures/fig04_word_probabilities.png",
            caption="../report/fig04.rst",
            category="Figures",
        ),
        fig05=report(
            "results/figures/fig05_g1_vs_g2.png",
            caption="../report/fig05.rst",
            category="Figures",
        ),
        fig06=report(
            "results/figures/fig06_dexperts_vs_weights.png",
            caption="../report/fig06.rst",
            category="Figures",
        ),
        fig07=report(
            "results/figures/fig07_g3.png",
            caption="../report/fig07.rst",
            category="Figures",
        ),
        fig08=report(
            "results/figures/fig08_g3_nll.png",
            caption="../report/fig08.rst",
            category="Figures",
        ),
        fig09=report(
            "results/figures/fig09_weight_norms.png",
            caption="../report/fig09.rst",
            category="Figures",
        ),
        fig10=report(
            "results/figures/fig10_decorrelated.png",
            caption="../report/fig10.rst",
            category="Figures",
        ),
    log:
        "logs/plot/figures.log",
    benchmark:
        "benchmarks/plot/figures.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    params:
        words=canonical(config["evaluation"]["words"]),
    script:
        "../../scripts/plot.py"
