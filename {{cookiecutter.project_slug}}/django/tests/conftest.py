import pytest
from django.contrib.auth import get_user_model

from board.models import Post

from .processes import Gunicorn


@pytest.fixture(autouse=True)
def test_settings(settings):
    """Settings for speed and predictability, not for production.

    English pages whatever language the project was baked with (tests of the
    Korean translation ask for it), and a fast password hasher: the real one
    is slow on purpose, which would dominate the run time.
    """
    settings.LANGUAGE_CODE = "en"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def password():
    return "correct-horse-battery-staple"


@pytest.fixture
def make_user(db, password):
    def make(username, **extra):
        return get_user_model().objects.create_user(username, password=password, **extra)

    return make


@pytest.fixture
def author(make_user):
    return make_user("author")


@pytest.fixture
def stranger(make_user):
    return make_user("stranger")


@pytest.fixture
def staff(make_user):
    return make_user("moderator", is_staff=True)


@pytest.fixture
def post(author):
    return Post.objects.create(author=author, title="Hello board", content="First post.")


@pytest.fixture
def gunicorn(tmp_path):
    server = Gunicorn.start(tmp_path / "db.sqlite3")
    yield server
    server.stop()
