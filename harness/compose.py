"""A baked project brought up by Compose on the private engine.

The baked docker-compose.yml is used exactly as written, with the baked
checks/compose.yml on top, as its README says to run the checks: HAProxy
believes the PROXY protocol header of the edge network's gateway, where
every connection from this machine comes from, so the checks play clients
with addresses of their own. Only its network's addresses change, to a
network no other stack on the engine has. One override file beside the
project (never inside it) holds only what this machine needs: builds reach
the network through the host (the engine has no bridge), and every published
port moves to a free port (or ports in a row, for a scaled service) on 127.0.0.1 below 32768
(the project's own 80, 8000-8003 and 8888 may be taken, and tests talk to
loopback only).
"""

import ipaddress
import json
import sys
import time

import yaml

from .commands import run
from .processes import free_port

# Where each stack's edge network gets a /24 of its own.
EDGE_NETWORKS = ipaddress.ip_network("10.213.0.0/16")


def range_of(published):
    """Compose's published ports, "8000" or "8000-8001", as a range."""
    first, _, last = str(published).partition("-")
    return range(int(first), int(last or first) + 1)


def host_ports(first, count):
    return f"{first}-{first + count - 1}" if count > 1 else str(first)


class ComposeProject:
    """`extra`: YAML a test adds on top (a test CA beside the stack, say);
    `monitoring`: with the monitoring profile (Prometheus, Alertmanager)."""

    def __init__(self, engine, project, extra=None, monitoring=False):
        self.engine = engine
        self.project = project
        self.profiles = "monitoring" if monitoring else ""
        self.checks = project.parent / f"{project.name}.checks.yml"
        self.override = project.parent / f"{project.name}.override.yml"
        self.extra = project.parent / f"{project.name}.test.yml" if extra else None
        self.timings = {}
        # Every profile's services, so that each one's ports move too.
        every = self.compose("--profile", "*", "config", "--format", "json", file_only=True)
        model = json.loads(every.stdout)
        self.name = model["name"]
        self.checks.write_text(self.checks_text(project, self.free_edge_network()))
        self.override.write_text(self.override_text(model["services"]))
        if extra:
            self.extra.write_text(extra)

    # The edge networks this process chose: two stacks made before either
    # starts (and creates its network) must not choose the same.
    chosen = set()

    def free_edge_network(self):
        """A /24 that no network on the engine uses (stacks may run side by side)."""
        networks = self.engine.docker("network", "ls", "--quiet").stdout.split()
        found = self.engine.docker("network", "inspect", *networks).stdout
        used = {
            config.get("Subnet")
            for network in json.loads(found)
            for config in (network["IPAM"]["Config"] or [])
        }
        taken = used | ComposeProject.chosen
        free = next(net for net in EDGE_NETWORKS.subnets(new_prefix=24) if str(net) not in taken)
        ComposeProject.chosen.add(str(free))
        return free

    @staticmethod
    def checks_text(project, network):
        """The project's checks/compose.yml, on `network` instead of its own."""
        text = (project / "checks/compose.yml").read_text()
        (config,) = yaml.safe_load(text)["networks"]["edge"]["ipam"]["config"]
        return text.replace(config["gateway"], str(network[1])).replace(
            config["subnet"], str(network)
        )

    @staticmethod
    def override_text(services):
        lines = [
            "# This machine only: builds through the host's network, ports on loopback,",
            "# and no DNS server beyond Docker's own. None would answer here, so a",
            "# name Docker does not know (a stopped service's) would take 16 s to",
            "# fail where a host's DNS refuses it at once.",
            "services:",
        ]
        for name, service in services.items():
            lines += [f"  {name}:", "    dns: [127.0.0.1]"]
            if "build" in service:
                lines.append("    build: {network: host}")
            # A scaled service publishes a range, one host port per instance.
            ranges = {
                port["target"]: len(range_of(port["published"]))
                for port in service.get("ports", [])
            }
            published = {target: free_port(count=count) for target, count in ranges.items()}
            if published:
                lines.append("    ports: !override")
                lines += [
                    f'      - "127.0.0.1:{host_ports(host, ranges[target])}:{target}"'
                    for target, host in published.items()
                ]
            https = service.get("environment", {}).get("HAPROXY_HTTPS_PORT")
            if https:
                # HAProxy's redirects name the HTTPS port that clients reach.
                port = published[int(https)]
                lines += ["    environment:", f'      HAPROXY_PUBLIC_HTTPS_PORT: "{port}"']
        return "\n".join(lines) + "\n"

    @property
    def files(self):
        """COMPOSE_FILE: the project's own file, its checks', the override, a test's extra."""
        files = ("docker-compose.yml", self.checks, self.override, self.extra)
        return ":".join(str(file) for file in files if file)

    def env(self, file_only=False):
        """What points Compose at this stack, and at its profiles."""
        files = "docker-compose.yml" if file_only else self.files
        return {"COMPOSE_FILE": files, "COMPOSE_PROFILES": self.profiles}

    def compose(self, *args, file_only=False, check=True, timeout=900):
        return self.engine.docker(
            "compose", *args, cwd=self.project, check=check, timeout=timeout, **self.env(file_only)
        )

    def timed(self, what, *args):
        started = time.monotonic()
        result = self.compose(*args, check=False)
        self.timings[what] = time.monotonic() - started
        if result.returncode != 0:
            logs = self.compose("logs", "--no-color", "--tail", "40", check=False).stdout
            raise AssertionError(f"compose {' '.join(args)} failed:\n{result.stderr}\n{logs}")
        return result

    def up(self):
        """Build every image, then start the stack and wait until it is healthy."""
        self.timed("build", "build")
        self.timed("up --wait", "up", "--detach", "--wait", "--wait-timeout", "300")
        return self

    def down(self, *options):
        return self.timed(f"down {' '.join(options)}".strip(), "down", *options)

    def __enter__(self):
        """Up, as up(); down again if that fails, as on the way out."""
        try:
            return self.up()
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc_info):
        """Down, with the stack's volumes and anything left of it."""
        self.down("--volumes", "--remove-orphans")

    def left_behind(self):
        """Containers, volumes and networks of this project that still exist."""
        label = f"label=com.docker.compose.project={self.name}"
        found = {
            kind: self.engine.docker(
                kind, "ls", "--quiet", "--filter", label, *every
            ).stdout.split()
            for kind, every in (("container", ["--all"]), ("volume", []), ("network", []))
        }
        return {kind: names for kind, names in found.items() if names}

    def run(self, *command):
        """Run a command of the baked project (its checks, its deploy script)
        in its folder, against this stack, as a user would."""
        return run(
            command,
            cwd=self.project,
            env=self.engine.env(**self.env()),
            check=False,
            timeout=900,
        )

    def check_stack(self, *options):
        """Run the baked project's own checks/check_stack.py against this stack."""
        return self.run(sys.executable, "checks/check_stack.py", "--yes", *options)
