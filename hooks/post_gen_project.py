"""Finish the baked project: prune unchosen proxies, write secrets, say what next.

Runs inside the new project folder. Cookiecutter deletes the folder if this
exits non-zero, so a failure here never leaves half a project behind.
"""

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = {
    "use_nginx": {{ cookiecutter.use_nginx | yes_no | jsonify }},
    "use_apache": {{ cookiecutter.use_apache | yes_no | jsonify }},
    "tls": {{ cookiecutter.tls | string | jsonify }},
    "kubernetes": {{ cookiecutter.kubernetes | yes_no | jsonify }},
}
SLUG = {{ cookiecutter.project_slug | string | jsonify }}
DOMAIN = {{ cookiecutter.domain_name | string | jsonify }}
HTTP_PORT = {{ cookiecutter.http_port | string | jsonify }}
HTTPS_PORT = {{ cookiecutter.https_port | string | jsonify }}
STATS_PORT = {{ cookiecutter.haproxy_stats_port | string | jsonify }}
NGINX_PORT = {{ cookiecutter.nginx_port | string | jsonify }}
APACHE_PORT = {{ cookiecutter.apache_port | string | jsonify }}

# (prompt, answer) -> paths removed when that is the answer, in this order
# (a proxy's own manifest goes before all of k8s/ may). Every other mention
# of what is removed (compose services, HAProxy settings, docs text) is
# left out by the templates themselves, on the same answer.
PATHS_BY_ANSWER = {
    ("use_nginx", "no"): ["nginx", "k8s/base/nginx.yaml"],
    ("use_apache", "no"): ["apache", "k8s/base/apache.yaml"],
    # HAProxy's entrypoint reads the tls answer's own file (acme's, self-signed's too).
    ("tls", "self-signed"): ["acme", "tls", "haproxy/own.sh", "haproxy/acme.sh"],
    ("tls", "own"): ["acme", "haproxy/self-signed.sh", "haproxy/acme.sh"],
    ("tls", "acme"): ["tls", "haproxy/own.sh"],
    ("tls", "none"): ["acme", "tls", "monitoring/blackbox.yml"]
    + ["haproxy/self-signed.sh", "haproxy/own.sh", "haproxy/acme.sh"],
    ("kubernetes", "no"): ["k8s", "docs/kubernetes.md", "docs/kubernetes.ko.md"],
}

# Every secret the stack needs, one file each in secrets/, named after the
# variable: Compose mounts each file only into the services that need it
# (at /run/secrets/<name>), and `kubectl create secret --from-file=secrets/`
# makes the same keys. 32 random bytes as hex: 256 bits, and only [0-9a-f],
# which no shell, URL or MySQL option needs to quote.
SECRET_KEYS = (
    "DJANGO_SECRET_KEY",
    "DB_PASSWORD",
    "DB_MIGRATE_PASSWORD",
    "DB_BACKUP_PASSWORD",
    "DB_MONITOR_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "HAPROXY_STATS_PASSWORD",
)
# Secrets that come from elsewhere, written empty for the user to fill in:
# the mail server's password (docs/mail.md).
USER_SECRET_KEYS = ("EMAIL_PASSWORD",)
SECRETS = Path("secrets")
# The backups are encrypted to this certificate (public: the backup service
# reads it); its private key is written beside the project for the user to
# move off the host (docs/backups.md).
BACKUP_CERTIFICATE = SECRETS / "BACKUP_CERTIFICATE"
BACKUP_KEY = Path("backup-private-key.pem")


def prune():
    for (prompt, answer), paths in PATHS_BY_ANSWER.items():
        if ANSWERS[prompt] == answer:
            for path in map(Path, paths):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()


def earlier_env():
    """The secrets a project baked by an earlier template kept in .env."""
    env = Path(".env")
    if not env.exists():
        return {}
    lines = env.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def write_secrets():
    """Write a fresh secret for each file secrets/ lacks, and keep the ones a
    re-bake (--overwrite-if-exists) finds: the running stack and its database
    volume use those.

    The folder is the owner's alone (0700): nobody else on the host reaches
    the files. The files themselves are readable (0444) because Compose
    bind-mounts them as they are into containers whose users (the app's,
    MySQL's, HAProxy's) are not their owner, and it cannot change a mounted
    file's owner or mode."""
    SECRETS.mkdir(mode=0o700, exist_ok=True)
    SECRETS.chmod(0o700)
    earlier = earlier_env()
    kept, moved, fresh = [], [], []
    for key in SECRET_KEYS:
        path = SECRETS / key
        if path.exists():
            kept.append(key)
        else:
            if earlier.get(key):
                moved.append(key)
            else:
                fresh.append(key)
            # No newline: Kubernetes would keep it in the value.
            path.write_text(earlier.get(key) or secrets.token_hex(32))
        path.chmod(0o444)
    for key in USER_SECRET_KEYS:
        path = SECRETS / key
        if not path.exists():
            path.touch()
        # Filled in by its owner, hence writable by them (docs/mail.md).
        path.chmod(0o644)
    if kept:
        print(f"Kept the existing secrets in secrets/: {', '.join(kept)}.")
    if moved:
        copied = ", ".join(moved)
        print(f"Copied {copied} from .env to secrets/. Nothing reads .env now: delete it.")
    if (kept or moved) and fresh:
        print(
            f"New secrets in secrets/: {', '.join(fresh)}. A database made before them lacks their "
            'users: see docs/least-privilege.md, "Database users", before `docker compose up`.'
        )


def write_backup_keys():
    """A key pair for the backups, unless a re-bake finds their certificate:
    the dumps kept are encrypted to it. RSA 3072 in a self-signed
    certificate, which is what OpenSSL's CMS (in the MySQL image) encrypts to."""
    if BACKUP_CERTIFICATE.exists():
        return False
    openssl = shutil.which("openssl")
    if not openssl:
        sys.exit(
            "The backups' key pair is made with openssl, which is not installed here: "
            "install it (apt install openssl) and bake again."
        )
    old_umask = os.umask(0o077)
    try:
        subprocess.run(  # noqa: S603 (openssl from PATH, our own arguments)
            [openssl, "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-days", "36500",
             "-subj", f"/CN={SLUG} backups", "-keyout", BACKUP_KEY, "-out", BACKUP_CERTIFICATE],
            check=True,
            capture_output=True,
        )  # fmt: skip
    finally:
        os.umask(old_umask)
    BACKUP_CERTIFICATE.chmod(0o444)
    return True


def next_steps(new_backup_key):
    scheme, port = ("http", HTTP_PORT) if ANSWERS["tls"] == "none" else ("https", HTTPS_PORT)
    urls = [
        f"  site            {scheme}://{DOMAIN}:{port}/",
        f"  HAProxy stats   {scheme}://{DOMAIN}:{STATS_PORT}/"
        "  (user admin, password in secrets/HAPROXY_STATS_PASSWORD)",
    ]
    if ANSWERS["use_nginx"] == "yes":
        urls.append(f"  Nginx directly  http://{DOMAIN}:{NGINX_PORT}/")
    if ANSWERS["use_apache"] == "yes":
        urls.append(f"  Apache directly http://{DOMAIN}:{APACHE_PORT}/")
    first = {
        "own": "  put your certificate as tls/fullchain.pem and its key as tls/privkey.pem\n",
        "acme": f"  point DNS for {DOMAIN} at this host; open ports {HTTP_PORT} and {HTTPS_PORT}\n",
    }.get(ANSWERS["tls"], "")
    print(
        f"\nBaked {SLUG}/ with its secrets in {SLUG}/secrets/ (yours alone, git-ignored).\n\n"
        "Start the stack:\n"
        f"  cd {SLUG}\n{first}"
        "  docker compose up -d --build --wait\n"
        "  docker compose exec app python manage.py createsuperuser\n\n"
        "Then open:\n" + "\n".join(urls) + "\n"
    )
    if new_backup_key:
        print(
            f"The backups are encrypted to {BACKUP_CERTIFICATE}. Their private key is in "
            f"{SLUG}/{BACKUP_KEY}: move it off this machine (a password manager, say) and "
            "delete it here. Only a restore needs it: ./restore.sh --key <file> <dump>.\n"
        )


if __name__ == "__main__":
    prune()
    write_secrets()
    next_steps(write_backup_keys())
