"""A throw-away one-node SLURM cluster on this machine, for the dask-jobqueue test.

:func:`one_node_slurm` writes a ``slurm.conf`` for a single node with 2 CPUs into a fresh
folder, starts ``munged``, ``slurmctld`` and ``slurmd`` (Debian's ``munge`` and ``slurm-wlm``
packages) as child processes with everything -- key, sockets, spool, state, logs -- inside
that folder, waits until ``sinfo`` reports the node idle, and stops the three daemons at the
end. ``SLURM_CONF`` points the client commands (``sbatch``, ``squeue``, ``scancel``, which
dask-jobqueue calls) at this configuration while the cluster is up.

Containers rarely have a usable cgroup hierarchy, so the node tracks processes by their
parent (``proctrack/linuxproc``) and binds nothing (``task/none``); there is no accounting
database and no memory enforcement. The daemons run as root, which ``slurmd`` needs to start
jobs as their user.

When SLURM is not installed, we are not root, or the node does not come up, the context
manager raises :class:`SlurmUnavailable` with the reason (and the daemons' last log lines),
which the test turns into a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENT_COMMANDS = ("sinfo", "sbatch", "squeue", "scancel")
PARTITION = "amortflow"
NODE_CPUS = 2
#: Memory the node advertises (MB). Jobs ask dask-jobqueue's ``--mem`` of at most this; with
#: ``CR_Core`` scheduling memory is checked against it but never enforced.
NODE_MEMORY_MB = 2048
STARTUP_TIMEOUT_S = 30.0


class SlurmUnavailable(RuntimeError):
    """SLURM cannot run here; the message says why."""


def missing_requirements() -> str | None:
    """Why a SLURM cluster cannot be started here, or None if it can be tried."""
    missing = [name for name in DAEMONS + CLIENT_COMMANDS if shutil.which(name) is None]
    if missing:
        return f"SLURM is not installed (no {', '.join(missing)}); install Debian's slurm-wlm and munge (`.ci/run` does)"
    if os.geteuid() != 0:
        return "starting slurmd needs root (it launches jobs as their user)"
    return None


@contextlib.contextmanager
def one_node_slurm() -> Iterator[str]:
    """Run a one-node SLURM cluster; yields the partition name. Raises SlurmUnavailable."""
    reason = missing_requirements()
    if reason:
        raise SlurmUnavailable(reason)
    # A short path of its own: unix socket paths are limited to 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="af-slurm-"))
    processes: list[subprocess.Popen] = []
    previous_conf = os.environ.get("SLURM_CONF")
    try:
        conf = _write_config(folder)
        os.environ["SLURM_CONF"] = str(conf)
        processes.append(_start_munged(folder))
        processes.append(_spawn(folder, "slurmctld", ["slurmctld", "-D", "-f", str(conf)]))
        processes.append(_spawn(folder, "slurmd", ["slurmd", "-D", "-f", str(conf)]))
        _wait_until_idle(folder, processes)
        yield PARTITION
    finally:
        for process in reversed(processes):  # slurmd, slurmctld, then munged (the others need it to shut down)
            _stop(process)
        if previous_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous_conf
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_config(folder: Path) -> Path:
    for name in ("state", "spool", "log"):
        (folder / name).mkdir()
    host = socket.gethostname().split(".")[0]
    lines = {
        "ClusterName": "amortflowtest",
        "SlurmctldHost": f"{host}(127.0.0.1)",
        # Free ports, so that this cluster never meets another one (a CI run, a system SLURM).
        "SlurmctldPort": _free_port(),
        "SlurmdPort": _free_port(),
        "SlurmUser": "root",
        "SlurmdUser": "root",
        "AuthType": "auth/munge",
        "CredType": "cred/munge",
        "AuthInfo": f"socket={folder / 'munge.socket'}",
        "ProctrackType": "proctrack/linuxproc",
        "TaskPlugin": "task/none",
        "JobAcctGatherType": "jobacct_gather/none",
        "AccountingStorageType": "accounting_storage/none",
        "JobCompType": "jobcomp/none",
        "SchedulerType": "sched/backfill",
        "SelectType": "select/cons_tres",
        "SelectTypeParameters": "CR_Core",
        "MpiDefault": "none",
        "MailProg": "/bin/true",
        "ReturnToService": 2,
        "StateSaveLocation": folder / "state",
        "SlurmdSpoolDir": folder / "spool",
        "SlurmctldPidFile": folder / "slurmctld.pid",
        "SlurmdPidFile": folder / "slurmd.pid",
        "SlurmctldLogFile": folder / "log" / "slurmctld.log",
        "SlurmdLogFile": folder / "log" / "slurmd.log",
    }
    text = "".join(f"{key}={value}\n" for key, value in lines.items())
    text += (f"NodeName={host} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} Sockets=1 CoresPerSocket={NODE_CPUS} "
             f"ThreadsPerCore=1 RealMemory={NODE_MEMORY_MB} State=UNKNOWN\n"
             f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n")  # fmt: skip
    conf = folder / "slurm.conf"
    conf.write_text(text)
    (folder / "cgroup.conf").write_text(_cgroup_config())
    return conf


def _cgroup_config() -> str:
    """No cgroups where Slurm allows it (23.02 and later); before, the one that slurmd can always load.

    slurmd 22.05 (Debian bookworm) loads a cgroup plugin even when no cgroup-based plugin is
    configured; ``autodetect`` picks v1 or v2, and ``IgnoreSystemd`` keeps v2 from asking a
    systemd that containers do not run. Nothing is constrained either way (``task/none``).
    """
    version = subprocess.run(["slurmd", "-V"], capture_output=True, text=True).stdout.split()[-1:]  # "slurm 22.05.8"
    major_minor = tuple(int(part) for part in version[0].split(".")[:2]) if version else (0, 0)
    if major_minor >= (23, 2):
        return "CgroupPlugin=disabled\n"
    return "CgroupPlugin=autodetect\nIgnoreSystemd=yes\n"


def _start_munged(folder: Path) -> subprocess.Popen:
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)  # munged refuses a key that others could read
    folder.chmod(0o711)  # ... and a socket in a folder others cannot enter
    command = ["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={folder / 'munge.socket'}",
               f"--pid-file={folder / 'munged.pid'}", f"--seed-file={folder / 'munged.seed'}",
               f"--log-file={folder / 'log' / 'munged.log'}"]  # fmt: skip
    return _spawn(folder, "munged", command)


def _spawn(folder: Path, name: str, command: list[str]) -> subprocess.Popen:
    with open(folder / "log" / f"{name}.out", "wb") as out:  # the daemon writes to its own copy of the descriptor
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait_until_idle(folder: Path, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    state = ""
    while time.monotonic() < deadline:
        dead = [process.args[0] for process in processes if process.poll() is not None]
        if dead:
            raise SlurmUnavailable(f"{', '.join(dead)} exited at start-up.\n{_log_tails(folder)}")
        result = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=10)
        state = result.stdout.strip() or result.stderr.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    raise SlurmUnavailable(f"the node did not become idle within {STARTUP_TIMEOUT_S:.0f} s (sinfo: {state!r}).\n{_log_tails(folder)}")


def _log_tails(folder: Path, lines: int = 8) -> str:
    tails = []
    for path in sorted((folder / "log").glob("*")):
        text = path.read_text(errors="replace").splitlines()[-lines:]
        tails.append(f"--- {path.name}\n" + "\n".join(text))
    return "\n".join(tails)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
