# The paper's figures 3–11 (and the weight-difference norms behind Fig 9), the connectivity
# figures, and results/summary.json with the numbers every stage measured.


include: "report_helpers.smk"


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
        **{
            family: expand(rules.aggregate.output.table, family=family)[0]
            for family in FAMILIES
        },
        norms=rules.weight_norms.output.norms,
    output:
        fig03=figure("fig03_g1", "../report/fig03.rst"),
        fig04=figure("fig04_word_probabilities", "../report/fig04.rst"),
        fig05=figure("fig05_g1_vs_g2", "../report/fig05.rst"),
        fig06=figure("fig06_dexperts_vs_weights", "../report/fig06.rst"),
        fig07=figure("fig07_g3", "../report/fig07.rst"),
        fig08=figure("fig08_g3_nll", "../report/fig08.rst"),
        fig09=figure("fig09_weight_norms", "../report/fig09.rst"),
        fig10=figure("fig10_decorrelated", "../report/fig10.rst"),
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


rule plot_connectivity:
    input:
        barriers=rules.tabulate_connectivity.output.barriers,
        curves=expand(rules.bezier.output.curves, pair=CURVE_PAIRS),
    output:
        steps=figure(
            "connectivity_steps",
            "../report/connectivity_steps.rst",
            "Mode connectivity",
        ),
        curves=figure(
            "connectivity_curves",
            "../report/connectivity_curves.rst",
            "Mode connectivity",
        ),
    log:
        "logs/plot_connectivity/figures.log",
    benchmark:
        "benchmarks/plot_connectivity/figures.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("plot_connectivity"),
        runtime=job_runtime("plot_connectivity"),
    params:
        code=code("scripts/plot_connectivity.py"),
        pairs=CURVE_PAIRS,
    script:
        "../../scripts/plot_connectivity.py"


rule summarize:
    input:
        **summary_inputs(),
        pretrain_metrics=expand(rules.pretrain.output.metrics, model=PRETRAINED),
        selections=expand(rules.select_finetune.output.table, sentiment=SENTIMENTS),
        tables=expand(rules.aggregate.output.table, family=FAMILIES),
        trends=expand(rules.aggregate.output.trends, family=FAMILIES),
        connectivity=rules.tabulate_connectivity.output.barriers,
        connectivity_data=rules.tabulate_connectivity.output.data,
        curves=rules.plot_connectivity.input.curves,
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
