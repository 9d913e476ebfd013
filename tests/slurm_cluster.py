"""A one-node SLURM cluster on localhost for the tests (Debian's slurm-wlm 22.05 and munge).

`start()` writes slurm.conf, gres.conf and a fresh munge key into a scratch directory, starts munged
(as user munge), slurmctld and slurmd in the foreground, and returns once the node is idle. The node
offers two fake GPUs (`Gres=gpu:2`, gres.conf `File=/dev/null`, `/dev/zero`): SLURM then
schedules `--gpus=1` jobs as on a GPU cluster, and the jobs run on the CPU. `Cluster.stop()` ends
the three daemons by PID. No systemd and no cgroups are needed (proctrack/linuxproc, task/none);
without slurmdbd, status is read with squeue. Nothing is written outside the scratch directory:
two test sessions on one machine get two clusters on different ports.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo")
PARTITION = "debug"
ACCOUNT = "lmlerp"  # free text: without accounting storage SLURM accepts any account name
MUNGE_USER = "munge"
START_TIMEOUT_S = 60.0


def _which(name: str) -> str | None:
    """`name` on PATH or in the sbin directories, where Debian puts the daemons."""
    return shutil.which(
        name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    )


def missing_binaries() -> list[str]:
    """The SLURM and munge programs this helper needs that are not installed."""
    return [name for name in DAEMONS + CLIENTS if _which(name) is None]


def _binary(name: str) -> str:
    found = _which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (see missing_binaries())")
    return found


def _free_port() -> int:
    """A TCP port that is free now (two test sessions on one machine must not share a cluster)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(root: Path, host: str, cpus: int, memory_mb: int) -> str:
    """The cluster's slurm.conf; every path lies under `root`.

    CR_Core_Memory with DefMemPerCPU: a job without --mem gets 1 GB per CPU instead of the whole
    node, so jobs run side by side. MinJobAge=3600 keeps finished jobs visible to squeue and
    `scontrol show job` for the whole test (the executor reads their final state from squeue).
    """
    ctld_port, slurmd_port = _free_port(), _free_port()
    node = f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb}"
    return f"""\
ClusterName=lmlerp-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
MinJobAge=3600
{node} Gres=gpu:{len(GPU_FILES)} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


# Two fake GPUs, so that two GPU jobs run side by side as in the local `--cores 2` run (each job
# gets its own CUDA_VISIBLE_DEVICES). A GPU GRES needs a device file, else the node drains:
# /dev/null and /dev/zero stand in for /dev/nvidia0 and /dev/nvidia1.
GPU_FILES = ("/dev/null", "/dev/zero")
GRES_CONF = "AutoDetect=off\n" + "".join(f"Name=gpu File={path}\n" for path in GPU_FILES)


@dataclass
class Cluster:
    """A running cluster: its scratch directory, node name and client environment."""

    root: Path
    node: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """A SLURM client command (squeue, scontrol, ...) against this cluster."""
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def node_state(self) -> str:
        """The node's state as sinfo prints it (idle, mix, alloc, down*, drain, ...)."""
        return self.run("sinfo", "--noheader", "--nodes", self.node, "--format=%T").stdout.strip()

    def logs(self, lines: int = 30) -> str:
        """The last lines of each daemon's log (for failure messages)."""
        parts = []
        for log in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.root / log
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            parts.append(f"--- {log}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel the jobs still queued or running, then SIGTERM each daemon by PID (slurmd first)
        and SIGKILL what is left after 15 s."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self.run("scancel", "--user", str(os.getuid()))
            # slurmd must end the job steps before it goes, else they outlive the cluster
            deadline = time.monotonic() + 15
            while self.run("squeue", "--noheader").stdout.strip():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def _wait(condition, what: str, cluster: Cluster, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode} while waiting for {what}\n"
                    + cluster.logs()
                )
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"no {what} after {timeout:.0f} s\n" + cluster.logs())


def _start_munge(root: Path, cluster: Cluster) -> None:
    """munged wants its key and socket in a munge-owned directory that only munge can write and
    everyone can traverse (0711)."""
    munge = root / "munge"
    munge.mkdir()
    munge.chmod(0o711)
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    for path in (munge, key):
        shutil.chown(path, MUNGE_USER, MUNGE_USER)
    command = [
        _binary("munged"), "--foreground",
        f"--key-file={key}", f"--socket={munge}/munge.socket",
        f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
        f"--seed-file={munge}/munged.seed",
    ]  # fmt: skip
    with (root / "munged.log").open("w") as log:
        cluster.processes["munged"] = subprocess.Popen(
            command, user=MUNGE_USER, start_new_session=True, stdout=log, stderr=log
        )
    _wait((munge / "munge.socket").exists, "munge socket", cluster)


def _srun_wrapper(root: Path, conf: Path) -> Path:
    """A directory holding an `srun` that points the real one at this cluster's slurm.conf.

    Inside a job the executor runs the rule with a nested `srun`, after dropping every SLURM_*
    variable, SLURM_CONF included. A real cluster keeps its config where srun looks by default
    (/etc/slurm or slurmd's configless cache); this private cluster must not take those
    machine-wide places, so jobs find this wrapper first on PATH (sbatch exports PATH).
    """
    directory = root / "bin"
    directory.mkdir()
    wrapper = directory / "srun"
    wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {_binary("srun")} "$@"\n')
    wrapper.chmod(0o755)
    return directory


def start(cpus: int | None = None, memory_mb: int = 16000) -> Cluster:
    """Start munged, slurmctld and slurmd in a new scratch directory; return when the node is idle.

    The scratch directory lives under the system temp dir, not pytest's (0700 and owned by root,
    which the munge user cannot enter). Call `stop()` (and remove `root`) when done; on a failed
    start the daemons already running are stopped here.
    """
    root = Path(tempfile.mkdtemp(prefix="lmlerp-slurm-"))
    root.chmod(0o755)
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, host, cpus or os.cpu_count() or 1, memory_mb))
    (root / "gres.conf").write_text(GRES_CONF)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    env["PATH"] = f"{_srun_wrapper(root, conf)}{os.pathsep}{env.get('PATH', '')}"
    cluster = Cluster(root=root, node=host, env=env)
    try:
        _start_munge(root, cluster)
        # The daemons log to files under root (slurm.conf); their echo on stderr is dropped.
        daemon = {
            "start_new_session": True,
            "env": cluster.env,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
        }
        cluster.processes["slurmctld"] = subprocess.Popen(
            [_binary("slurmctld"), "-D", "-i", "-f", str(conf)], **daemon
        )
        _wait(lambda: cluster.run("scontrol", "ping").returncode == 0, "slurmctld", cluster)
        cluster.processes["slurmd"] = subprocess.Popen(
            [_binary("slurmd"), "-D", "-f", str(conf), "-N", host], **daemon
        )
        _wait(lambda: cluster.node_state() == "idle", "idle node", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster
