"""Sign-up, login, logout, language switch and the admin."""

import pytest
from django.contrib.auth import get_user_model

from board.models import Comment, Post

pytestmark = pytest.mark.django_db


def test_signup_creates_the_user_logs_them_in_and_redirects(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "newbie",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = get_user_model().objects.get(username="newbie")
    assert client.get("/").context["user"] == user


def test_signup_refuses_mismatched_passwords(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "newbie", "password1": "a-long-pass-phrase", "password2": "different-one"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password2"]
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_login_with_username_and_password_returns_to_next(client, author, password):
    response = client.post(
        "/accounts/login/", {"username": "author", "password": password, "next": "/posts/new/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/posts/new/"
    assert client.get("/").context["user"] == author


def test_login_with_a_wrong_password_fails(client, author):
    response = client.post("/accounts/login/", {"username": "author", "password": "wrong"})
    assert response.status_code == 200
    assert not response.context["user"].is_authenticated


def test_logout_is_a_post_and_ends_the_session(client, author):
    client.force_login(author)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert not client.get("/").context["user"].is_authenticated


def test_language_switch_sets_the_language_for_later_pages(client, db):
    response = client.post("/i18n/setlang/", {"language": "ko", "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert "글 목록" in client.get("/").text
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "Posts" in client.get("/").text


def test_admin_manages_posts_and_comments(client, post, stranger):
    admin = get_user_model().objects.create_superuser("admin", password="admin-pass-phrase")
    Comment.objects.create(post=post, author=stranger, content="Nice")
    client.force_login(admin)
    assert client.get("/admin/board/post/").status_code == 200
    assert client.get(f"/admin/board/post/{post.pk}/change/").status_code == 200
    assert client.get("/admin/board/comment/").status_code == 200
    response = client.post(f"/admin/board/post/{post.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Post.objects.exists()


def test_admin_is_closed_to_regular_users(client, stranger):
    client.force_login(stranger)
    response = client.get("/admin/board/post/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
