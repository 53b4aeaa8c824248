"""Finish the baked project: prune unchosen proxies, write secrets, say what next.

Runs inside the new project folder. Cookiecutter deletes the folder if this
exits non-zero, so a failure here never leaves half a project behind.
"""

import os
import secrets
import shutil
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
# of what is removed (compose services, HAProxy settings, README text) is
# left out by the templates themselves, on the same answer.
PATHS_BY_ANSWER = {
    ("use_nginx", "no"): ["nginx", "k8s/base/nginx.yaml"],
    ("use_apache", "no"): ["apache", "k8s/base/apache.yaml"],
    ("tls", "self-signed"): ["acme", "tls"],
    ("tls", "own"): ["acme"],
    ("tls", "acme"): ["tls"],
    ("tls", "none"): ["acme", "tls"],
    ("kubernetes", "no"): ["k8s"],
}

# Every secret the stack needs; docker-compose.yml reads them from .env.
# 32 random bytes as hex: 256 bits, and only [0-9a-f], which no .env parser,
# shell, URL or MySQL option needs to quote.
SECRET_KEYS = (
    "DJANGO_SECRET_KEY",
    "DB_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "HAPROXY_STATS_PASSWORD",
)


def prune():
    for (prompt, answer), paths in PATHS_BY_ANSWER.items():
        if ANSWERS[prompt] == answer:
            for path in map(Path, paths):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()


def write_env():
    """Write .env with fresh secrets, or keep the one a re-bake
    (--overwrite-if-exists) finds: the running stack and its database volume
    use those secrets. Only secrets it lacks are added."""
    existing = Path(".env")
    text = existing.read_text() if existing.exists() else ""
    kept = text.splitlines()
    have = {line.partition("=")[0] for line in kept if "=" in line and not line.startswith("#")}
    missing = [key for key in SECRET_KEYS if key not in have]
    # Created 0600 from the start: the secrets are never readable by others,
    # not even for the moment between writing and chmod.
    fd = os.open(".env", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.chmod(".env", 0o600)
    with os.fdopen(fd, "a") as env:
        if not kept:
            env.write("# Secrets for this deployment. Never commit this file.\n")
        elif missing and not text.endswith("\n"):
            env.write("\n")
        env.writelines(f"{key}={secrets.token_hex(32)}\n" for key in missing)
    Path(".env.example").write_text(
        "# Copy to .env and fill in long random values (see README.md).\n"
        + "".join(f"{key}=\n" for key in SECRET_KEYS)
    )
    if kept:
        added = f"; added {', '.join(missing)}" if missing else ""
        print(f"Kept the existing .env and its secrets{added}.")


def next_steps():
    scheme, port = ("http", HTTP_PORT) if ANSWERS["tls"] == "none" else ("https", HTTPS_PORT)
    urls = [
        f"  site            {scheme}://{DOMAIN}:{port}/",
        f"  HAProxy stats   {scheme}://{DOMAIN}:{STATS_PORT}/  (user admin, password in .env)",
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
        f"\nBaked {SLUG}/ with fresh secrets in {SLUG}/.env (mode 0600, git-ignored).\n\n"
        "Start the stack:\n"
        f"  cd {SLUG}\n{first}"
        "  docker compose up -d --build --wait\n"
        "  docker compose exec app python manage.py createsuperuser\n\n"
        "Then open:\n" + "\n".join(urls) + "\n"
    )


if __name__ == "__main__":
    prune()
    write_env()
    next_steps()
