"""A real single-node SLURM (Debian's slurm-wlm + munge) started for a test and stopped after it.

Everything but the config lives in one scratch folder: state, spool, logs and pid files. The config must be
/etc/slurm/slurm.conf: the SLURM plugin's job step drops every SLURM_* variable (SLURM_CONF included) before
its inner `srun`, which then only finds the default path. A previous /etc/slurm/slurm.conf is put back
afterwards, unless it is one this harness wrote and left behind (a test run killed before its cleanup). The
daemons are stopped by the pids in their pid files; munged only if this harness started it. Needs root (slurmd
runs jobs as their user) and the binaries: `apt-get install -y slurm-wlm munge` (see .ci/run and shared
notes/local-slurm.md).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PARTITION = "local"
DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
SLURM_CONF = Path("/etc/slurm/slurm.conf")
CLUSTER_NAME = "mmalign-test"


def missing_requirements() -> str | None:
    """Why a local SLURM cannot be started here, or None if it can."""
    absent = [path for path in DAEMONS if not Path(path).exists()]
    if absent:
        return f"not installed: {', '.join(absent)} (apt-get install -y slurm-wlm munge)"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs"
    return None


def slurm_conf(root: Path, host: str, cpus: int, memory_mb: int) -> str:
    return f"""\
ClusterName={CLUSTER_NAME}
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Take the node's CPUs and memory from this file rather than from the hardware, so that a test node can accept
# the requests of a profile sized for a real cluster (nothing here enforces them: no cgroups, no accounting).
SlurmdParameters=config_overrides
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class LocalSlurm:
    """Start munge (if not running), slurmctld and slurmd; `env` is the environment for sbatch/squeue/snakemake."""

    def __init__(self, root: Path, memory_mb: int = 16000, cpus: int | None = None):
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]
        self.memory_mb = memory_mb
        self.cpus = cpus or os.cpu_count() or 1
        self.env = {**os.environ, "SLURM_CONF": str(SLURM_CONF)}
        self._started_munge = False
        self._previous_conf = conf_to_restore(SLURM_CONF)

    def __enter__(self) -> LocalSlurm:
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(slurm_conf(self.root, self.host, self.cpus, self.memory_mb))
        (self.root / "slurm.conf").write_text(SLURM_CONF.read_text())  # a copy next to the logs
        try:
            self._start_munge()
            subprocess.run(["/usr/sbin/slurmctld", "-i"], env=self.env, check=True, capture_output=True)
            subprocess.run(["/usr/sbin/slurmd"], env=self.env, check=True, capture_output=True)
            self._wait_for_idle_node()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start_munge(self) -> None:
        if self._munge_works():
            return
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_SOCKET.parent, "munge", "munge")
        subprocess.run(["su", "munge", "-s", "/bin/sh", "-c", "/usr/sbin/munged"], check=True, capture_output=True)
        self._started_munge = True
        if not self._munge_works():
            raise RuntimeError("munged started but a credential does not round-trip (munge -n | unmunge)")

    @staticmethod
    def _munge_works() -> bool:
        encoded = subprocess.run(["munge", "-n"], capture_output=True)
        if encoded.returncode != 0:
            return False
        return subprocess.run(["unmunge"], input=encoded.stdout, capture_output=True).returncode == 0

    def _wait_for_idle_node(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        state = ""
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True)
            state = out.stdout.strip()
            if state == "idle":
                return
            time.sleep(1)
        raise RuntimeError(f"local SLURM node not idle after {timeout} s (state {state!r}): {self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n{(self.root / name).read_text()[-3000:]}"
            for name in ("slurmctld.log", "slurmd.log")
            if (self.root / name).exists()
        )

    def __exit__(self, *exc) -> None:
        for name in ("slurmd.pid", "slurmctld.pid"):
            _kill_by_pidfile(self.root / name)
        if self._started_munge:
            _kill_by_pidfile(Path("/run/munge/munged.pid"))
        if self._previous_conf is None:
            SLURM_CONF.unlink(missing_ok=True)
        else:
            SLURM_CONF.write_bytes(self._previous_conf)


def conf_to_restore(path: Path) -> bytes | None:
    """The SLURM config to put back after the test: the machine's own, or None where there was none.

    A config this harness wrote is never put back. One is left behind when a test run is killed before its
    cleanup; putting it back at every later run would keep it forever, pointing `scontrol` at a controller that
    is gone. That costs every Snakemake start 9 s: on import, the SLURM executor plugin runs
    `scontrol show config`, which retries the dead controller until it gives up.
    """
    if not path.exists():
        return None
    text = path.read_bytes()
    own = f"ClusterName={CLUSTER_NAME}".encode()
    return None if own in text.splitlines() else text


def _kill_by_pidfile(path: Path, timeout: float = 20) -> None:
    if not path.exists():
        return
    pid = int(path.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
