"""Command line of lmlerp: `export` writes one path point as a model directory; `standins`
writes the random-init paper-architecture stand-ins of configs/paper-smoke.yaml.

Run export from the working directory of a finished run: the bases are the ones its recipes name.
"""

from __future__ import annotations

import argparse
import sys

from lmlerp.space import export


def parser() -> argparse.ArgumentParser:
    """The argument parser: sub-commands export and standins."""
    top = argparse.ArgumentParser(prog="python -m lmlerp", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    sub = commands.add_parser(
        "export",
        help="write one path point as a save_pretrained directory",
        description=(
            "Rebuild one path point from the finished bases of the run in the working directory "
            "(those its recipes name, each base's sha256 verified) and write it as a Hugging "
            "Face save_pretrained directory: safetensors, tokenizer, generation_config.json "
            "(the run's sampling settings), recipe.json and a README.md model card. It loads "
            "with AutoModelForCausalLM.from_pretrained(OUT). "
            f"Families: {', '.join(export.EXPORTABLE)} (DExperts mixes logits: not exportable)."
        ),
        epilog="example: python -m lmlerp export --config config.yaml --family g3 "
        "--alpha 0.4 --beta -0.8 --out exports/g3_a0.4_b-0.8",
    )
    sub.add_argument("--config", required=True, help="the run's config file (e.g. config.yaml)")
    sub.add_argument("--family", required=True, help=f"one of {', '.join(export.EXPORTABLE)}")
    sub.add_argument("--alpha", type=float, required=True, help="the point's α")
    sub.add_argument("--beta", type=float, help="the point's β (g3 only)")
    sub.add_argument("--out", required=True, help="the directory to write (replaced if present)")
    sub.add_argument("--results", default="results", help="the run's results directory")
    stand = commands.add_parser(
        "standins",
        help="write the paper-architecture stand-ins of configs/paper-smoke.yaml",
        description=(
            "Write random-init GPT-2 Large, GPT-2 XL and DistilGPT-2 (hub layout: unprefixed, "
            "sharded), RoBERTa-base classifiers and encoder, with GPT-2's real BPE, and SST-5, C4, "
            "DExperts-prompt and QQP files made from the offline default's VADER and Lee texts. "
            "Model directories already present are kept."
        ),
        epilog="`make paper-smoke` runs it with the offline default's downloaded files",
    )
    stand.add_argument("--out", required=True, help="directory of the stand-ins (hub/ of the run)")
    stand.add_argument("--downloads", required=True, help="directory of the pinned downloads")
    stand.add_argument("--movie", required=True, help="VADER movie ratings (movie.tsv)")
    stand.add_argument("--corpus", required=True, help="documents, one per line (Lee corpus)")
    stand.add_argument("--seed", type=int, default=0, help="seed of the random weights and splits")
    return top


def standins(args: argparse.Namespace) -> int:
    """`python -m lmlerp standins`: write every stand-in, report what was written."""
    from pathlib import Path

    from lmlerp.data import assets
    from lmlerp.data import standins as stand_ins

    for given in (args.movie, args.corpus):
        if not Path(given).is_file():
            print(f"lmlerp standins: error: {given} is missing (the offline default's download "
                  "rule writes it: see make paper-smoke)", file=sys.stderr)  # fmt: skip
            return 2
    try:
        written = stand_ins.write_all(
            Path(args.out), Path(args.downloads), Path(args.movie), Path(args.corpus), args.seed
        )
    except assets.AssetError as error:
        print(f"lmlerp standins: error: {error}", file=sys.stderr)
        return 2
    print(f"stand-ins in {args.out}: {written}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; exit status 2 with one line on stderr for a bad request."""
    args = parser().parse_args(argv)
    if args.command == "standins":
        return standins(args)
    from lmlerp.config import validation

    try:
        config = validation.load(args.config)
        coords = export.check_point(args.family, {"alpha": args.alpha, "beta": args.beta}, config)
        export.base_dirs(args.results, args.family)  # a finished run, before any work
    except (export.ExportError, validation.ConfigError, OSError) as error:
        print(f"lmlerp export: error: {error}", file=sys.stderr)
        return 2
    out = export.export_point(args.family, coords, config, args.out, args.results)
    print(f"exported {args.family} {coords} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
