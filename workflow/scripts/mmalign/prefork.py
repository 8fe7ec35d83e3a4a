"""Warm interpreters for a study's local jobs: import the ML stack once, fork one child per job.

Why: every job of a Snakemake study is its own Python process, and most of the default study's jobs import torch,
transformers, TRL, PEFT and datasets before they do anything: about 6.8 s a process on our 2-core machines, a fifth
of the study's core time (docs/performance.md). A job's script calls :func:`hand_over` first. It connects to a
*zygote*, an interpreter that has imported those libraries once (and imports no code of ours beyond this module),
which forks a child for the job. The child runs the job's own Snakemake script (the temporary file Snakemake wrote:
its preamble, then the script) in the job's working directory, with its environment, arguments and
stdin / stdout / stderr, in a process group of its own; the job's process waits, forwards SIGINT / SIGTERM / SIGHUP,
and exits with the child's status. A job killed outright (SIGKILL) closes its connection, and the child is killed.

What a child inherits that a fresh process would not have: modules already imported, so import-time state (the
environment a library read when imported, `random`'s unseeded state). Hence one zygote per interpreter and
environment (the key of :func:`zygote_key`: every variable but the shell's bookkeeping), and nothing of ours is
preloaded, so edited study code is always read fresh. Seeded runs are bit-identical either way (tested).

Local runs only: Snakemake's workflow sets ``MMALIGN_PREFORK=1`` for its jobs unless the environment says otherwise;
``MMALIGN_PREFORK=0`` turns it off, and so do a SLURM job (no zygote would live long enough to be reused on a
cluster node) and a machine with an NVIDIA GPU (CUDA in a forked child has not been tried on one). Anything that
goes wrong before the child starts (no Unix sockets, a zygote that cannot start) is logged to the job's stderr and
the job runs in its own process as before. ``multiprocessing``'s forkserver does the same for the children of one
parent only; no maintained library does it for unrelated processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

# What our jobs import before they start work (the lazy submodules included: importing `transformers` alone loads
# almost nothing). Third-party only: a module of ours preloaded here would run stale code after an edit.
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "PIL.Image",
    "tqdm",
    "torch",
    "torch.utils.flop_counter",
    "transformers",
    "transformers.models.llava.modeling_llava",
    "transformers.models.llava.processing_llava",
    "transformers.models.llava_next.modeling_llava_next",
    "transformers.models.llava_next.processing_llava_next",
    "transformers.models.clip.image_processing_pil_clip",
    "transformers.models.llama.modeling_llama",
    "transformers.models.llama.tokenization_llama",
    "accelerate",
    "datasets",
    "peft",
    "trl",
    "trl.trainer.dpo_trainer",
    "trl.trainer.sft_trainer",
    "trl.trainer.reward_trainer",
    "trl.trainer.rloo_trainer",
    "huggingface_hub",
    "openai",
    "sentence_transformers",
    "matplotlib",
    "matplotlib.pyplot",
)
# The shell's bookkeeping, which differs between jobs without changing what a library reads at import.
_VOLATILE = frozenset({"OLDPWD", "PWD", "SHLVL", "_"})
_CHILD_FLAG = "MMALIGN_PREFORK_CHILD"
_START_TIMEOUT_S = 300.0  # the zygote's imports take ~7 s on an idle core, far longer on a loaded one
_IDLE_EXIT_S = 120.0  # MMALIGN_PREFORK_IDLE_S overrides it (the tests use a few seconds)
_INT = struct.Struct("q")
_END = struct.Struct("qdd")  # the job's exit status, CPU seconds, peak RSS in MiB
USAGE_LINE = "mmalign.prefork: the job ran as pid"  # how a job's log says it ran in a warm child


def enabled(environ=os.environ) -> bool:
    """Whether this job hands itself to a zygote (see the module docstring for when it does not)."""
    if environ.get("MMALIGN_PREFORK", "0").lower() not in ("1", "true", "yes"):
        return False
    if environ.get(_CHILD_FLAG) == "1" or "SLURM_JOB_ID" in environ:
        return False
    if Path("/dev/nvidiactl").exists():  # a child's CUDA after a fork is untested here: GPU hosts import per job
        return False
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


def zygote_key(environ=os.environ) -> str:
    """One zygote per interpreter, environment, preload list and version of this module."""
    kept = {k: v for k, v in environ.items() if k not in _VOLATILE and k != _CHILD_FLAG}
    this_module = Path(__file__).read_bytes()
    blob = json.dumps([sys.executable, sys.version, sorted(kept.items()), PRELOAD], sort_keys=True).encode()
    return hashlib.sha256(blob + this_module).hexdigest()[:20]


def runtime_dir() -> Path:
    """Where the zygotes' sockets, locks and logs live: private to this user (Unix socket paths must stay short)."""
    path = Path(tempfile.gettempdir()) / f"mmalign-prefork-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_uid != os.getuid() or path.stat().st_mode & 0o077:  # another user's: never fork from it
        raise PermissionError(f"{path} is not private to this user")
    return path


# --- the job's side -------------------------------------------------------------------------------------------


def hand_over(script_globals: dict) -> None:
    """Run this Snakemake script in a warm child and exit with its status; return to run it here instead.

    Call it first in a script (``hand_over(globals())``). It returns at once inside the child, outside Snakemake
    (no ``__real_file__``: the temporary script Snakemake wrote), and where :func:`enabled` says no."""
    script = script_globals.get("__real_file__")
    if not script or not enabled():
        return
    try:
        connection, job_pid = _start_job(Path(script))
    except OSError as error:
        print(f"mmalign.prefork: no warm interpreter ({error}); this job imports its libraries itself", file=sys.stderr)
        return
    sys.exit(_wait_for_job(connection, job_pid, script_globals.get("snakemake")))


def _start_job(script: Path) -> tuple[socket.socket, int]:
    """Connect to this environment's zygote (starting it if none listens) and have it fork the job; retried once,
    for a zygote that closed between our connect and its accept (it exits when idle)."""
    request = json.dumps(
        {"script": str(script.resolve()), "cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv}
    ).encode()
    for attempt in range(2):
        connection = _connect_or_start(zygote_key())
        try:
            connection.settimeout(_START_TIMEOUT_S)  # a zygote that never forks must not hang the job
            socket.send_fds(connection, [_INT.pack(len(request)) + request], [0, 1, 2])
            job_pid = _recv_int(connection)
            connection.settimeout(None)  # the job itself may run for hours
            return connection, job_pid
        except OSError:
            connection.close()
            if attempt:
                raise
    raise AssertionError("unreachable")


def _connect_or_start(key: str) -> socket.socket:
    import fcntl

    directory = runtime_dir()
    path = directory / f"{key}.sock"
    with open(directory / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter per key; a zygote removes its socket under the same lock
        with contextlib.suppress(OSError):
            return _connect(path)
        log = open(directory / f"{key}.log", "a")  # noqa: SIM115 (the zygote's stdout and stderr)
        zygote = subprocess.Popen(
            [sys.executable, "-m", "mmalign.prefork", str(path)],
            env={**os.environ, "PYTHONPATH": pythonpath_with_library()},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if zygote.poll() is not None:
                raise OSError(f"the zygote exited with status {zygote.returncode}; its log: {directory / key}.log")
            with contextlib.suppress(OSError):
                return _connect(path)
            time.sleep(0.05)
        raise OSError(f"the zygote did not listen within {_START_TIMEOUT_S:.0f} s")


def _connect(path: Path) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except OSError:
        connection.close()
        raise
    return connection


def pythonpath_with_library(environ=os.environ) -> str:
    """``PYTHONPATH`` for a process that imports ``mmalign`` by name (a zygote, an accelerate rank): the folder
    holding the package first."""
    return os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent), environ.get("PYTHONPATH")]))


def _wait_for_job(connection: socket.socket, job_pid: int, job=None) -> int:
    """Forward the signals a job gets (Snakemake's cancel, Ctrl-C) to the child's process group; return its status.

    The job's CPU time and peak memory go to the end of its log: Snakemake's ``benchmark:`` file measures the
    processes under the job's own, which is this waiting one."""

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job_pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        code, cpu_s, max_rss_mib = _END.unpack(_recv_exactly(connection, _END.size))
    except OSError as error:
        print(f"mmalign.prefork: lost the job's supervisor ({error})", file=sys.stderr)
        return 1
    logs = list(getattr(job, "log", None) or [])
    if logs:
        with contextlib.suppress(OSError), open(logs[0], "a") as log:
            print(
                f"{USAGE_LINE} {job_pid} of a warm interpreter: {cpu_s:.1f} s CPU, "
                f"peak RSS {max_rss_mib:.0f} MiB (the benchmark file's CPU and memory columns count only the "
                "process that waited for it)",
                file=log,
            )
    return code


def _recv_int(connection: socket.socket) -> int:
    return _INT.unpack(_recv_exactly(connection, _INT.size))[0]


def _recv_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


# --- the zygote's side ----------------------------------------------------------------------------------------


def serve(path: Path, idle_exit_s: float = _IDLE_EXIT_S) -> None:
    """Import :data:`PRELOAD`, listen on ``path``, fork a supervisor per connection; exit after ``idle_exit_s``
    without one. Single-threaded, so forking is safe."""
    import fcntl

    for module in PRELOAD:
        try:
            importlib.import_module(module)
        except Exception as error:  # a library missing from this env: its jobs import what they have
            print(f"preload {module}: {type(error).__name__}: {error}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = path.with_name(f"{path.stem}.{os.getpid()}.sock")
    listener.bind(str(staging))
    listener.listen(64)
    os.replace(staging, path)  # clients connect only once the imports are done
    bound = os.stat(path).st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    listener.settimeout(idle_exit_s)
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            with open(path.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                listener.close()
                with contextlib.suppress(OSError):
                    if os.stat(path).st_ino == bound:
                        os.unlink(path)
            return
        if os.fork() == 0:
            listener.close()
            _supervise(connection)  # never returns
        connection.close()


def _supervise(connection: socket.socket) -> None:
    """Fork the job, tell the client its pid, wait for it (killing it if the client goes away), send its status."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        connection.settimeout(None)
        size_message, fds, _, _ = socket.recv_fds(connection, _INT.size, 3)
        size_message += _recv_exactly(connection, _INT.size - len(size_message))
        request = json.loads(_recv_exactly(connection, _INT.unpack(size_message)[0]))
        job = os.fork()
        if job == 0:
            connection.close()
            _run_job(request, fds)  # never returns
        for fd in fds:
            os.close(fd)
        connection.sendall(_INT.pack(job))
        status, usage = _wait_watching(job, connection)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code  # killed by a signal: the shell's convention
        cpu_s = usage.ru_utime + usage.ru_stime
        with contextlib.suppress(OSError):
            connection.sendall(_END.pack(code, cpu_s, usage.ru_maxrss / 1024))  # ru_maxrss: KiB on Linux
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _wait_watching(job: int, connection: socket.socket):
    """The job's wait status and resource usage; the job is killed if the connection closes first."""
    while True:
        pid, status, usage = os.wait4(job, os.WNOHANG)
        if pid:
            return status, usage
        readable, _, _ = select.select([connection], [], [], 0.5)
        if readable and not connection.recv(1):  # the job's process is gone: nobody waits for this child
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job, signal.SIGKILL)
            return os.wait4(job, 0)[1:]


def _run_job(request: dict, fds: list[int]) -> None:
    """Become the job's process: its own session, its stdio, directory, environment and arguments; run its script
    as ``python script`` would, atexit handlers included, and exit with its status."""
    code = 1
    try:
        os.setsid()
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[_CHILD_FLAG] = "1"
        sys.argv = list(request["argv"])
        sys.path[0] = str(Path(request["script"]).parent)  # as `python script` sets it (the zygote's was its cwd)
        code = _run_script(request["script"])
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            import atexit
            import threading

            if hasattr(threading, "_shutdown"):
                threading._shutdown()  # wait for non-daemon threads, as interpreter exit does
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _run_script(script: str) -> int:
    import runpy

    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as end:
        if end.code is None:
            return 0
        if isinstance(end.code, int):
            return end.code
        print(end.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    serve(Path(sys.argv[1]), float(os.environ.get("MMALIGN_PREFORK_IDLE_S", _IDLE_EXIT_S)))
