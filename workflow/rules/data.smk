# Deterministic, disjoint splits of the offline data (or the paper's SST-5 and C4), the shared
# tokenizer and the prompt sets.

OTHER_DOMAINS = [
    "tweets",
    "amazon",
    "nyt",
]  # the VADER files besides the movie sentences


if "movie" in HUB_DATASETS:

    rule prepare_movie:
        input:
            sst5="resources/hub/data/movie",
        output:
            movie="results/prepare/movie.parquet",
        log:
            "logs/prepare_movie/movie.log",
        benchmark:
            "benchmarks/prepare_movie/movie.tsv"
        conda:
            "../../envs/lmlerp.yaml"
        resources:
            mem_mb=job_memory("prepare_movie"),
            runtime=job_runtime("prepare_movie"),
        params:
            code=code("scripts/prepare_sst5.py"),
        script:
            "../../scripts/prepare_sst5.py"

else:

    rule prepare_movie:
        input:
            vader="resources/vader",
        output:
            movie="results/prepare/movie.parquet",
        log:
            "logs/prepare_movie/movie.log",
        benchmark:
            "benchmarks/prepare_movie/movie.tsv"
        conda:
            "../../envs/lmlerp.yaml"
        resources:
            mem_mb=job_memory("prepare_movie"),
            runtime=job_runtime("prepare_movie"),
        params:
            code=code("scripts/prepare_movie.py"),
            splits=canonical(config["data"]["movie_splits"]),
            threshold=config["data"]["movie_threshold"],
            seed=config["seed"],
        script:
            "../../scripts/prepare_movie.py"


if "corpus" in HUB_DATASETS:

    rule prepare_corpus:
        input:
            c4="resources/hub/data/corpus",
        output:
            corpus="results/prepare/corpus.parquet",
        log:
            "logs/prepare_corpus/corpus.log",
        benchmark:
            "benchmarks/prepare_corpus/corpus.tsv"
        conda:
            "../../envs/lmlerp.yaml"
        resources:
            mem_mb=job_memory("prepare_corpus"),
            runtime=job_runtime("prepare_corpus"),
        params:
            code=code("scripts/prepare_c4.py"),
            val_fraction=config["data"]["val_fraction"],
            seed=config["seed"],
        script:
            "../../scripts/prepare_c4.py"

else:

    rule prepare_corpus:
        input:
            gensim="resources/gensim",
        output:
            corpus="results/prepare/corpus.parquet",
        log:
            "logs/prepare_corpus/corpus.log",
        benchmark:
            "benchmarks/prepare_corpus/corpus.tsv"
        conda:
            "../../envs/lmlerp.yaml"
        resources:
            mem_mb=job_memory("prepare_corpus"),
            runtime=job_runtime("prepare_corpus"),
        params:
            code=code("scripts/prepare_corpus.py"),
            splits=canonical(config["data"]["corpus_splits"]),
            val_fraction=config["data"]["val_fraction"],
            seed=config["seed"],
        script:
            "../../scripts/prepare_corpus.py"


rule prepare_judge_data:
    input:
        movie=rules.prepare_movie.output.movie,
        vader="resources/vader",
    output:
        judge_data="results/prepare/judge_data.parquet",
    log:
        "logs/prepare_judge_data/judge_data.log",
    benchmark:
        "benchmarks/prepare_judge_data/judge_data.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("prepare_judge_data"),
        runtime=job_runtime("prepare_judge_data"),
    params:
        code=code("scripts/prepare_judge_data.py"),
        domains=config["judge"]["domains"],
        other_domains=OTHER_DOMAINS,
        neutral_band=config["judge"]["neutral_band"],
        test_fraction=config["judge"]["test_fraction"],
        seed=config["seed"],
    script:
        "../../scripts/prepare_judge_data.py"


if "theta0" in PRETRAINED:  # a hub θ0 brings its own tokenizer

    rule train_tokenizer:
        input:
            corpus=rules.prepare_corpus.output.corpus,
        output:
            tokenizer=directory("results/tokenizer"),
        log:
            "logs/train_tokenizer/tokenizer.log",
        benchmark:
            "benchmarks/train_tokenizer/tokenizer.tsv"
        conda:
            "../../envs/lmlerp.yaml"
        resources:
            mem_mb=job_memory("train_tokenizer"),
            runtime=job_runtime("train_tokenizer"),
        params:
            code=code("scripts/train_tokenizer.py"),
            settings=canonical(config["tokenizer"]),
        script:
            "../../scripts/train_tokenizer.py"


rule tokenize_corpus:
    input:
        corpus=rules.prepare_corpus.output.corpus,
        tokenizer=TOKENIZER,
    output:
        train="results/tokens/{model}/train.tokens",
        val="results/tokens/{model}/val.tokens",
    log:
        "logs/tokenize_corpus/{model}.log",
    benchmark:
        "benchmarks/tokenize_corpus/{model}.tsv"
    conda:
        "../../envs/lmlerp.yaml"
    resources:
        mem_mb=job_memory("tokenize_corpus"),
        runtime=job_runtime("tokenize_corpus"),
    params:
        code=code("scripts/tokenize_corpus.py"),
        name="{model}",
    script:
        "../../scripts/tokenize_corpus.py"


if "prompts" in HUB:

    rule prepare_prompts:
        input:
            neutral="resources/hub/prompts/neutral.jsonl",
            positive="resources/hub/prompts/positive.jsonl",
            negative="resources/hub/prompts/negative.jsonl",
            tokenizer=TOKENIZER,
        output:
            prompts="results/prepare/prompts.parquet",
        log:
            "logs/prepare_prompts/prompts.log",
        benchmark:
            "benchmarks/prepare_prompts/prompts.tsv"
        conda:
            "../../envs/lmlerp.yaml"
        resources:
            mem_mb=job_memory("prepare_prompts"),
            runtime=job_runtime("prepare_prompts"),
        params:
            code=code("scripts/prepare_dexperts_prompts.py"),
            settings=canonical(config["prompts"]),
            seed=config["seed"],
        script:
            "../../scripts/prepare_dexperts_prompts.py"

else:

    rule prepare_prompts:
        input:
            corpus=rules.prepare_corpus.output.corpus,
            movie=rules.prepare_movie.output.movie,
            tokenizer=TOKENIZER,
        output:
            prompts="results/prepare/prompts.parquet",
        log:
            "logs/prepare_prompts/prompts.log",
        benchmark:
            "benchmarks/prepare_prompts/prompts.tsv"
        conda:
            "../../envs/lmlerp.yaml"
        resources:
            mem_mb=job_memory("prepare_prompts"),
            runtime=job_runtime("prepare_prompts"),
        params:
            code=code("scripts/prepare_prompts.py"),
            settings=canonical(config["prompts"]),
            seed=config["seed"],
        script:
            "../../scripts/prepare_prompts.py"
