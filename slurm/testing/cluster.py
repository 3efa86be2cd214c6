"""A real two-node Slurm 22.05 cluster on this host, for tests: start it, stop it by PID.

One slurmctld and two slurmd "nodes" (`slurmd -N n1`, `slurmd -N n2`) on free ports, with every
path under one state directory and `AuthType=auth/none` (no munge daemon). The daemons run as
the current user; tests run it as root, which can launch jobs on both nodes.

    python3 slurm/testing/cluster.py start DIR   # prints `export ...` lines: eval "$(... start DIR)"
    python3 slurm/testing/cluster.py stop DIR

Every process the cluster owns carries `GANFORGE_SLURM_CLUSTER=<state dir>` in its environment:
the daemons get it at start, and jobs inherit it from the client environment (`env()`). `stop`
cancels the jobs, terminates the recorded daemon PIDs, then kills whatever still carries that
marker (slurmstepd, job tasks). A PID is only ever signalled after its marker is checked, so a
recycled PID is never hit. Nothing is ever killed by name.
"""

from __future__ import annotations

import argparse
import getpass
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from string import Template

MARKER = "GANFORGE_SLURM_CLUSTER"
NODES = ("n1", "n2")
BINARIES = ("slurmctld", "slurmd", "sbatch", "srun", "scontrol", "squeue", "scancel", "sinfo")
TEMPLATE = Path(__file__).with_name("slurm.conf.template")
STATE_PREFIX = "ganforge-slurm-"


def missing_binaries() -> list[str]:
    """The Slurm programs this cluster needs that are not on PATH (or in /usr/sbin)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin"
    return [name for name in BINARIES if shutil.which(name, path=path) is None]


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _sbin(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin") or name


def _carries_marker(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, or not ours to read
        return False


def _reap(pids: list[int]) -> None:
    """Collect the exit status of those `pids` that are our exited children (no zombies left)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not yet collected, counts as gone)."""
    _reap([pid])
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class LocalSlurmCluster:
    """The cluster whose configuration, logs, spool and PID list live in `state_dir`."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.conf = self.state_dir / "slurm.conf"
        self.pid_file = self.state_dir / "pids"
        self.marker = f"{MARKER}={self.state_dir}"

    # ------------------------------------------------------------------ environment and clients
    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) plus what a client of this cluster needs.

        MASTER_ADDR is 127.0.0.1 because the node names n1/n2 do not resolve.
        """
        env = dict(os.environ if base is None else base)
        env.update({"SLURM_CONF": str(self.conf), "MASTER_ADDR": "127.0.0.1", MARKER: str(self.state_dir)})
        env["PATH"] = env.get("PATH", "") + os.pathsep + "/usr/sbin"
        return env

    def run(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        """Run a Slurm client command (`squeue`, `scontrol`, ...) against this cluster."""
        return subprocess.run(
            list(args), env=self.env(), capture_output=True, text=True, timeout=timeout, check=check
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of every daemon log, for error messages."""
        parts = []
        for log in sorted((self.state_dir / "log").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"== {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    # ------------------------------------------------------------------ start
    def start(self, owner_pid: int | None = None, timeout: float = 60) -> None:
        """Write slurm.conf, start slurmctld and the slurmd nodes, wait until both nodes are idle.

        `owner_pid` (default: this process) is the process whose exit makes the cluster stale for
        `reap_stale_clusters`.
        """
        missing = missing_binaries()
        if missing:
            raise FileNotFoundError(f"Slurm programs not found: {', '.join(missing)} (run `make install`)")
        for sub in ("ctld", "spool", "run", "log"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        for node in NODES:
            (self.state_dir / "spool" / node).mkdir(exist_ok=True)
        ctld_port, *node_ports = free_ports(1 + len(NODES))
        values = {
            "cluster_name": "gf" + uuid.uuid4().hex[:8],
            "user": getpass.getuser(),
            "hostname": socket.gethostname().split(".")[0],
            "ctld_port": ctld_port,
            "state_dir": self.state_dir,
            "first_job_id": random.randrange(1000, 9000) * 10,
            **{f"{node}_port": port for node, port in zip(NODES, node_ports)},
        }
        self.conf.write_text(Template(TEMPLATE.read_text()).substitute(values))
        (self.state_dir / "owner").write_text(str(owner_pid or os.getpid()))
        self._spawn([_sbin("slurmctld"), "-D", "-c"], "slurmctld")
        for node in NODES:
            self._spawn([_sbin("slurmd"), "-D", "-N", node], f"slurmd-{node}")
        self._wait_idle(timeout)

    def _spawn(self, argv: list[str], name: str) -> None:
        with open(self.state_dir / "log" / f"{name}.stdout", "ab") as out:
            proc = subprocess.Popen(
                argv, env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        with self.pid_file.open("a") as fh:
            fh.write(f"{proc.pid} {name}\n")

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            dead = [name for pid, name in self._daemons() if not _alive(pid)]
            if dead:
                raise RuntimeError(f"Slurm daemon(s) {dead} exited at start-up:\n{self.log_tail()}")
            res = self.run("sinfo", "-h", "-N", "-o", "%N %t", check=False, timeout=10)
            states = dict(line.split() for line in res.stdout.splitlines() if len(line.split()) == 2)
            if all(states.get(node) == "idle" for node in NODES):
                return
            time.sleep(0.5)
        raise TimeoutError(
            f"Slurm nodes not idle after {timeout:.0f} s (states {states}):\n{self.log_tail()}"
        )

    # ------------------------------------------------------------------ stop
    def _daemons(self) -> list[tuple[int, str]]:
        if not self.pid_file.exists():
            return []
        rows = [line.split() for line in self.pid_file.read_text().splitlines() if line.strip()]
        return [(int(pid), name) for pid, name in rows]

    def _marked_pids(self) -> list[int]:
        """Live processes carrying this cluster's marker, except this process and its ancestors."""
        spared, pid = set(), os.getpid()
        while pid > 1:
            spared.add(pid)
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                break
        marker = self.marker.encode()
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
        return [pid for pid in pids if pid not in spared and _carries_marker(pid, marker)]

    def _signal_marked(self, pids: list[int], sig: signal.Signals) -> None:
        marker = self.marker.encode()
        for pid in pids:
            if _carries_marker(pid, marker):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def _wait_gone(self, pids: list[int], timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        marker = self.marker.encode()
        while True:
            _reap(pids)
            left = [pid for pid in pids if _carries_marker(pid, marker)]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)

    def stop(self, timeout: float = 20) -> None:
        """Cancel every job, then end the daemons and any leftover job process. Idempotent."""
        daemons = [pid for pid, _ in self._daemons()]
        if any(_alive(pid) for pid in daemons) and self.conf.exists():
            try:
                self._cancel_jobs(timeout)
            except (subprocess.SubprocessError, OSError):
                pass  # the controller is unhealthy: fall through to signals
        for pids, sig_timeout in ((daemons, timeout / 2), (self._marked_pids(), timeout / 2)):
            self._signal_marked(pids, signal.SIGTERM)
            left = self._wait_gone(pids, sig_timeout)
            self._signal_marked(left, signal.SIGKILL)
            self._wait_gone(left, 5)
        leftover = self._marked_pids()
        self._signal_marked(leftover, signal.SIGKILL)
        if self._wait_gone(leftover, 5):
            raise RuntimeError(f"processes of the Slurm test cluster survived SIGKILL: {leftover}")
        self.pid_file.unlink(missing_ok=True)

    def _cancel_jobs(self, timeout: float) -> None:
        jobs = self.run("squeue", "-h", "-o", "%A", timeout=10).stdout.split()
        if not jobs:
            return
        self.run("scancel", *jobs, timeout=10, check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.run("squeue", "-h", "-o", "%A", timeout=10).stdout.strip():
            time.sleep(0.5)


def reap_stale_clusters(base: str | Path | None = None) -> list[Path]:
    """Stop test clusters under `base` (default: the temp dir) whose owning process is gone."""
    reaped = []
    for state_dir in Path(base or os.environ.get("TMPDIR", "/tmp")).glob(f"{STATE_PREFIX}*"):
        owner = state_dir / "owner"
        if not (state_dir / "pids").exists() or (owner.exists() and _alive(int(owner.read_text() or 0))):
            continue
        LocalSlurmCluster(state_dir).stop()
        reaped.append(state_dir)
    return reaped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cluster.py", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("state_dir", help="directory for slurm.conf, logs, spool and the PID list")
    args = parser.parse_args(argv)
    cluster = LocalSlurmCluster(args.state_dir)
    if args.action == "stop":
        cluster.stop()
        return 0
    try:
        cluster.start(owner_pid=os.getppid())
    except (FileNotFoundError, RuntimeError, TimeoutError) as err:
        cluster.stop()
        print(f"cluster.py: error: {err}", file=sys.stderr)
        return 1
    for key in ("SLURM_CONF", "MASTER_ADDR", MARKER):
        print(f"export {key}={cluster.env()[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
