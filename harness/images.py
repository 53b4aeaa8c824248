"""A baked project's images, one container at a time (tier 3).

Each service's image is built by Compose from the project's own compose file,
as `docker compose build` builds it for users (FROM the stand-ins here), and
its entrypoint runs with `docker run`: the image's own paths and user, a
read-only root as under Compose, on an internal network (an address and
Docker's DNS, as under Compose, and no route out). What a test looks at is
mounted from the host:

- the folder the entrypoint writes to (a tmpfs under Compose) from the
  folder of the Service's `rendered` file, so the test reads what it wrote;
- every file or folder a setting names, at the same path (the secrets'
  files, a backup folder, an SQLite database's folder);
- the Service's `files`, at the image's own paths (tls=own's certificate).
"""

import hashlib
import os
from pathlib import Path

from .template import answers_of

# Images are named by the answers they were baked with: a rerun replaces its
# own tags instead of adding more.
PREFIX = "django-ha-tier3"
# The compose service built from each folder, where the names differ.
COMPOSE_SERVICES = {"django": "app"}
# The docker client says so on every run on this engine, which leaves
# forwarding off by design (harness/engine.py); nothing the image printed.
FORWARDING_WARNING = "WARNING: IPv4 forwarding is disabled. Networking will not work.\n"


class ProjectImages:
    """`network`: the name of an internal network of the engine's."""

    def __init__(self, engine, project, network):
        self.engine = engine
        self.network = network
        self.project = Path(project)
        answers = repr(sorted(answers_of(project).items()))
        self.name = f"{PREFIX}-{hashlib.sha256(answers.encode()).hexdigest()[:12]}"
        self.built = set()

    def image(self, folder):
        """The image built from `folder` (a Service's name), built once."""
        service = COMPOSE_SERVICES.get(folder, folder)
        if service not in self.built:
            override = self.project.parent / f"{self.project.name}.build.yml"
            # The engine has no bridge: builds reach the network through the host's.
            override.write_text(f"services:\n  {service}:\n    build: {{network: host}}\n")
            files = ("--file", "docker-compose.yml", "--file", override)
            build = ("--project-name", self.name, *files, "build", "--quiet", service)
            self.engine.docker("compose", *build, cwd=self.project, timeout=900)
            self.built.add(service)
        return f"{self.name}-{service}"

    def run(self, service, command, env, *, entrypoint=None, user=None):
        """`command` in a fresh container of `service`'s image, with `env` as
        its whole environment beyond the image's; host paths in `command`
        under the rendered file's folder become the image's."""
        # The container's own /tmp, in memory, as Compose gives every service.
        options = ["--rm", "--network", self.network, "--read-only", "--tmpfs", "/tmp"]  # noqa: S108
        if service.rendered is not None:
            written = service.rendered.parent
            # Writable by the image's user, whichever uid it is.
            for folder in [written, *(path for path in written.rglob("*") if path.is_dir())]:
                folder.chmod(0o777)
            options += ["--volume", f"{written}:{service.image_dir}"]
        for value in env.values():
            if value.startswith("/") and os.path.exists(value):
                options += ["--volume", f"{value}:{value}"]
        for inside, path in service.files.items():
            options += ["--volume", f"{path}:{inside}:ro"]
        for name, value in env.items():
            options += ["--env", f"{name}={value}"]
        if entrypoint is not None:
            options += ["--entrypoint", entrypoint]
        if user is not None:
            options += ["--user", user]
        image = self.image(service.name)
        arguments = [service.inside(part) for part in command]
        result = self.engine.docker("run", *options, image, *arguments, check=False, timeout=120)
        result.stderr = result.stderr.removeprefix(FORWARDING_WARNING)
        return result
