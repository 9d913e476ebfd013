# The paper's figures 3–11 (and the weight-difference norms behind Fig 9) and results/summary.json
# with the numbers every stage measured; Figs 9 and 10 only with paths.decorrelated, Fig 11 only
# where an LM is pretrained here (the connectivity figures: connectivity.smk).


include: "report_helpers.smk"


if DECORRELATED:  # Fig 9 compares θ0 vs θ+ with θ0 vs θC4

    rule weight_norms:
        input:
            base=REFERENCE,
            tuned=REFERENCE_POS,
            theta_c4=MODELS["theta_c4"],
        output:
            norms="results/tables/weight_norms.parquet",
        log:
            "logs/weight_norms/weight_norms.log",
        benchmark:
            "benchmarks/weight_norms/weight_norms.tsv"
        conda:
            "../../envs/lmlerp.yaml"
        resources:
            mem_mb=job_memory("weight_norms"),
            runtime=job_runtime("weight_norms"),
        params:
            code=code("scripts/weight_norms.py"),
            base_name="θ0" if REFERENCE == MODELS["theta0"] else "reference",
            tuned_name="θ+" if REFERENCE == MODELS["theta0"] else "reference+",
        script:
            "../../scripts/weight_norms.py"


rule plot:
    input:
        **plot_inputs(),
    output:
        **decorrelated_figures(),
        fig03=figure("fig03_g1", "../report/fig03.rst"),
        fig04=figure("fig04_word_probabilities", "../report/fig04.rst"),
        fig05=figure("fig05_g1_vs_g2", "../report/fig05.rst"),
        fig06=figure("fig06_dexperts_vs_weights", "../report/fig06.rst"),
        fig07=figure("fig07_g3", "../report/fig07.rst"),
        fig08=figure("fig08_g3_nll", "../report/fig08.rst"),
        fig12=figure("fig12_comparison", "../report/fig12.rst"),
        comparison=report(
            "results/tables/comparison.tsv",
            caption="../report/comparison.rst",
            category="Figures",
        ),
    log:
        "logs/plot/figures.log",
    benchmark:
        "benchmarks/plot/figures.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("plot"),
        runtime=job_runtime("plot"),
    params:
        code=code("scripts/plot.py"),
        words=canonical(config["evaluation"]["words"]),
    script:
        "../../scripts/plot.py"


if PRETRAINED:  # Fig 11: the pretraining loss of the LMs pretrained here

    rule plot_pretraining:
        input:
            losses=expand(rules.pretrain.output.loss, model=PRETRAINED),
        output:
            fig11=figure("fig11_pretraining", "../report/fig11.rst"),
        log:
            "logs/plot_pretraining/figures.log",
        benchmark:
            "benchmarks/plot_pretraining/figures.tsv"
        conda:
            "../../envs/lmlerp.yaml"
        resources:
            mem_mb=job_memory("plot_pretraining"),
            runtime=job_runtime("plot_pretraining"),
        params:
            code=code("scripts/plot_pretraining.py"),
            models=PRETRAINED,
        script:
            "../../scripts/plot_pretraining.py"


rule summarize:
    input:
        **summary_inputs(),
        **connectivity_inputs(),
        pretrain_metrics=pretrain_metrics(),
        selections=expand(rules.select_finetune.output.table, sentiment=SENTIMENTS),
        tables=expand(rules.aggregate.output.table, family=FAMILIES),
        trends=expand(rules.aggregate.output.trends, family=FAMILIES),
    output:
        summary="results/summary.json",
    log:
        "logs/summarize/summary.log",
    benchmark:
        "benchmarks/summarize/summary.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("summarize"),
        runtime=job_runtime("summarize"),
    params:
        code=code("scripts/summarize.py"),
        pretrained=PRETRAINED,
        families=FAMILIES,
        benchmarks=benchmark_patterns(),
        constraints=dict(workflow.wildcard_constraints),
        hub_models=canonical(HUB_MODELS),
    script:
        "../../scripts/summarize.py"
