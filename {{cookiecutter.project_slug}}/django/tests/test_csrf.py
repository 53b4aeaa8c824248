"""Every form that changes something refuses a POST without the CSRF token."""

import pytest
from django.test import Client

from board.models import Comment, Post

pytestmark = pytest.mark.django_db


@pytest.fixture
def csrf_client():
    # The default test client skips CSRF checks; this one enforces them.
    return Client(enforce_csrf_checks=True)


def token_from(client, url):
    """Load a page with the form, as a browser would, and read its token."""
    response = client.get(url)
    assert response.status_code == 200
    return str(response.context["csrf_token"])


def test_post_form_refuses_a_post_without_the_token(csrf_client, author):
    csrf_client.force_login(author)
    response = csrf_client.post("/posts/new/", {"title": "Forged", "content": "x"})
    assert response.status_code == 403
    assert not Post.objects.exists()


def test_post_form_accepts_a_post_with_the_token(csrf_client, author):
    csrf_client.force_login(author)
    token = token_from(csrf_client, "/posts/new/")
    response = csrf_client.post(
        "/posts/new/", {"title": "Genuine", "content": "x", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert Post.objects.filter(title="Genuine").exists()


def test_comment_delete_and_logout_refuse_a_post_without_the_token(csrf_client, post):
    csrf_client.force_login(post.author)
    assert csrf_client.post(f"/posts/{post.pk}/comments/", {"content": "x"}).status_code == 403
    assert csrf_client.post(f"/posts/{post.pk}/delete/").status_code == 403
    assert csrf_client.post("/accounts/logout/").status_code == 403
    assert not Comment.objects.exists()
    assert Post.objects.filter(pk=post.pk).exists()


def test_login_and_signup_refuse_a_post_without_the_token(csrf_client, author, password):
    login = {"username": "author", "password": password}
    assert csrf_client.post("/accounts/login/", login).status_code == 403
    signup = {"username": "x", "password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase"}
    assert csrf_client.post("/accounts/signup/", signup).status_code == 403


def test_login_accepts_a_post_with_the_token(csrf_client, author, password):
    token = token_from(csrf_client, "/accounts/login/")
    response = csrf_client.post(
        "/accounts/login/",
        {"username": "author", "password": password, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
