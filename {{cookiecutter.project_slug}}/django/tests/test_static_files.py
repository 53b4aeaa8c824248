"""Static files: hashed names after collectstatic, plain names before it."""

import json

import pytest
from django.core.management import call_command
from django.templatetags.static import static


@pytest.fixture
def static_root(settings, tmp_path):
    # Changing STATIC_ROOT also resets the storage, so each test starts fresh.
    settings.STATIC_ROOT = str(tmp_path / "staticfiles")
    settings.DEBUG = False
    return tmp_path / "staticfiles"


def test_plain_names_before_collectstatic_ever_ran(static_root):
    assert static("board/board.css") == "/static/board/board.css"


def test_hashed_names_after_collectstatic(static_root):
    call_command("collectstatic", interactive=False, verbosity=0)
    manifest = json.loads((static_root / "staticfiles.json").read_text())
    hashed = manifest["paths"]["board/board.css"]
    assert hashed != "board/board.css"
    assert (static_root / hashed).is_file()
    assert static("board/board.css") == f"/static/{hashed}"


def test_a_name_missing_from_the_manifest_is_still_an_error(static_root):
    call_command("collectstatic", interactive=False, verbosity=0)
    with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
        static("board/no-such-file.css")
