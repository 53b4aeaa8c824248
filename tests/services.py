"""How each baked service runs outside a container.

Each function returns a Service: the environment its own entrypoint.sh gets
(the guide's variables with test values, plus the paths that differ from the
container's), the file the entrypoint renders, the server's own checker and
the command that serves. Tier 3 (config checks) and tier 5 (the native
stack) both start services from here, so they test the same thing.
"""

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Debian's names for the servers' files; the containers use their images'.
DEBIAN_APACHE_MODULES = "/usr/lib/apache2/modules"
DEBIAN_MIME_TYPES = "/etc/mime.types"
DEBIAN_NGINX_MIME_TYPES = "/etc/nginx/mime.types"
# Unprivileged user the proxies' workers switch to, as in the images.
WORKER_USER = "www-data"


@dataclass
class Service:
    name: str
    workdir: Path
    entrypoint: Path
    required: dict  # the variables the entrypoint must refuse to start without
    settings: dict  # paths and tuning that differ outside a container
    rendered: Path | None
    check: list = field(default_factory=list)  # the server's own config checker
    serve: list = field(default_factory=list)  # the CMD, adapted to run natively

    def env(self, without=(), empty=()):
        """The entrypoint's whole environment; nothing leaks in from the test runner."""
        env = {"PATH": search_path(self.workdir), "LANG": "C.UTF-8"}
        env |= self.settings | self.required
        for name in without:
            env.pop(name)
        env |= dict.fromkeys(empty, "")
        return env


def read_env(path):
    """KEY=VALUE pairs of a .env file, as Compose reads the baked one."""
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def search_path(workdir):
    """PATH for the entrypoints: this virtualenv's python, Debian's servers,
    and `httpd` as the official image calls Debian's apache2."""
    shims = Path(workdir) / "bin"
    shims.mkdir(exist_ok=True)
    httpd = shims / "httpd"
    if not httpd.exists():
        apache2 = shutil.which("apache2", path="/usr/sbin:/usr/bin")
        assert apache2, "Debian's apache2 is not installed (see README.md)"
        httpd.symlink_to(apache2)
    system = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return f"{Path(sys.executable).parent}:{shims}:{system}"


def nginx(project, workdir, *, port, backend_hosts, backend_port, static_root):
    conf = workdir / "nginx" / "nginx.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    return Service(
        name="nginx",
        workdir=workdir,
        entrypoint=project / "nginx/entrypoint.sh",
        required={
            "NGINX_PORT": str(port),
            "BACKEND_HOST": " ".join(backend_hosts),
            "BACKEND_PORT": str(backend_port),
        },
        settings={
            "NGINX_TEMPLATE": str(project / "nginx/nginx.conf"),
            "NGINX_CONF": str(conf),
            "NGINX_RUN_DIR": str(conf.parent),
            "NGINX_USER": WORKER_USER,
            "NGINX_MIME_TYPES": DEBIAN_NGINX_MIME_TYPES,
            "STATIC_ROOT": str(static_root),
        },
        rendered=conf,
        check=["nginx", "-t", "-q", "-e", "stderr", "-c", str(conf)],
        serve=["nginx", "-e", "stderr", "-c", str(conf), "-g", "daemon off;"],
    )


def apache(project, workdir, *, port, backend_hosts, backend_port, domain, static_root):
    conf = workdir / "apache" / "httpd.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    return Service(
        name="apache",
        workdir=workdir,
        entrypoint=project / "apache/entrypoint.sh",
        required={
            "APACHE_PORT": str(port),
            "BACKEND_HOST": " ".join(backend_hosts),
            "BACKEND_PORT": str(backend_port),
            "DOMAIN_NAME": domain,
        },
        settings={
            "APACHE_TEMPLATE": str(project / "apache/httpd.conf"),
            "APACHE_CONF": str(conf),
            "APACHE_SERVER_ROOT": str(conf.parent),
            "APACHE_RUN_DIR": str(conf.parent),
            "APACHE_MODULES_DIR": DEBIAN_APACHE_MODULES,
            "APACHE_MIME_TYPES": DEBIAN_MIME_TYPES,
            "STATIC_ROOT": str(static_root),
        },
        rendered=conf,
        check=["httpd", "-t", "-f", str(conf)],
        serve=["httpd", "-f", str(conf), "-DFOREGROUND"],
    )


def haproxy(project, workdir, *, port, stats_port, stats_password, domain, proxies):
    """proxies: {"nginx": (host, port), "apache": (host, port)} for those baked."""
    conf = workdir / "haproxy" / "haproxy.cfg"
    conf.parent.mkdir(parents=True, exist_ok=True)
    required = {
        "HAPROXY_PORT": str(port),
        "HAPROXY_STATS_PORT": str(stats_port),
        "HAPROXY_STATS_USER": "admin",
        "HAPROXY_STATS_PASSWORD": stats_password,
        "DOMAIN_NAME": domain,
    }
    for proxy, (host, proxy_port) in proxies.items():
        required |= {f"{proxy.upper()}_HOST": host, f"{proxy.upper()}_PORT": str(proxy_port)}
    return Service(
        name="haproxy",
        workdir=workdir,
        entrypoint=project / "haproxy/entrypoint.sh",
        required=required,
        settings={
            "HAPROXY_TEMPLATE": str(project / "haproxy/haproxy.cfg"),
            "HAPROXY_CFG": str(conf),
            # Nothing answers here; servers given as addresses are never resolved.
            "HAPROXY_DNS": "127.0.0.1:1",
        },
        rendered=conf,
        check=["haproxy", "-c", "-q", "-f", str(conf)],
        serve=["haproxy", "-f", str(conf)],
    )


def django(project, workdir, *, bind, static_root, database=None, collectstatic=False):
    """database: the DB_* variables for MySQL/MariaDB, or None for SQLite."""
    secret_key = read_env(project / ".env")["DJANGO_SECRET_KEY"]
    database = database or {}
    # DB_HOST chooses MySQL over SQLite; with it, the credentials are required.
    credentials = {
        name: database[name] for name in ("DB_NAME", "DB_USER", "DB_PASSWORD") if name in database
    }
    settings = {
        "DJANGO_SETTINGS_MODULE": f"{project.name}.settings",
        "STATIC_ROOT": str(static_root),
        "GUNICORN_BIND": bind,
        "GUNICORN_WORKERS": "2",
        "DJANGO_COLLECTSTATIC": "1" if collectstatic else "0",
        "DB_WAIT_TIMEOUT": "30",
    } | {name: value for name, value in database.items() if name not in credentials}
    if not database:
        settings["DJANGO_SQLITE_PATH"] = str(workdir / "db.sqlite3")
    return Service(
        name="django",
        workdir=workdir,
        entrypoint=project / "django/entrypoint.sh",
        required={"DJANGO_SECRET_KEY": secret_key} | credentials,
        settings=settings,
        rendered=None,
        serve=["gunicorn", "--config", "gunicorn.conf.py"],
    )
