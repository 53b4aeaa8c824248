"""Each baked service with test values: one registry, one signature.

`SERVICES[name](layout)` gives a Service for every service of a baked
project: the settings its own entrypoint.sh gets (the guide's variables with
test values), the file it renders, and the commands that serve or just show
the server's version. Tier 3 runs it in its image (harness/images.py); the
benchmark's native stack (native.py) runs it on this machine, with the
image's paths moved (`native`), until the benchmark runs the images too.
"""

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .template import answers_of

# Debian's names for the servers' files; the containers use their images'.
DEBIAN_APACHE_MODULES = "/usr/lib/apache2/modules"
DEBIAN_MIME_TYPES = "/etc/mime.types"
DEBIAN_NGINX_MIME_TYPES = "/etc/nginx/mime.types"
# Unprivileged user the proxies' workers switch to, as in the images.
WORKER_USER = "www-data"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Layout:
    """Where a baked project's services run: one folder for what they read
    and write, and their ports (on loopback, natively).

    ports: the listening port of "haproxy", "stats", "haproxy-metrics", each
    proxy and its "<proxy>-status", "app" and "app-metrics".
    database: the DB_* variables for MySQL/MariaDB, or None for SQLite.
    """

    project: Path
    workdir: Path
    ports: dict
    domain: str = "localhost"
    replica_hosts: list = field(default_factory=lambda: ["127.0.0.1"])
    database: dict | None = None
    # tls=own: the certificate and key the user would put in tls/.
    own_certificate: tuple | None = None
    # What a deployment sets for HAProxy beyond its defaults, as in Compose's
    # environment (the benchmark's limits per client, out of wrk's reach).
    haproxy_settings: dict = field(default_factory=dict)
    # LOG_FORMAT of every server: the entrypoints' default, or Compose's json.
    log_format: str = "text"
    # What a deployment sets for the app beyond Compose's environment (the
    # benchmark's page cache, off for the stacks that measure the layers).
    app_settings: dict = field(default_factory=dict)

    def secret_file(self, name):
        """The file the bake wrote the secret `name` to (secrets/<name>)."""
        return self.project / "secrets" / name

    @property
    def backup_key(self):
        """The backups' private key, where the bake left it for the user to move."""
        return self.project / "backup-private-key.pem"

    @property
    def secrets(self):
        return {path.name: path.read_text() for path in (self.project / "secrets").iterdir()}

    @property
    def tls(self):
        return answers_of(self.project)["tls"]

    @property
    def certificate(self):
        """HAProxy's certificate file (with its key), where its entrypoint puts it."""
        folder = "haproxy" if self.tls == "own" else "haproxy/tls"
        return self.workdir / folder / "site.pem"

    @property
    def haproxy_socket(self):
        """HAProxy's runtime API (tls=acme): the acme service installs certificates through it."""
        return self.workdir / "haproxy" / "admin.sock"

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
    serve: list  # the image's CMD, adapted to run natively
    version: list  # a command that starts the server binary and exits at once
    # Outside a container only (the benchmark): the image's paths, moved.
    native: dict = field(default_factory=dict)
    # In the image: the folder `rendered` is written to, and files the
    # service reads at fixed paths there ({path in the image: host file}).
    image_dir: str | None = None
    files: dict = field(default_factory=dict)
    # The project's images (harness/images.py), when it runs in its image.
    images: object = None

    def env(self, without=(), empty=(), *, native=True):
        """The entrypoint's whole environment; nothing leaks in from the test
        runner. In the image (native=False), only the user's settings."""
        env = {}
        if native:
            env = {"PATH": search_path(self.workdir), "LANG": "C.UTF-8"} | self.native
        env |= self.settings | self.required
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


def search_path(workdir):
    """PATH for the entrypoints: this virtualenv's python, Debian's servers,
    and `httpd` as the official image calls Debian's apache2."""
    shims = Path(workdir) / "bin"
    shims.mkdir(parents=True, exist_ok=True)
    httpd = shims / "httpd"
    if not httpd.exists():
        apache2 = shutil.which("apache2", path=SYSTEM_PATH)
        assert apache2, "Debian's apache2 is not installed (see CONTRIBUTING.md)"
        httpd.symlink_to(apache2)
    return f"{Path(sys.executable).parent}:{shims}:{SYSTEM_PATH}"


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
        settings={"LOG_FORMAT": layout.log_format, "STATIC_ROOT": str(layout.static_root)},
        rendered=conf,
        check=["nginx", "-t", "-q", "-e", "stderr", "-c", str(conf)],
        serve=["nginx", "-e", "stderr", "-g", "daemon off;"],
        version=["nginx", "-v"],
        native={
            "NGINX_TEMPLATE": str(layout.project / "nginx/nginx.conf"),
            "NGINX_CONF": str(conf),
            "NGINX_RUN_DIR": str(conf.parent),
            "NGINX_USER": WORKER_USER,
            "NGINX_MIME_TYPES": DEBIAN_NGINX_MIME_TYPES,
        },
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
        settings={"LOG_FORMAT": layout.log_format, "STATIC_ROOT": str(layout.static_root)},
        rendered=conf,
        check=["httpd", "-t", "-f", str(conf)],
        serve=["httpd", "-DFOREGROUND"],
        version=["httpd", "-v"],
        native={
            "APACHE_TEMPLATE": str(layout.project / "apache/httpd.conf"),
            "APACHE_CONF": str(conf),
            "APACHE_SERVER_ROOT": str(conf.parent),
            "APACHE_RUN_DIR": str(conf.parent),
            "APACHE_MODULES_DIR": DEBIAN_APACHE_MODULES,
            "APACHE_MIME_TYPES": DEBIAN_MIME_TYPES,
        },
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
        "LOG_FORMAT": layout.log_format,
        # Nothing answers here; servers given as addresses are never resolved.
        "HAPROXY_DNS": "127.0.0.1:1",
    }
    native = {
        "HAPROXY_TEMPLATE": str(layout.project / "haproxy/haproxy.cfg"),
        "HAPROXY_CFG": str(conf),
    }
    files = {}
    if layout.tls != "none":
        required["HAPROXY_HTTPS_PORT"] = str(layout.ports["https"])
        settings["HAPROXY_PUBLIC_HTTPS_PORT"] = str(layout.ports["https"])
        native["HAPROXY_CERTIFICATE"] = str(layout.certificate)
    if layout.tls == "own":
        certificate, key = layout.own_certificate
        native |= {"HAPROXY_CERTIFICATE_FILE": str(certificate), "HAPROXY_KEY_FILE": str(key)}
        # Where Compose mounts them (its secrets from tls/).
        files = {"/run/secrets/tls_certificate": certificate, "/run/secrets/tls_key": key}
    if layout.tls == "acme":
        required |= {"ACME_HOST": "127.0.0.1", "ACME_PORT": str(layout.ports["acme"])}
        native["HAPROXY_SOCKET"] = str(layout.haproxy_socket)
    settings |= layout.haproxy_settings
    return Service(
        name="haproxy",
        workdir=layout.workdir,
        entrypoint=layout.project / "haproxy/entrypoint.sh",
        required=required,
        settings=settings,
        rendered=conf,
        check=["haproxy", "-c", "-f", str(conf)],
        serve=["haproxy", "-W"],
        version=["haproxy", "-v"],
        native=native,
        image_dir="/var/lib/haproxy",
        files=files,
    )


def django(layout, host="127.0.0.1", *, collectstatic=False):
    """One app replica listening on host:<app port>."""
    database = layout.database or {}
    # DB_HOST chooses MySQL over SQLite; with it, the credentials are required.
    credentials = {
        name: database[name]
        for name in ("DB_NAME", "DB_USER", "DB_PASSWORD_FILE")
        if name in database
    }
    settings = {
        "LOG_FORMAT": layout.log_format,
        "DJANGO_SETTINGS_MODULE": f"{layout.project.name}.settings",
        "STATIC_ROOT": str(layout.static_root),
        "GUNICORN_BIND": f"{host}:{layout.ports['app']}",
        "GUNICORN_METRICS_BIND": f"{host}:{layout.ports['app-metrics']}",
        "GUNICORN_WORKERS": "2",
        "DJANGO_COLLECTSTATIC": "1" if collectstatic else "0",
        "DB_WAIT_TIMEOUT": "30",
    } | {name: value for name, value in database.items() if name not in credentials}
    if not database:
        settings["DJANGO_SQLITE_PATH"] = str(layout.workdir / "db.sqlite3")
    settings |= layout.compose_app_environment | layout.app_settings
    return Service(
        name="django",
        workdir=layout.workdir,
        entrypoint=layout.project / "django/entrypoint.sh",
        required={"DJANGO_SECRET_KEY_FILE": str(layout.secret_file("DJANGO_SECRET_KEY"))}
        | credentials,
        settings=settings,
        rendered=None,
        check=None,
        serve=["gunicorn", "--config", "gunicorn.conf.py"],
        version=["gunicorn", "--version"],
    )


def backup(layout):
    """The backup service; it runs commands (backup now, backup restore), not a server."""
    environment = compose_file(layout.project)["services"]["backup"]["environment"]
    schedule = {
        name: value
        for name, value in environment.items()
        if name.startswith(("BACKUP_", "BINLOG_")) and not name.endswith("_FILE")
    }
    # Without a database (tier 3), an address where none answers.
    database = layout.database or {"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_NAME": "board"}
    backups = layout.workdir / "backups"
    backups.mkdir(mode=0o700, exist_ok=True)
    return Service(
        name="backup",
        workdir=layout.workdir,
        entrypoint=layout.project / "backup/entrypoint.sh",
        required={
            "DB_HOST": database["DB_HOST"],
            "DB_PORT": database["DB_PORT"],
            "DB_NAME": database["DB_NAME"],
            # The native MariaDB has none of db/users.sh's users: root,
            # over TCP from 127.0.0.1, stands in for the backup user.
            "DB_USER": "root",
            "DB_PASSWORD_FILE": str(layout.secret_file("MYSQL_ROOT_PASSWORD")),
            "BACKUP_CERTIFICATE_FILE": str(layout.secret_file("BACKUP_CERTIFICATE")),
            **schedule,
        },
        # The site's time zone is optional: UTC without it.
        settings={"BACKUP_DIR": str(backups), "TZ": environment["TZ"]},
        rendered=None,
        check=None,
        serve=["backup", "forever"],
        version=["mysqldump", "--version"],
    )


SERVICES = {
    "nginx": nginx,
    "apache": apache,
    "haproxy": haproxy,
    "django": django,
    "backup": backup,
}
