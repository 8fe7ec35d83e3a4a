"""Warm interpreters (mmalign/prefork.py): a job handed to a zygote runs as its own process would, with its
directory, environment, streams and exit status; signals reach it, and a job whose process dies is killed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "workflow" / "scripts"

# The script of a "job": Snakemake's preamble sets __real_file__ to the file it runs; this one sets it itself.
JOB = textwrap.dedent(
    """
    __real_file__ = __file__
    snakemake = type("Job", (), {"log": ["job.log"]})()  # what hand_over reads of Snakemake's object
    from mmalign.prefork import hand_over
    hand_over(globals())
    import os, sys, time
    mode = os.environ["JOB_MODE"]
    print("out", os.environ.get("MMALIGN_PREFORK_CHILD", "0"), os.getcwd(), sys.path[0], flush=True)
    print("err", sys.argv[1:], file=sys.stderr, flush=True)
    open("pid", "w").write(str(os.getpid()))
    if mode == "raise":
        raise ValueError("boom")
    if mode == "exit3":
        sys.exit(3)
    if mode == "sleep":
        time.sleep(60)
    """
)


@pytest.fixture
def runtime(tmp_path):
    """A private temp dir for the zygotes (short: a Unix socket path holds 107 bytes), torn down with them."""
    short = Path(tempfile.mkdtemp(prefix="pf", dir="/tmp"))
    env = {
        **os.environ,
        "TMPDIR": str(short),
        "MMALIGN_PREFORK": "1",
        "MMALIGN_PREFORK_IDLE_S": "20",
        "PYTHONPATH": str(LIBRARY),
    }
    env.pop("MMALIGN_PREFORK_CHILD", None)
    (tmp_path / "job.py").write_text(JOB)
    yield env
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):  # stop every zygote this test started
        try:
            if str(short).encode() in cmdline.read_bytes():
                os.kill(int(cmdline.parent.name), signal.SIGTERM)
        except OSError:
            pass
    subprocess.run(["rm", "-rf", str(short)], check=False)


def run_job(tmp_path, env, mode, *args):
    return subprocess.run(
        [sys.executable, str(tmp_path / "job.py"), *args],
        cwd=tmp_path,
        env={**env, "JOB_MODE": mode},
        capture_output=True,
        text=True,
        timeout=300,
    )


def pid_of(tmp_path) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = (tmp_path / "pid").read_text() if (tmp_path / "pid").exists() else ""
        if text:
            return int(text)
        time.sleep(0.05)
    raise AssertionError("the job never started")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_a_handed_over_job_runs_in_a_child_with_its_directory_arguments_and_streams(tmp_path, runtime):
    first = run_job(tmp_path, runtime, "ok", "a", "b")
    assert first.returncode == 0, first.stderr
    flag, cwd, path0 = first.stdout.split()[1:]
    assert (flag, cwd, path0) == ("1", str(tmp_path), str(tmp_path))  # as `python job.py` sets sys.path[0]
    assert "err ['a', 'b']" in first.stderr
    assert int((tmp_path / "pid").read_text()) != os.getpid()
    usage = (tmp_path / "job.log").read_text()  # the benchmark file counts only the waiting process
    assert re.search(r"ran as pid \d+ of a warm interpreter: [\d.]+ s CPU, peak RSS [1-9]\d* MiB", usage), usage
    sockets = list(Path(runtime["TMPDIR"]).glob("mmalign-prefork-*/*.sock"))
    assert len(sockets) == 1  # the zygote listens for the next job
    second = run_job(tmp_path, runtime, "ok")  # the same zygote, no new imports
    assert second.returncode == 0 and second.stdout.split()[1] == "1"
    assert list(Path(runtime["TMPDIR"]).glob("mmalign-prefork-*/*.sock")) == sockets


def test_a_failing_job_fails_with_its_status_and_traceback(tmp_path, runtime):
    raised = run_job(tmp_path, runtime, "raise")
    assert raised.returncode == 1 and "ValueError: boom" in raised.stderr
    assert run_job(tmp_path, runtime, "exit3").returncode == 3


def test_without_prefork_the_job_runs_in_its_own_process(tmp_path, runtime):
    out = run_job(tmp_path, {**runtime, "MMALIGN_PREFORK": "0"}, "ok")
    assert out.returncode == 0 and out.stdout.split()[1] == "0"
    assert not list(Path(runtime["TMPDIR"]).glob("mmalign-prefork-*/*.sock"))


def test_another_environment_gets_another_zygote(tmp_path, runtime):
    assert run_job(tmp_path, runtime, "ok").returncode == 0
    assert run_job(tmp_path, {**runtime, "HF_HOME": str(tmp_path)}, "ok").returncode == 0
    assert len(list(Path(runtime["TMPDIR"]).glob("mmalign-prefork-*/*.sock"))) == 2


def test_sigterm_reaches_the_job_and_a_killed_client_takes_its_job_along(tmp_path, runtime):
    client = subprocess.Popen(
        [sys.executable, str(tmp_path / "job.py")], cwd=tmp_path, env={**runtime, "JOB_MODE": "sleep"}
    )
    job = pid_of(tmp_path)
    assert job != client.pid and alive(job)
    client.send_signal(signal.SIGTERM)  # what Snakemake sends a job it cancels
    assert client.wait(timeout=30) == 128 + signal.SIGTERM
    assert not alive(job)

    (tmp_path / "pid").unlink()
    client = subprocess.Popen(
        [sys.executable, str(tmp_path / "job.py")], cwd=tmp_path, env={**runtime, "JOB_MODE": "sleep"}
    )
    job = pid_of(tmp_path)
    client.kill()  # SIGKILL: nothing forwarded; the supervisor sees the connection close
    client.wait(timeout=30)
    deadline = time.monotonic() + 10
    while alive(job) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(job)


def test_slurm_jobs_children_and_opted_out_runs_import_for_themselves():
    from mmalign.prefork import enabled

    on = {"MMALIGN_PREFORK": "1"}
    assert enabled(on) == (not Path("/dev/nvidiactl").exists())  # GPU hosts import per job
    assert not enabled({})  # outside the workflow (which sets it) nothing is handed over
    assert not enabled({**on, "MMALIGN_PREFORK": "0"})
    assert not enabled({**on, "SLURM_JOB_ID": "42"})  # a cluster node: nothing would reuse a zygote
    assert not enabled({**on, "MMALIGN_PREFORK_CHILD": "1"})  # already inside a child


def test_a_runtime_folder_others_can_reach_is_not_used_and_the_job_runs_here(tmp_path, runtime):
    folder = Path(runtime["TMPDIR"]) / f"mmalign-prefork-{os.getuid()}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)  # whoever can write here could hand our jobs to their own zygote
    out = run_job(tmp_path, runtime, "ok")
    assert out.returncode == 0 and out.stdout.split()[1] == "0"
    assert "not private to this user" in out.stderr
