"""Tier 1: every proxy choice bakes into a coherent project; bad answers bake nothing.

The rules themselves are unit-tested in test_answers.py; here they are seen
through cookiecutter as a user runs it.
"""

import json
import re
import shlex
import shutil
import stat
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.commands import COMPOSE, clean_env, run, tool
from harness.template import (
    ANSWERS_FILE,
    CONTEXT,
    PROJECT_TEMPLATE,
    PROXIES,
    TEMPLATE,
    answers_of,
    bake_on_command_line,
    copied_verbatim,
    default_answers,
    guides,
    proxies_of,
)

SECRET_KEYS = {
    "DJANGO_SECRET_KEY",
    "DB_PASSWORD",
    "DB_MIGRATE_PASSWORD",
    "DB_BACKUP_PASSWORD",
    "DB_MONITOR_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "HAPROXY_STATS_PASSWORD",
}


# What the bake makes at random: base64 that may spell "acme" or "nginx" by
# chance; and the answers file, which names every prompt, chosen or not.
RANDOM_FILES = ("secrets/*", "backup-private-key.pem", ANSWERS_FILE)


def text_files(project):
    """The template's rendered text, without compiled catalogues, random keys
    or the answers."""
    for path in sorted(project.rglob("*")):
        name = path.relative_to(project).as_posix()
        if (
            path.is_file()
            and path.suffix != ".mo"
            and not any(fnmatch(name, pattern) for pattern in RANDOM_FILES)
        ):
            yield name, path.read_text(encoding="utf-8")


def test_default_bake_writes_the_documented_layout(tmp_path):
    run_ = bake_on_command_line(tmp_path, {})
    assert run_.returncode == 0, run_.stderr
    project = tmp_path / "community_board"
    for folder in ("django", *PROXIES, "haproxy", "checks"):
        assert (project / folder).is_dir(), folder
    for name in ("docker-compose.yml", "README.md"):
        assert (project / name).is_file(), name
    assert stat.S_IMODE((project / "secrets").stat().st_mode) == 0o700


@pytest.mark.parametrize("proxy", PROXIES)
def test_answering_no_on_the_command_line_removes_that_proxy(tmp_path, proxy):
    run_ = bake_on_command_line(tmp_path, {f"use_{proxy}": "no"})
    assert run_.returncode == 0, run_.stderr
    project = tmp_path / "community_board"
    assert [folder for folder in PROXIES if (project / folder).is_dir()] == [
        other for other in PROXIES if other != proxy
    ]


def test_the_bake_records_every_answer_in_the_type_cookiecutter_json_gives_it(tmp_path):
    given = {"use_apache": "no", "app_replicas": "3", "https_port": "8443", "tls": "own"}
    run_ = bake_on_command_line(tmp_path, given)
    assert run_.returncode == 0, run_.stderr
    recorded = answers_of(tmp_path / "community_board")
    # Cookiecutter renders every default but a yes/no one as text.
    defaults = {
        key: int(value) if type(CONTEXT[key]) is int else value
        for key, value in default_answers().items()
    }
    given = {"use_apache": False, "app_replicas": 3, "https_port": 8443, "tls": "own"}
    assert recorded == defaults | given
    # Cookiecutter's own keys name paths on the baking machine.
    text = (tmp_path / "community_board" / ANSWERS_FILE).read_text()
    assert str(tmp_path) not in text
    assert str(TEMPLATE) not in text


def test_each_service_folder_has_dockerfile_entrypoint_and_template(proxy_project):
    templates = {"nginx": "nginx.conf", "apache": "httpd.conf", "haproxy": "haproxy.cfg"}
    for service in [*proxies_of(proxy_project), "haproxy", "django"]:
        folder = proxy_project / service
        assert (folder / f"Dockerfile.{service}").is_file(), service
        assert (folder / "entrypoint.sh").stat().st_mode & stat.S_IXUSR, service
        if service in templates:
            assert (folder / templates[service]).is_file(), service


def test_unchosen_proxy_is_gone_with_every_mention_of_it(proxy_project):
    for proxy in set(PROXIES) - set(proxies_of(proxy_project)):
        mentions = [
            path
            for path, text in text_files(proxy_project)
            if re.search(proxy, text, re.IGNORECASE)
        ]
        assert mentions == [], f"{proxy} was not chosen but is mentioned in {mentions}"


# What only one tls answer needs, by the words that name it.
TLS_ONLY = {"acme": r"acme|lego", "own": r"tls/fullchain\.pem|tls/privkey\.pem|tls_key"}


def test_each_tls_answer_keeps_only_its_own_files_and_mentions(tls_mode, tls_project):
    scripts = {path.stem for path in (tls_project / "haproxy").glob("*.sh")} - {"entrypoint"}
    # acme starts on a self-signed certificate until the first one is issued.
    assert scripts == {"acme": {"acme", "self-signed"}, "none": set()}.get(tls_mode, {tls_mode})
    assert (tls_project / "acme").is_dir() == (tls_mode == "acme")
    assert (tls_project / "tls").is_dir() == (tls_mode == "own")
    for mode, words in TLS_ONLY.items():
        if mode != tls_mode:
            mentions = [p for p, text in text_files(tls_project) if re.search(words, text, re.I)]
            assert mentions == [], f"tls={tls_mode} mentions tls={mode}'s {words} in {mentions}"
    if tls_mode == "none":
        # The stack checks are copied verbatim, the same for every answer.
        mentions = [
            p
            for p, text in text_files(tls_project)
            if "HTTPS_PORT" in text and not p.startswith("checks/")
        ]
        assert mentions == [], f"tls=none still has an HTTPS port in {mentions}"


def test_own_certificate_files_are_ignored_by_git(tmp_path):
    run_ = bake_on_command_line(tmp_path, {"tls": "own"})
    assert run_.returncode == 0, run_.stderr
    project = tmp_path / "community_board"
    run(["git", "init", "--quiet", str(project)])
    for name in ("fullchain.pem", "privkey.pem"):
        (project / "tls" / name).write_text("not really a key")
    ignored = run(["git", "check-ignore", "tls/fullchain.pem", "tls/privkey.pem"], cwd=project)
    assert ignored.stdout.split() == ["tls/fullchain.pem", "tls/privkey.pem"]
    assert "tls/fullchain.pem" in run_.stdout, "the next steps do not say where the files go"


@pytest.mark.parametrize(
    ("tls", "scheme", "port"), [("self-signed", "https", 443), ("none", "http", 80)]
)
def test_the_next_steps_name_the_sites_scheme_and_port(tmp_path, tls, scheme, port):
    run_ = bake_on_command_line(tmp_path, {"tls": tls})
    assert run_.returncode == 0, run_.stderr
    assert f"site            {scheme}://localhost:{port}/" in run_.stdout


def test_no_template_syntax_is_left(variant_project):
    for path, text in text_files(variant_project):
        assert "cookiecutter" not in text.replace(ANSWERS_FILE, ""), path
        if not copied_verbatim(path):
            # Prometheus' own templates ({{ $value }}) begin with a dollar.
            assert not re.search(r"\{\{(?!\s*\$)|\{%|\{#", text), f"Jinja syntax left in {path}"


def test_haproxys_own_error_pages_are_the_web_servers_naming_its_request_id(default_project):
    pages = default_project / "django/static/errors"
    config = (default_project / "haproxy/haproxy.cfg").read_text()
    served = {}
    for line in re.findall(r"^ *http-error .*$", config, re.MULTILINE):
        words = shlex.split(line)
        served[words[2]] = words[words.index("lf-string") + 1]
    assert {"400", "413", "429", "503"} <= set(served)
    # The web servers' SSI line naming the request's ID, and HAProxy's.
    ssi = '<!--#echo var="HTTP_X_REQUEST_ID" -->'
    for status, page in served.items():
        web_servers = (pages / f"{status}.html").read_text().strip()
        assert page == web_servers.replace(ssi, "%[var(txn.request_id)]"), status


def test_the_stack_checks_are_copied_verbatim(proxy_project):
    def files(folder):
        return {
            path.relative_to(folder): path.read_bytes()
            for path in folder.rglob("*.py")
            if "__pycache__" not in path.parts
        }

    baked = files(proxy_project / "checks")
    assert baked == files(PROJECT_TEMPLATE / "checks")
    assert {"check_stack.py", "stackcheck/flow.py"} <= {str(path) for path in baked}


def baked_secrets(project):
    """The random secrets (the backups' certificate is public, and beside them)."""
    folder = project / "secrets"
    return {path.name: path.read_text() for path in folder.iterdir() if path.name in SECRET_KEYS}


def test_the_mail_password_is_an_empty_file_for_its_owner_to_fill_in(default_project):
    """README.md, "Mail": the server's password comes from its provider."""
    path = default_project / "secrets/EMAIL_PASSWORD"
    assert path.read_text() == ""
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_secrets_are_distinct_strong_files_in_a_folder_only_the_owner_reaches(default_project):
    folder = default_project / "secrets"
    # Nobody else on the host reaches the files; they are readable so that
    # Compose's bind mounts serve them to the containers' own users.
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    values = baked_secrets(default_project)
    assert set(values) == SECRET_KEYS
    assert len(set(values.values())) == len(values), "two secrets are equal"
    for key, value in values.items():
        assert stat.S_IMODE((folder / key).stat().st_mode) == 0o444, key
        # 64 hex digits = 256 bits; nothing a shell, URL or MySQL must quote.
        assert re.fullmatch(r"[0-9a-f]{64}", value), key
    assert "/secrets/" in (default_project / ".gitignore").read_text().splitlines()


def test_the_backups_key_pair_is_fresh_and_its_private_half_is_the_owners_alone(cookies, tmp_path):
    result = cookies.bake()
    project = result.project_path
    certificate, key = project / "secrets/BACKUP_CERTIFICATE", project / "backup-private-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(certificate.stat().st_mode) == 0o444
    assert "/backup-private-key.pem" in (project / ".gitignore").read_text().splitlines()
    # What is encrypted to the certificate decrypts with the key, and only it.
    sealed = tmp_path / "sealed"
    openssl = ["openssl", "cms", "-binary", "-inform", "DER"]
    run(["openssl", "cms", "-encrypt", "-binary", "-aes-256-gcm", "-outform", "DER",
         "-out", sealed, certificate], input="a dump")  # fmt: skip
    assert run([*openssl, "-decrypt", "-in", sealed, "-inkey", key]).stdout == "a dump"
    other = cookies.bake().project_path / "backup-private-key.pem"
    # Into a file: with a wrong key, RSA's implicit rejection yields a random
    # content key, and its garbage is written before GCM's tag refuses it.
    opened = ["-out", tmp_path / "opened"]
    wrong_key = run([*openssl, "-decrypt", "-in", sealed, "-inkey", other, *opened], check=False)
    assert wrong_key.returncode


def test_a_bake_without_openssl_says_so_and_leaves_nothing_behind(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "out").mkdir()
    refused = run(
        [sys.executable, "-m", "cookiecutter", TEMPLATE, "--no-input", "-o", tmp_path / "out"],
        env=clean_env(PATH=str(tmp_path / "bin")),
        check=False,
    )
    assert refused.returncode != 0
    assert "made with openssl, which is not installed here" in refused.stderr, refused.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_the_bake_says_where_the_backups_private_key_is_and_to_move_it(tmp_path):
    baked = bake_on_command_line(tmp_path, {})
    assert "community_board/backup-private-key.pem: move it off this machine" in baked.stdout
    again = bake_again(tmp_path)
    assert "backup-private-key.pem" not in again.stdout, "a re-bake made a new key pair"


def test_the_readme_names_every_file_the_bake_writes(variant_project):
    # Its "Files" table: a row names a file, a folder (ending in /), or a
    # file by its name beside its folder's first file.
    readme = (variant_project / "README.md").read_text()
    table = readme.split("\n## Files\n", 1)[1].split("\n## ", 1)[0]
    named = {
        span
        for row in table.splitlines()
        if row.startswith("| ")
        for span in re.findall(r"`([^`]+)`", row.split("|")[1])
    }
    ignored = {"secrets", "__pycache__"}
    written = [
        path.relative_to(variant_project)
        for path in variant_project.rglob("*")
        if path.is_file() and not ignored & set(path.relative_to(variant_project).parts)
    ]
    unnamed = [
        str(path)
        for path in written
        if not any(
            str(path) == name
            or (name.endswith("/") and str(path).startswith(name))
            or ("/" not in name and path.name == name)
            for name in named
        )
    ]
    assert unnamed == []


def test_the_project_records_its_name_description_and_authors(cookies):
    answers = {"author_name": 'Ada "AL" Lovelace', "author_email": "ada@example.org"}
    project = cookies.bake(extra_context=answers).project_path
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert metadata["name"] == project.name
    assert metadata["authors"] == [{"name": 'Ada "AL" Lovelace', "email": "ada@example.org"}]


def test_two_bakes_get_different_secrets(cookies):
    first, second = (baked_secrets(cookies.bake().project_path) for _ in range(2))
    assert set(first.values()).isdisjoint(second.values())


def test_the_database_image_is_the_chosen_mysql_version(mysql_project):
    readme = (mysql_project / "README.md").read_text()
    version = re.search(r"MySQL (\d+\.\d+)", readme).group(1)
    dockerfile = (mysql_project / "db/Dockerfile.mysql").read_text()
    assert re.findall(r"^FROM (mysql:\S+)", dockerfile, re.MULTILINE) == [f"mysql:{version}"]
    workflow = (mysql_project / ".github/workflows/ci.yml").read_text()
    assert f"mysql:{version}" in workflow


def refusal(run_):
    assert run_.returncode != 0
    assert "Traceback" not in run_.stderr + run_.stdout
    return [line for line in run_.stderr.splitlines() if line.startswith("ERROR:")]


def test_a_refused_answer_gets_one_line_and_writes_nothing(tmp_path):
    errors = refusal(bake_on_command_line(tmp_path, {"db_name": "mysql"}))
    assert errors == ["ERROR: db_name 'mysql' is one of MySQL's own schemas; pick another"]
    assert list(tmp_path.iterdir()) == [], "a refused bake left files behind"


@pytest.mark.parametrize(
    ("typed", "named"),
    [
        # cookiecutter renders the name first: the slug is made from "49 board".
        ({"project_name": "{{ 7*7 }} board"}, "ERROR: project_name '49 board': project_slug"),
        ({"project_name": "b" * 80}, f"ERROR: project_name '{'b' * 80}': db_name"),
        ({"tls": "acme"}, "ERROR: author_email 'you@example.com': acme_email"),
    ],
    ids=["a name with template syntax", "a name too long", "acme with the default contact"],
)
def test_an_answer_made_from_another_is_refused_as_the_one_typed(tmp_path, typed, named):
    (error,) = refusal(bake_on_command_line(tmp_path, typed))
    assert error.startswith(named), error
    assert list(tmp_path.iterdir()) == []


def test_several_bad_answers_are_all_reported_at_once(tmp_path):
    errors = refusal(
        bake_on_command_line(tmp_path, {"http_port": "x", "db_user": "root", "app_replicas": "0"})
    )
    assert len(errors) == 3, errors
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ({"tls": "letsencrypt"}, "ERROR: tls 'letsencrypt' is not offered: choose self-signed,"),
        ({"mysql_version": "8.0"}, "ERROR: mysql_version '8.0' reached end of life in April"),
        ({"project_name": ""}, "ERROR: project_name must not be empty"),
        (
            {"project_name": "\U0001f389\U0001f389"},
            "ERROR: project_name '\U0001f389\U0001f389' has no",
        ),
    ],
    ids=["a tls mode not offered", "a retired MySQL line", "an empty name", "an emoji-only name"],
)
def test_a_choice_not_offered_or_an_empty_name_is_refused_in_one_line(tmp_path, typed, said):
    (error,) = refusal(bake_on_command_line(tmp_path, typed))
    assert error.startswith(said), error
    assert list(tmp_path.iterdir()) == []


def bake_again(tmp_path):
    return run(
        [sys.executable, "-m", "cookiecutter", TEMPLATE, "--no-input", "--overwrite-if-exists"]
        + ["-o", tmp_path],
        check=False,
    )


def test_baking_again_over_a_project_keeps_its_secrets(tmp_path):
    assert bake_on_command_line(tmp_path, {}).returncode == 0
    project = tmp_path / "community_board"
    before = baked_secrets(project)
    (project / "secrets/EMAIL_PASSWORD").write_text("from-the-provider")
    again = bake_again(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Kept the existing secrets in secrets/" in again.stdout
    assert baked_secrets(project) == before
    assert (project / "secrets/EMAIL_PASSWORD").read_text() == "from-the-provider"


def test_baking_again_over_an_older_project_copies_its_env_secrets(tmp_path):
    # Earlier versions of the template kept the secrets in .env.
    assert bake_on_command_line(tmp_path, {}).returncode == 0
    project = tmp_path / "community_board"
    shutil.rmtree(project / "secrets")
    (project / ".env").write_text("# Secrets\nDB_PASSWORD=kept-from-env\n")
    again = bake_again(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Copied DB_PASSWORD from .env to secrets/" in again.stdout
    assert (project / "secrets/DB_PASSWORD").read_text() == "kept-from-env"
    assert len(baked_secrets(project)) == len(SECRET_KEYS)


def test_baking_again_over_a_project_from_before_the_users_by_job_points_to_them(tmp_path):
    # A database made before DB_MIGRATE_PASSWORD existed has no migrate user.
    assert bake_on_command_line(tmp_path, {}).returncode == 0
    project = tmp_path / "community_board"
    (project / "secrets/DB_MIGRATE_PASSWORD").unlink()
    certificate = (project / "secrets/BACKUP_CERTIFICATE").read_text()
    again = bake_again(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "New secrets in secrets/: DB_MIGRATE_PASSWORD." in again.stdout
    assert '"Database users"' in again.stdout
    assert "New secrets" not in bake_again(tmp_path).stdout
    assert (project / "secrets/BACKUP_CERTIFICATE").read_text() == certificate


# Property: any answer is either refused cleanly, or bakes a project whose
# files carry exactly the text typed.

# No "{": on the command line cookiecutter renders each answer as a Jinja
# template itself, before any hook sees it (typed at a prompt, an answer
# reaches the hook as typed, and test_answers.py proves it refused there).
# No NUL either: no command line can carry one.
FREE_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="{\x00"),
    max_size=40,
)
YAML_WORDS = st.sampled_from(["null", "~", "yes", "no", "on", "off", "true", "0123", "1e3", "NaN"])
NAMES = st.one_of(YAML_WORDS, st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,70}", fullmatch=True))
ANSWERS = st.fixed_dictionaries(
    {},
    optional={
        "project_name": st.one_of(FREE_TEXT, YAML_WORDS),
        "description": FREE_TEXT,
        "author_name": FREE_TEXT,
        "db_name": NAMES,
        "db_user": NAMES,
        "domain_name": st.one_of(YAML_WORDS, st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True)),
        "app_replicas": st.one_of(st.integers(-5, 200).map(str), YAML_WORDS),
        "http_port": st.one_of(st.integers(0, 70000).map(str), YAML_WORDS),
    },
)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answers=ANSWERS)
def test_any_answer_is_refused_cleanly_or_bakes_what_was_typed(tmp_path_factory, answers):
    out = tmp_path_factory.mktemp("property")
    # Keep the slug valid, so that the free text is what is tested.
    answers = {"project_slug": "board_site", **answers}
    baked = bake_on_command_line(out, answers)
    if baked.returncode != 0:
        assert refusal(baked), baked.stderr
        assert list(out.iterdir()) == []
        return
    project = out / "board_site"
    model = yaml.safe_load(run([COMPOSE, "config"], cwd=project).stdout)
    services = model["services"]
    expected = {key: answers.get(key) for key in ("db_name", "db_user", "domain_name")}
    resolved = {
        "db_name": services["db"]["environment"]["MYSQL_DATABASE"],
        "db_user": services["app"]["environment"]["DB_USER"],
        "domain_name": services["haproxy"]["environment"]["DOMAIN_NAME"],
    }
    for key, typed in expected.items():
        if typed is not None:
            assert resolved[key] == typed, key
    if "app_replicas" in answers:
        assert services["app"]["deploy"]["replicas"] == int(answers["app_replicas"])
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert metadata["description"] == answers.get("description", metadata["description"])
    check = run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=project / "django",
        env=clean_env(),
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


# The README and its pages under docs/: English and Korean twins that must
# not drift apart, linked to each other and to nothing that is not there.

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def readme_structure(text):
    """What a translation must keep: the heading levels in order, every code
    block as it is, and every inline code span (commands, files, variables)."""
    prose = FENCE.sub("", text)
    return {
        "headings": [len(hashes) for hashes in re.findall(r"^(#+) ", prose, re.MULTILINE)],
        "code blocks": FENCE.findall(text),
        "inline code": sorted(re.findall(r"`([^`\n]+)`", prose)),
        "table rows": len(re.findall(r"^\|", prose, re.MULTILINE)),
    }


def assert_twins(english_path, korean_path):
    english, korean = english_path.read_text(), korean_path.read_text()
    assert f"]({korean_path.name})" in english and f"]({english_path.name})" in korean
    english_structure, korean_structure = readme_structure(english), readme_structure(korean)
    for part, expected in english_structure.items():
        assert korean_structure[part] == expected, f"{korean_path.name}: {part} differ"


def test_every_baked_page_in_english_has_its_korean_twin_covering_the_same_ground(
    variant_project,
):
    english = guides(variant_project)
    assert [page.with_suffix(".ko.md") for page in english] == guides(variant_project, ".ko.md")
    for page in english:
        assert_twins(page, page.with_suffix(".ko.md"))


def headings(page):
    return re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.MULTILINE)


def anchors(page):
    """The anchors GitHub gives a page's headings: lower case, punctuation
    dropped (letters of any script kept), spaces as hyphens."""
    return {re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-") for text in headings(page)}


def test_every_link_in_the_baked_pages_leads_to_a_page_and_heading_the_bake_wrote(
    variant_project,
):
    """What a bake leaves out (the Kubernetes page, say) no page links to;
    the README links every page of docs/ in its language."""
    for suffix in (".md", ".ko.md"):
        readme, *pages = guides(variant_project, suffix)
        broken = []
        for page in (readme, *pages):
            for target in LINK.findall(FENCE.sub("", page.read_text())):
                path, _, anchor = target.partition("#")
                linked = (page.parent / path).resolve() if path else page
                if not linked.is_file() or anchor and anchor not in anchors(linked):
                    broken.append(f"{page.relative_to(variant_project)}: {target}")
        assert broken == []
        listed = {(readme.parent / target).resolve() for target in LINK.findall(readme.read_text())}
        assert set(pages) <= listed, "a page of docs/ the README does not link"


def test_a_bake_has_every_page_but_kubernetes_whatever_the_kubernetes_answer(bake):
    """Logs, metrics and the runbook are for every bake (they once sat inside
    the Kubernetes section's condition, and left every other bake)."""

    def outline(project):
        pages = guides(project) + guides(project, ".ko.md")
        return {page.relative_to(project): headings(page) for page in pages}

    without, with_manifests = outline(bake()), outline(bake(kubernetes=True))
    kubernetes = {Path("docs/kubernetes.md"), Path("docs/kubernetes.ko.md")}
    assert kubernetes <= set(with_manifests)
    assert without == {page: its for page, its in with_manifests.items() if page not in kubernetes}


def test_the_template_readmes_in_english_and_korean_cover_the_same_ground():
    assert_twins(TEMPLATE / "README.md", TEMPLATE / "README.ko.md")
    assert_twins(TEMPLATE / "CONTRIBUTING.md", TEMPLATE / "CONTRIBUTING.ko.md")
    assert_twins(TEMPLATE / "bench/README.md", TEMPLATE / "bench/README.ko.md")


def git(*command, cwd):
    """git, as someone with no git configuration of their own."""
    identity = ["-c", "user.name=Someone", "-c", "user.email=someone@example.org"]
    return run(["git", *identity, *command], cwd=cwd).stdout


@pytest.fixture
def template_repository(tmp_path):
    """The template as a repository of its own, its working tree committed:
    cruft bakes from a commit."""
    template = tmp_path / "template"
    caches = shutil.ignore_patterns(".git", ".hypothesis", "__pycache__", ".*_cache")
    shutil.copytree(TEMPLATE, template, ignore=caches)
    git("init", "-q", cwd=template)
    git("add", "-A", cwd=template)
    git("commit", "-qm", "the version baked", cwd=template)
    return template


def test_a_bake_through_cruft_refuses_an_answer_first_in_one_line(template_repository, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    answers = json.dumps({"mysql_version": "5.7"})
    command = [tool("cruft"), "create", "--no-input", template_repository, "--output-dir", out,
               "--extra-context", answers]  # fmt: skip
    refused = run(command, env=clean_env(), check=False)
    assert refused.returncode != 0
    first = refused.stderr.lstrip().splitlines()[0]
    assert first == "ERROR: mysql_version '5.7' is not offered: choose 8.4, 9.7"
    assert list(out.iterdir()) == []


def test_a_template_update_keeps_the_users_edits_env_and_secrets(template_repository, tmp_path):
    # The bake's version, then a later one that changes a file the user edits.
    template = template_repository
    cruft = tool("cruft")
    run([cruft, "create", "--no-input", template, "--output-dir", tmp_path], env=clean_env())
    project = tmp_path / "community_board"
    # The answers and the template's commit, for the update.
    recorded = json.loads((project / ".cruft.json").read_text())
    assert recorded["commit"] == git("rev-parse", "HEAD", cwd=template).strip()
    assert recorded["context"]["cookiecutter"]["use_apache"] is True

    # The user's project: in git, a line of their own in nginx.conf, a .env.
    conf = project / "nginx/nginx.conf"
    conf.write_text("# my own line\n" + conf.read_text())
    (project / ".env").write_text("MY_SETTING=mine\n")
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-qm", "baked, then edited", cwd=project)
    kept = {path.name: path.read_bytes() for path in (project / "secrets").iterdir()}
    key = (project / "backup-private-key.pem").read_bytes()

    later = template / PROJECT_TEMPLATE.name / "nginx/nginx.conf"
    later.write_text(later.read_text().replace("gzip on;", "gzip on;\n    # a later template"))
    git("commit", "-qam", "a later version", cwd=template)
    run([cruft, "update", "--skip-apply-ask"], cwd=project, env=clean_env())
    updated = conf.read_text()
    assert updated.startswith("# my own line\n")
    assert "# a later template" in updated
    assert (project / ".env").read_text() == "MY_SETTING=mine\n"
    assert {path.name: path.read_bytes() for path in (project / "secrets").iterdir()} == kept
    assert (project / "backup-private-key.pem").read_bytes() == key
    assert not list(project.rglob("*.rej"))

    # Changing an answer goes the same way: the other web server's files go.
    git("commit", "-qam", "the later version", cwd=project)
    answer = json.dumps({"use_apache": False})
    run([cruft, "update", "--skip-apply-ask", "--variables-to-update", answer], cwd=project,
        env=clean_env())  # fmt: skip
    assert not (project / "apache").exists()
    assert conf.read_text() == updated
    assert "apache" not in (project / "docker-compose.yml").read_text()
