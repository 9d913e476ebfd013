"""Fault injection for the workflow tests: run Snakemake, SIGKILL its whole process tree at seeded
random moments, resume, and check after every kill that nothing half-written passes as finished.

The harness watches Snakemake's own log lines (`rule X:` … `jobid: N` … `Finished jobid: N`) to
know which jobs run at the moment of a kill. A kill is planned at the first start of a rule that
no earlier kill has hit yet (always for the rules in `MUST_KILL`, with probability `P_KILL`
otherwise), after a seeded delay, so the kills spread over every stage of the DAG.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from safetensors import safe_open
from workflow_helpers import REPO, TINY, jobs, snakemake

MUST_KILL = {"pretrain", "finetune", "evaluate", "summarize", "finetune_classifier", "connect"}
P_KILL = 0.75
DELAY_S = (0.3, 4.0)  # after the job's start line: mostly lands in start-up and compute
MUST_DELAY_S = (0.3, 1.5)  # inside any job's start-up (imports alone take seconds): never missed
START = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")
OUTPUT = re.compile(r"^\s+output: (.*)$")
FINISHED = re.compile(r"^Finished jobid: (\d+)")


@dataclass
class Job:
    rule: str
    jobid: int = -1
    wildcards: str = ""
    outputs: list[str] = field(default_factory=list)
    started: float = 0.0


@dataclass
class Kill:
    """One injected fault and what the restart found."""

    attempt: int
    target_rule: str  # the rule whose start armed the kill
    delay_s: float  # from that start to the kill
    at_s: float  # seconds since the first attempt started
    running: list[dict[str, str]]  # jobs running at the kill: rule and wildcards
    planned_again: list[str] = field(default_factory=list)  # their rules, re-planned by -n
    left_whole: list[str] = field(default_factory=list)  # finished just before: outputs whole
    valid_outputs: int = 0  # output files on disk after the kill, every one checked readable
    stale_temporaries: int = 0  # hidden *.tmp siblings the kill left (never outputs)


class LogWatcher:
    """Reads Snakemake's merged stdout/stderr line by line and tracks the running jobs."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.jobs: dict[int, Job] = {}
        self.finished: set[int] = set()
        self.starts: list[Job] = []  # in order of appearance
        self._pending: Job | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._lock:
                self._parse(line.rstrip("\n"))

    def _parse(self, line: str) -> None:
        self.lines.append(line)
        if match := START.match(line):
            self._pending = Job(match.group(1))
        elif self._pending and (match := OUTPUT.match(line)):
            self._pending.outputs = match.group(1).split(", ")
        elif self._pending and (match := JOBID.match(line)):
            self._pending.jobid = int(match.group(1))
            self._pending.started = time.monotonic()
            self.jobs[self._pending.jobid] = self._pending
            self.starts.append(self._pending)
        elif self._pending and (match := WILDCARDS.match(line)):
            self._pending.wildcards = match.group(1)
        elif match := FINISHED.match(line):
            self.finished.add(int(match.group(1)))

    def join(self) -> None:
        self._thread.join(timeout=30)

    def running(self) -> list[Job]:
        with self._lock:
            return [j for i, j in self.jobs.items() if i not in self.finished and j.rule != "all"]

    def new_starts(self, seen: int) -> list[Job]:
        with self._lock:
            return self.starts[seen:]


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`, from /proc (children that left the process group too)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL Snakemake's process group and every descendant, as a node failure would."""
    tree = descendants(process.pid)
    os.killpg(process.pid, signal.SIGKILL)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=60)


def is_valid(path: Path) -> bool:
    """A finished output reads back completely: parquet, JSON, safetensors (header and size)."""
    try:
        if path.suffix == ".parquet":
            pd.read_parquet(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            with safe_open(path, framework="pt") as handle:  # checks the header against the size
                for name in list(handle.keys())[:1]:
                    handle.get_tensor(name)
        elif path.suffix in (".tsv", ".png"):
            return path.stat().st_size > 0
    except Exception:
        return False
    return True


def output_files(work: Path) -> list[Path]:
    """Every file an output can hold (hidden temporaries excluded: they are never outputs)."""
    return [
        p
        for p in (work / "results").rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(work).parts)
    ]


def temporaries(work: Path) -> list[Path]:
    return [p for root in ("results", "resources") for p in (work / root).rglob(".*.tmp")]


def start(work: Path, *args: str, configfile: Path = TINY) -> subprocess.Popen:
    """Snakemake on `configfile` in `work` (extra `args`: targets, flags) in its own group."""
    command = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(work),
        "--configfile", str(configfile),
        "--cores", "2",
        "--rerun-incomplete",
        *args,
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the kill takes every job with it
    )


def check_after_kill(work: Path, kill: Kill, killed: list[Job]) -> None:
    """Unlock, then a dry run must plan every killed job again; every output on disk is whole."""
    unlock = snakemake(work, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    plan = snakemake(work, "--dry-run", "--rerun-incomplete")
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = {(j["rule"], j["wildcards"]) for j in jobs(plan.stdout + plan.stderr)}
    for job in killed:
        if (job.rule, job.wildcards) in planned:
            kill.planned_again.append(job.rule)
        else:  # finished in the instant before the kill: then all of it must be on disk, whole
            for output in job.outputs:
                path = work / output
                files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
                assert files and all(map(is_valid, files)), (job, output)
            kill.left_whole.append(job.rule)
    files = output_files(work)
    broken = [str(p) for p in files if not is_valid(p)]
    assert broken == [], f"half-written outputs after kill {kill.attempt}: {broken}"
    kill.valid_outputs = len(files)
    kill.stale_temporaries = len(temporaries(work))


def run_with_kills(work: Path, seed: int, max_kills: int = 14) -> tuple[list[Kill], int]:
    """Run the tiny config to completion in `work`, killing it up to `max_kills` times.

    Kills of optional rules never eat into the budget the `MUST_KILL` rules not yet hit need.

    Returns the kills and the number of attempts (kills + 1 when the last attempt completes).
    """
    rng = random.Random(seed)
    hit: set[str] = set()
    kills: list[Kill] = []
    t0 = time.monotonic()
    for attempt in range(1, max_kills + 2):
        process = start(work)
        watcher = LogWatcher(process.stdout)
        seen, armed = 0, None  # armed: (deadline, target rule, delay)
        while process.poll() is None:
            time.sleep(0.05)
            new = watcher.new_starts(seen)
            seen += len(new)
            for job in new:
                if armed or len(kills) >= max_kills or job.rule in hit or job.rule == "all":
                    continue
                spare = max_kills - len(kills) - len(MUST_KILL - hit)
                if job.rule in MUST_KILL or (spare > 0 and rng.random() < P_KILL):
                    delay = rng.uniform(*(MUST_DELAY_S if job.rule in MUST_KILL else DELAY_S))
                    armed = (job.started + delay, job.rule, delay)
            if armed and time.monotonic() >= armed[0]:
                kill_tree(process)
                watcher.join()  # lines written before the kill still count
                killed = watcher.running()
                kill = Kill(
                    attempt,
                    armed[1],
                    round(armed[2], 2),
                    round(time.monotonic() - t0, 1),
                    [{"rule": j.rule, "wildcards": j.wildcards} for j in killed],
                )
                hit.update(j.rule for j in killed)
                check_after_kill(work, kill, killed)
                kills.append(kill)
                break
        else:
            watcher.join()
            tail = "\n".join(watcher.lines[-60:])
            assert process.returncode == 0, f"attempt {attempt} failed:\n{tail}"
            return kills, attempt
    raise AssertionError(f"no attempt completed after {len(kills)} kills")


def report(kills: list[Kill], attempts: int, seconds: float) -> dict:
    """The harness's record: every kill, and the totals the README quotes."""
    rules = sorted({job["rule"] for kill in kills for job in kill.running})
    return {
        "kills": len(kills),
        "attempts": attempts,
        "rules_killed": rules,
        "jobs_killed": sum(len(kill.running) for kill in kills),
        "wall_s": round(seconds, 1),
        "per_kill": [asdict(kill) for kill in kills],
    }


def markdown(record: dict) -> str:
    """The per-kill table of `record` in Markdown."""
    rows = ["| # | armed by | delay s | at s | running at the kill | re-planned | outputs ok |"]
    rows.append("|---|---|---|---|---|---|---|")
    for i, kill in enumerate(record["per_kill"], 1):
        running = ", ".join(
            f"{j['rule']}({j['wildcards']})" if j["wildcards"] else j["rule"]
            for j in kill["running"]
        )
        rows.append(
            f"| {i} | {kill['target_rule']} | {kill['delay_s']} | {kill['at_s']} | "
            f"{running or '(Snakemake between jobs)'} | {len(kill['planned_again'])}/"
            f"{len(kill['running'])} | {kill['valid_outputs']} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":  # python tests/kill_harness.py WORKDIR [SEED]: writes WORKDIR/kills.json
    from workflow_helpers import prepare_workdir

    work = prepare_workdir(Path(sys.argv[1]).resolve())
    began = time.monotonic()
    kills, attempts = run_with_kills(work, int(sys.argv[2]) if len(sys.argv) > 2 else 20221122)
    record = report(kills, attempts, time.monotonic() - began)
    (work / "kills.json").write_text(json.dumps(record, indent=2))
    print(markdown(record))
