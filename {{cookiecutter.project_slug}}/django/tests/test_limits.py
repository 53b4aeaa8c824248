"""What one client may cost the site: password guesses, a search, a post's length."""

import pytest
from django.db import connection
from django.test import RequestFactory

from board.models import Post
from board.views import LatestPosts, PostListView

from {{ cookiecutter.project_slug }}.client import client_address

pytestmark = pytest.mark.django_db

GUESSER, OWNER = "203.0.113.7", "198.51.100.8"


def log_in(client, path, username, password, address):
    """A log-in form posted from `address`, as the web servers pass it on."""
    return client.post(
        path, {"username": username, "password": password}, HTTP_X_FORWARDED_FOR=address
    )


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_a_guesser_is_refused_with_429_and_the_owner_still_logs_in(
    client, settings, make_user, password, path
):
    make_user("owner", is_staff=True)
    answers = [log_in(client, path, "owner", f"guess-{n}", GUESSER) for n in range(12)]
    statuses = [answer.status_code for answer in answers]
    limit = settings.AXES_FAILURE_LIMIT
    assert statuses[: limit - 1] == [200] * (limit - 1), statuses
    assert set(statuses[limit - 1 :]) == {429}, statuses
    locked = answers[-1]
    assert "Too many log-in attempts" in locked.text
    assert int(locked["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    # The right password from the guesser's address is refused too ...
    assert log_in(client, path, "owner", password, GUESSER).status_code == 429
    # ... while the owner, from their own address, gets in at once.
    assert log_in(client, path, "owner", password, OWNER).status_code == 302


def test_a_successful_log_in_starts_the_count_afresh(client, settings, author, password):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert log_in(client, "/accounts/login/", "author", "wrong", OWNER).status_code == 200
    assert log_in(client, "/accounts/login/", "author", password, OWNER).status_code == 302
    client.logout()
    for _ in range(limit - 1):
        assert log_in(client, "/accounts/login/", "author", "wrong", OWNER).status_code == 200


def test_the_lockout_page_is_translated(client, settings, author):
    settings.AXES_FAILURE_LIMIT = 1
    client.cookies["django_language"] = "ko"
    answer = log_in(client, "/accounts/login/", "author", "wrong", GUESSER)
    assert answer.status_code == 429
    assert "로그인 시도가 너무 많습니다" in answer.text


@pytest.mark.parametrize(
    ("headers", "address"),
    [
        ({"REMOTE_ADDR": "10.0.0.5"}, "10.0.0.5"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "192.0.2.1"}, "192.0.2.1"),
        # A web server's own port, reached from the host: whatever the client
        # wrote comes first, the address the web server saw last.
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 192.0.2.1"}, "192.0.2.1"),
    ],
)
def test_the_client_is_the_last_address_a_web_server_passed_on(headers, address):
    assert client_address(RequestFactory().get("/", **headers)) == address


def slow_list(monkeypatch, seconds):
    """The post list made to take `seconds` in the database: a search's query,
    and the count of the list without a search."""
    get_queryset, count = PostListView.get_queryset, LatestPosts.count

    def slow_queryset(view):
        posts = get_queryset(view)
        if not view.search_query():
            return posts
        return posts.extra(where=[f"SLEEP({seconds}) = 0"])  # noqa: S610 (our own SQL)

    def slow_count(posts):
        with connection.cursor() as cursor:
            # As the search's: a statement over a table, which its limit stops.
            cursor.execute("SELECT COUNT(*) FROM board_post WHERE SLEEP(%s) = 0", [seconds])
        return count(posts)

    monkeypatch.setattr(PostListView, "get_queryset", slow_queryset)
    monkeypatch.setattr(LatestPosts, "count", slow_count)


@pytest.mark.skipif(connection.vendor != "mysql", reason="MySQL's and MariaDB's own time limit")
def test_a_search_past_its_time_limit_is_stopped_with_a_page_that_says_so(
    client, settings, monkeypatch, post
):
    settings.SEARCH_TIME_LIMIT = 0.2
    slow_list(monkeypatch, 1)
    answer = client.get("/", {"q": "board"})
    assert answer.status_code == 200
    assert "This search took too long and was stopped" in answer.text
    # The limit was for that search only: the connection's next query may
    # take longer, and the list without a search is not limited.
    with connection.cursor() as cursor:
        cursor.execute("SELECT SLEEP(0.4)")
    assert client.get("/").status_code == 200


def test_a_search_within_its_time_limit_is_served(client, post):
    answer = client.get("/", {"q": "board"})
    assert answer.status_code == 200 and "Hello board" in answer.text


def test_the_forms_state_their_length_limits_and_keep_them(client, author, post):
    client.force_login(author)
    form = client.get("/posts/new/").text
    assert "At most 200 characters." in form and "At most 10,000 characters." in form
    assert 'maxlength="10000"' in form
    too_long = client.post("/posts/new/", {"title": "Long", "content": "가" * 10_001})
    assert too_long.status_code == 200 and not Post.objects.filter(title="Long").exists()
    just_right = client.post("/posts/new/", {"title": "Long", "content": "가" * 10_000})
    assert just_right.status_code == 302
    assert "At most 2,000 characters." in client.get(post.get_absolute_url()).text
