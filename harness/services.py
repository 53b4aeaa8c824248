"""Each baked service with test values: one registry, one signature.

`SERVICES[name](layout)` gives a Service for every service of a baked
project: the settings its own entrypoint.sh gets (the guide's variables with
test values), the file it renders, and a command that shows the server's
version. Tier 3 runs it in its image (harness/images.py).
"""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .template import answers_of

# Every server's LOG_FORMAT: the entrypoints' default (tests change it).
LOG_FORMAT = "text"


@dataclass
class Layout:
    """Where a baked project's services run: one folder for what they read
    and write, and their ports.

    ports: the listening port of "haproxy", "stats", "haproxy-metrics", each
    proxy and its "<proxy>-status", "app" and "app-metrics".
    """

    project: Path
    workdir: Path
    ports: dict
    domain: str = "localhost"
    replica_hosts: list = field(default_factory=lambda: ["127.0.0.1"])
    # tls=own: the certificate and key the user would put in tls/.
    own_certificate: tuple | None = None

    def secret_file(self, name):
        """The file the bake wrote the secret `name` to (secrets/<name>)."""
        return self.project / "secrets" / name

    @property
    def tls(self):
        return answers_of(self.project)["tls"]

    @property
    def certificate(self):
        """HAProxy's certificate file (with its key), where its entrypoint puts it."""
        folder = "haproxy" if self.tls == "own" else "haproxy/tls"
        return self.workdir / folder / "site.pem"

    @property
    def compose_app_environment(self):
        return compose_app_environment(self.project)

    @property
    def static_root(self):
        return self.workdir / "static"


def compose_file(project):
    return yaml.safe_load((project / "docker-compose.yml").read_text())


def compose_app_environment(project):
    """The DJANGO_* switches the compose file gives the app (HTTPS ones, with TLS)."""
    environment = compose_file(project)["x-django"]["environment"]
    own = {"DJANGO_SECRET_KEY_FILE", "DJANGO_SETTINGS_MODULE"}
    return {k: v for k, v in environment.items() if k.startswith("DJANGO_") and k not in own}


@dataclass
class Service:
    name: str
    workdir: Path
    entrypoint: Path
    required: dict  # the variables the entrypoint must refuse to start without
    settings: dict  # the user's settings it gets, with test values
    rendered: Path | None  # the config file the entrypoint writes, if any
    check: list | None  # the server's own checker, run on that file
    version: list  # a command that starts the server binary and exits at once
    # In the image: the folder `rendered` is written to, and files the
    # service reads at fixed paths there ({path in the image: host file}).
    image_dir: str | None = None
    files: dict = field(default_factory=dict)
    # The project's images (harness/images.py), when it runs in its image.
    images: object = None

    def env(self, without=(), empty=()):
        """The entrypoint's environment beyond the image's: the user's
        settings, `without` some, with those in `empty` set to ""."""
        env = self.settings | self.required
        for name in without:
            env.pop(name)
        env |= dict.fromkeys(empty, "")
        return env

    def inside(self, path):
        """`path` as the image sees it: under image_dir if it is under the
        rendered file's folder, as it is otherwise."""
        if self.rendered is not None and str(path).startswith(f"{self.rendered.parent}/"):
            return f"{self.image_dir}/{Path(path).relative_to(self.rendered.parent)}"
        return path


def rendered_path(layout, name, filename):
    folder = layout.workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder / filename


def backends(layout):
    return {
        "BACKEND_HOST": " ".join(layout.replica_hosts),
        "BACKEND_PORT": str(layout.ports["app"]),
    }


def nginx(layout):
    conf = rendered_path(layout, "nginx", "nginx.conf")
    return Service(
        name="nginx",
        workdir=layout.workdir,
        entrypoint=layout.project / "nginx/entrypoint.sh",
        required={
            "NGINX_PORT": str(layout.ports["nginx"]),
            "NGINX_STATUS_PORT": str(layout.ports["nginx-status"]),
            **backends(layout),
        },
        settings={"LOG_FORMAT": LOG_FORMAT, "STATIC_ROOT": str(layout.static_root)},
        rendered=conf,
        check=["nginx", "-t", "-q", "-e", "stderr", "-c", str(conf)],
        version=["nginx", "-v"],
        image_dir="/var/cache/nginx",
    )


def apache(layout):
    conf = rendered_path(layout, "apache", "httpd.conf")
    return Service(
        name="apache",
        workdir=layout.workdir,
        entrypoint=layout.project / "apache/entrypoint.sh",
        required={
            "APACHE_PORT": str(layout.ports["apache"]),
            "APACHE_STATUS_PORT": str(layout.ports["apache-status"]),
            **backends(layout),
            "DOMAIN_NAME": layout.domain,
        },
        settings={"LOG_FORMAT": LOG_FORMAT, "STATIC_ROOT": str(layout.static_root)},
        rendered=conf,
        check=["httpd", "-t", "-f", str(conf)],
        version=["httpd", "-v"],
        image_dir="/usr/local/apache2/logs",
    )


def haproxy(layout):
    conf = rendered_path(layout, "haproxy", "haproxy.cfg")
    layout.certificate.parent.mkdir(parents=True, exist_ok=True)
    required = {
        "HAPROXY_PORT": str(layout.ports["haproxy"]),
        "HAPROXY_STATS_PORT": str(layout.ports["stats"]),
        "HAPROXY_METRICS_PORT": str(layout.ports["haproxy-metrics"]),
        "HAPROXY_STATS_USER": "admin",
        "HAPROXY_STATS_PASSWORD_FILE": str(layout.secret_file("HAPROXY_STATS_PASSWORD")),
        "DOMAIN_NAME": layout.domain,
    }
    for proxy in ("nginx", "apache"):
        if (layout.project / proxy).is_dir():
            prefix = proxy.upper()
            required |= {f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(layout.ports[proxy])}
    settings = {
        "LOG_FORMAT": LOG_FORMAT,
        # Nothing answers here; servers given as addresses are never resolved.
        "HAPROXY_DNS": "127.0.0.1:1",
    }
    files = {}
    if layout.tls != "none":
        required["HAPROXY_HTTPS_PORT"] = str(layout.ports["https"])
        settings["HAPROXY_PUBLIC_HTTPS_PORT"] = str(layout.ports["https"])
    if layout.tls == "own":
        certificate, key = layout.own_certificate
        # Where Compose mounts them (its secrets from tls/).
        files = {"/run/secrets/tls_certificate": certificate, "/run/secrets/tls_key": key}
    if layout.tls == "acme":
        required |= {"ACME_HOST": "127.0.0.1", "ACME_PORT": str(layout.ports["acme"])}
    return Service(
        name="haproxy",
        workdir=layout.workdir,
        entrypoint=layout.project / "haproxy/entrypoint.sh",
        required=required,
        settings=settings,
        rendered=conf,
        check=["haproxy", "-c", "-f", str(conf)],
        version=["haproxy", "-v"],
        image_dir="/var/lib/haproxy",
        files=files,
    )


def django(layout):
    """An app replica on SQLite (DB_HOST unset), listening on the app's port."""
    settings = {
        "LOG_FORMAT": LOG_FORMAT,
        "DJANGO_SETTINGS_MODULE": f"{layout.project.name}.settings",
        "STATIC_ROOT": str(layout.static_root),
        "DJANGO_SQLITE_PATH": str(layout.workdir / "db.sqlite3"),
        "GUNICORN_BIND": f"127.0.0.1:{layout.ports['app']}",
        "GUNICORN_METRICS_BIND": f"127.0.0.1:{layout.ports['app-metrics']}",
        "GUNICORN_WORKERS": "2",
        "DJANGO_COLLECTSTATIC": "0",
    }
    return Service(
        name="django",
        workdir=layout.workdir,
        entrypoint=layout.project / "django/entrypoint.sh",
        required={"DJANGO_SECRET_KEY_FILE": str(layout.secret_file("DJANGO_SECRET_KEY"))},
        settings=settings | layout.compose_app_environment,
        rendered=None,
        check=None,
        version=["gunicorn", "--version"],
    )


def backup(layout):
    """The backup service; it runs commands (backup now, backup restore), not a
    server. Its database is an address where none answers."""
    environment = compose_file(layout.project)["services"]["backup"]["environment"]
    schedule = {
        name: value
        for name, value in environment.items()
        if name.startswith(("BACKUP_", "BINLOG_")) and not name.endswith("_FILE")
    }
    backups = layout.workdir / "backups"
    backups.mkdir(mode=0o700, exist_ok=True)
    return Service(
        name="backup",
        workdir=layout.workdir,
        entrypoint=layout.project / "backup/entrypoint.sh",
        required={
            "DB_HOST": "127.0.0.1",
            "DB_PORT": "1",
            "DB_NAME": "board",
            "DB_USER": "backup",
            "DB_PASSWORD_FILE": str(layout.secret_file("MYSQL_ROOT_PASSWORD")),
            "BACKUP_CERTIFICATE_FILE": str(layout.secret_file("BACKUP_CERTIFICATE")),
            **schedule,
        },
        # The site's time zone is optional: UTC without it.
        settings={"BACKUP_DIR": str(backups), "TZ": environment["TZ"]},
        rendered=None,
        check=None,
        version=["mysqldump", "--version"],
    )


SERVICES = {
    "nginx": nginx,
    "apache": apache,
    "haproxy": haproxy,
    "django": django,
    "backup": backup,
}
