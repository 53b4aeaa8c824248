"""The board's pages: list, search, detail, create, edit, delete, comments."""

import re
import uuid

import pytest
from django.db import connection
from django.db.models.sql.query import Query
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from board.models import Comment, Post
from board.views import LISTED_POSTS, LatestPosts

pytestmark = pytest.mark.django_db


@pytest.fixture
def many_posts(author):
    return [
        Post.objects.create(author=author, title=f"Post {number:02}", content=f"Body {number}")
        for number in range(1, 26)
    ]


def titles(response):
    return [post.title for post in response.context["posts"]]


def test_post_list_shows_posts_with_their_author(client, post):
    response = client.get("/")
    assert response.status_code == 200
    assert "Hello board" in response.text
    assert "author" in response.text


def test_post_list_shows_ten_posts_per_page_newest_first(client, many_posts):
    first_page = client.get("/")
    assert titles(first_page) == [f"Post {number:02}" for number in range(25, 15, -1)]
    last_page = client.get("/?page=3")
    assert titles(last_page) == [f"Post {number:02}" for number in range(5, 0, -1)]
    assert client.get("/?page=4").status_code == 404


def test_search_matches_title_or_content_and_keeps_the_query_when_paging(client, author):
    Post.objects.create(author=author, title="Cats", content="meow")
    Post.objects.create(author=author, title="Dogs", content="they chase CATS")
    Post.objects.create(author=author, title="Birds", content="tweet")
    for number in range(10):
        Post.objects.create(author=author, title=f"Cat {number}", content="x")

    response = client.get("/", {"q": "cat"})
    assert "Birds" not in titles(response)
    assert response.context["paginator"].count == 12
    assert 'href="?q=cat&amp;page=2"' in response.text

    second_page = client.get("/", {"q": "cat", "page": 2})
    assert set(titles(second_page)) <= {"Cats", "Dogs"} | {f"Cat {n}" for n in range(10)}
    assert len(titles(second_page)) == 2


def test_search_without_match_says_so(client, post):
    response = client.get("/", {"q": "nothing like this"})
    assert titles(response) == []
    assert "No posts match your search." in response.text


def test_post_detail_shows_title_content_and_comments(client, post, stranger):
    Comment.objects.create(post=post, author=stranger, content="Nice one")
    response = client.get(f"/posts/{post.pk}/")
    assert response.status_code == 200
    assert "<h1>Hello board</h1>" in response.text
    assert "First post." in response.text
    assert "Nice one" in response.text


def test_missing_post_is_404(client, db):
    assert client.get("/posts/999999/").status_code == 404


def test_creating_a_post_requires_login(client, db):
    response = client.get("/posts/new/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/posts/new/"


def test_creating_a_post_redirects_to_it(client, author):
    client.force_login(author)
    response = client.post("/posts/new/", {"title": "New one", "content": "Some text"})
    post = Post.objects.get(title="New one")
    assert response.status_code == 302
    assert response["Location"] == f"/posts/{post.pk}/"
    assert post.author == author


def test_creating_a_post_without_a_title_shows_the_form_again(client, author):
    client.force_login(author)
    response = client.post("/posts/new/", {"title": "", "content": "Some text"})
    assert response.status_code == 200
    assert response.context["form"].errors["title"]
    assert not Post.objects.exists()


def form_id(page):
    """The ID that a form's page gives it, as a browser sends it back."""
    return re.search(r'name="submission" value="([0-9a-f-]{36})"', page.text).group(1)


def test_a_new_post_form_sent_twice_saves_one_post(client, author):
    # A double click, or a browser sending the form again.
    client.force_login(author)
    form = {"title": "Once", "content": "Text", "submission": form_id(client.get("/posts/new/"))}
    first, second = client.post("/posts/new/", form), client.post("/posts/new/", form)
    post = Post.objects.get()
    assert first["Location"] == second["Location"] == post.get_absolute_url()


def test_a_form_edited_after_going_back_saves_a_second_post(client, author):
    # A browser going back shows the page as it was, its ID included.
    client.force_login(author)
    form = {"title": "First", "content": "Text", "submission": form_id(client.get("/posts/new/"))}
    client.post("/posts/new/", form)
    client.post("/posts/new/", form | {"title": "Second"})
    assert sorted(Post.objects.values_list("title", flat=True)) == ["First", "Second"]


def test_each_new_post_page_saves_a_post_of_its_own(client, author):
    client.force_login(author)
    pages = [client.get("/posts/new/") for _ in range(2)]
    for page in pages:
        client.post("/posts/new/", {"title": "Same", "content": "x", "submission": form_id(page)})
    assert Post.objects.filter(title="Same").count() == 2


def test_a_members_form_id_never_meets_anothers(client, author, stranger):
    # Unique per author, so that an ID sent by someone else saves their own post.
    submission = str(uuid.uuid4())
    for member in (author, stranger):
        client.force_login(member)
        form = {"title": member.username, "content": "x", "submission": submission}
        assert client.post("/posts/new/", form).status_code == 302
    assert sorted(Post.objects.values_list("title", flat=True)) == ["author", "stranger"]


def test_author_can_edit_their_post(client, post, author):
    client.force_login(author)
    assert client.get(f"/posts/{post.pk}/edit/").status_code == 200
    response = client.post(f"/posts/{post.pk}/edit/", {"title": "Edited", "content": "New"})
    assert response.status_code == 302
    post.refresh_from_db()
    assert (post.title, post.content) == ("Edited", "New")


def test_another_user_cannot_edit_or_delete_a_post(client, post, stranger):
    client.force_login(stranger)
    for url in (f"/posts/{post.pk}/edit/", f"/posts/{post.pk}/delete/"):
        assert client.get(url).status_code == 403
        assert client.post(url, {"title": "Hacked", "content": "x"}).status_code == 403
    post.refresh_from_db()
    assert post.title == "Hello board"


def test_anonymous_user_is_sent_to_login_instead_of_editing(client, post):
    response = client.post(f"/posts/{post.pk}/edit/", {"title": "Hacked", "content": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_edit_and_delete_buttons_show_only_to_those_allowed(client, post, stranger):
    edit_url = f"/posts/{post.pk}/edit/"
    assert edit_url not in client.get(post.get_absolute_url()).text
    client.force_login(stranger)
    assert edit_url not in client.get(post.get_absolute_url()).text
    client.force_login(post.author)
    assert edit_url in client.get(post.get_absolute_url()).text


def test_staff_can_edit_and_delete_any_post(client, post, staff):
    client.force_login(staff)
    response = client.post(f"/posts/{post.pk}/edit/", {"title": "Moderated", "content": "x"})
    assert response.status_code == 302
    assert client.post(f"/posts/{post.pk}/delete/").status_code == 302
    assert not Post.objects.exists()


def test_author_deletes_a_post_after_confirming(client, post, author):
    client.force_login(author)
    confirm = client.get(f"/posts/{post.pk}/delete/")
    assert confirm.status_code == 200
    assert Post.objects.filter(pk=post.pk).exists()
    response = client.post(f"/posts/{post.pk}/delete/")
    assert response.status_code == 302
    assert response["Location"] == reverse("board:post_list")
    assert not Post.objects.exists()


def test_logged_in_user_adds_a_comment(client, post, stranger):
    client.force_login(stranger)
    response = client.post(f"/posts/{post.pk}/comments/", {"content": "Welcome!"})
    comment = Comment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/posts/{post.pk}/#comment-{comment.pk}"
    assert (comment.post, comment.author, comment.content) == (post, stranger, "Welcome!")


def test_a_comment_form_sent_twice_saves_one_comment(client, post, stranger):
    client.force_login(stranger)
    form = {"content": "Welcome!", "submission": form_id(client.get(post.get_absolute_url()))}
    locations = {client.post(f"/posts/{post.pk}/comments/", form)["Location"] for _ in range(2)}
    comment = Comment.objects.get()
    assert locations == {f"/posts/{post.pk}/#comment-{comment.pk}"}


def test_commenting_requires_login_and_returns_to_the_post(client, post):
    response = client.post(f"/posts/{post.pk}/comments/", {"content": "Hi"})
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/posts/{post.pk}/"
    assert not Comment.objects.exists()


def test_empty_comment_is_refused_with_the_error_on_the_post_page(client, post, stranger):
    client.force_login(stranger)
    response = client.post(f"/posts/{post.pk}/comments/", {"content": ""})
    assert response.status_code == 200
    assert response.context["comment_form"].errors["content"]
    assert not Comment.objects.exists()


def test_comments_are_added_by_post_only(client, post, stranger):
    client.force_login(stranger)
    assert client.get(f"/posts/{post.pk}/comments/").status_code == 405


def queries_for_the_post_list(client):
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


def test_post_list_runs_as_many_queries_whatever_the_posts_and_comments(client, author, stranger):
    # Authors and comment counts come with the posts, not one query per post.
    Post.objects.create(author=author, title="Alone", content="Body")
    few = queries_for_the_post_list(client)
    for number in range(25):
        post = Post.objects.create(author=stranger, title=f"Post {number}", content="Body")
        for commenter in (author, stranger):
            Comment.objects.create(post=post, author=commenter, content="A comment")
    assert queries_for_the_post_list(client) == few <= 2  # the page's count, then its posts


def test_post_list_shows_the_rows_its_queryset_gives_on_every_page(client, many_posts, author):
    # Without a search, the list runs its SQL compiled once (board/compiled.py):
    # still the queryset's rows, each value as Django makes it (an aware time).
    Comment.objects.create(post=many_posts[20], author=author, content="A comment")
    for page in (1, 2, 3):
        shown = client.get(f"/?page={page}").context["posts"]
        assert list(shown) == list(LISTED_POSTS[(page - 1) * 10 : page * 10])
    assert shown[0].created_at.tzinfo is not None


def test_post_list_compiles_its_queries_once_not_for_every_reader(client, many_posts, monkeypatch):
    client.get("/")
    compiled = []
    get_compiler = Query.get_compiler

    def counted(query, *args, **kwargs):
        compiled.append(query.model)
        return get_compiler(query, *args, **kwargs)

    monkeypatch.setattr(Query, "get_compiler", counted)
    assert client.get("/?page=2").status_code == 200
    assert Post not in compiled


def test_a_list_counted_empty_shows_no_posts_though_some_came_since(
    client, many_posts, monkeypatch
):
    # Counted before the posts came: the page's slice is empty, which is no
    # LIMIT at all to Django's SQL.
    monkeypatch.setattr(LatestPosts, "count", lambda self: 0)
    response = client.get("/")
    assert list(response.context["posts"]) == []
    assert "No posts yet" in response.text


def test_post_list_counts_each_posts_comments(client, post, author, stranger):
    for commenter in (author, stranger, stranger):
        Comment.objects.create(post=post, author=commenter, content="A comment")
    Post.objects.create(author=author, title="Quiet", content="Body")
    counts = {p.title: p.comment_count for p in client.get("/").context["posts"]}
    assert counts == {"Hello board": 3, "Quiet": 0}


def disk_tables_made_by(action):
    """How many temporary tables on disk `action` made MySQL create in this
    session. (In memory, MariaDB's subquery cache makes one per query.)"""

    def made():
        with connection.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Created_tmp_disk_tables'")
            return int(cursor.fetchone()[1])

    before = made()
    action()
    return made() - before


@pytest.mark.skipif(connection.vendor != "mysql", reason="MySQL's own counter")
def test_post_list_makes_no_temporary_table_on_disk(client, many_posts):
    for post in many_posts:
        Comment.objects.create(post=post, author=post.author, content="A comment")
    for page in ("/", "/?page=2", "/?q=Post"):
        assert disk_tables_made_by(lambda page=page: client.get(page)) == 0, page


def test_pages_are_translated_to_korean(client, post):
    response = client.get("/", headers={"accept-language": "ko"})
    assert '<html lang="ko">' in response.text
    assert "글 목록" in response.text


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/accounts/signup/"])
def test_every_page_carries_the_project_name(client, settings, url):
    # The login view has a site_name of its own (the request's host).
    brand = f'<a class="brand" href="/">{escape(settings.PROJECT_NAME)}</a>'
    assert brand in client.get(url).text


def test_the_post_list_shows_each_change_at_once_though_its_rendering_is_kept(client, author, post):
    client.get("/")  # rendered, and kept
    Post.objects.filter(pk=post.pk).update(title="Renamed in bulk")  # updated_at stays
    assert "Renamed in bulk" in client.get("/").text
    Comment.objects.create(post=post, author=author, content="First!")
    assert "1 comment" in client.get("/").text
    author.username = "renamed-author"
    author.save()
    assert "renamed-author" in client.get("/").text
    assert "댓글 1개" in client.get("/", headers={"accept-language": "ko"}).text
