"""What the app lets the web servers keep (page_cache.py): an anonymous
reader's pages, briefly; nothing that belongs to one reader."""
{%- if cookiecutter.use_nginx is yes %}

import time
{%- endif %}

import pytest
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import Client
from django.utils.cache import get_max_age

pytestmark = pytest.mark.django_db


def is_public(response):
    return "public" in response["Cache-Control"] and "private" not in response["Cache-Control"]


@pytest.mark.parametrize("method", ["get", "head"])
def test_an_anonymous_readers_pages_are_public_for_a_second(client, post, method):
    for url in ("/", post.get_absolute_url(), "/?q=hello"):
        response = getattr(client, method)(url)
        assert response.status_code == 200
        assert is_public(response), url
        assert get_max_age(response) == 1
        assert not response.cookies
        assert {"Cookie", "Accept-Language", "X-Forwarded-Proto"} <= {
            name.strip() for name in response["Vary"].split(",")
        }
{%- if cookiecutter.use_nginx is yes %}


def test_nginx_keeps_no_copy_past_the_lifetime(client, author, post, settings):
    # Nginx keeps a copy through the second X-Accel-Expires names.
    settings.PAGE_CACHE_SECONDS = 3
    asked = time.time()
    last = int(client.get("/")["X-Accel-Expires"].removeprefix("@"))
    answered = time.time()
    assert asked + 3 - 1 < last + 1 <= answered + 3
    client.force_login(author)
    assert "X-Accel-Expires" not in client.get("/")
{%- endif %}


def test_the_lifetime_is_a_setting_and_zero_keeps_every_page_private(client, post, settings):
    settings.PAGE_CACHE_SECONDS = 30
    assert get_max_age(client.get("/")) == 30
    settings.PAGE_CACHE_SECONDS = 0
    assert not is_public(client.get("/"))
    assert "private" in client.get("/")["Cache-Control"]


def test_an_anonymous_page_carries_no_csrf_token(post):
    # The language switch is on every page; its form needs none (urls.py).
    csrf_client = Client(enforce_csrf_checks=True)
    for url in ("/", post.get_absolute_url()):
        response = csrf_client.get(url)
        assert "csrfmiddlewaretoken" not in response.text
    switched = csrf_client.post("/i18n/setlang/", {"language": "ko", "next": "/"})
    assert switched.status_code == 302
    assert switched.cookies["django_language"].value == "ko"


def test_a_logged_in_readers_pages_are_private(client, author, post):
    client.force_login(author)
    for url in ("/", post.get_absolute_url()):
        response = client.get(url)
        assert "private" in response["Cache-Control"]
        assert "public" not in response["Cache-Control"]


@pytest.mark.parametrize("url", ["/accounts/login/", "/accounts/signup/"])
def test_a_page_with_a_form_token_is_private(client, url):
    response = client.get(url)
    assert response.cookies  # the CSRF cookie
    assert not is_public(response)


def test_a_page_that_shows_a_message_is_private(client, rf):
    # A message for an anonymous reader travels in a cookie; showing it
    # clears the cookie.
    message = Message(constants.INFO, "Hello, reader")
    client.cookies["messages"] = CookieStorage(rf.get("/"))._encode([message])
    response = client.get("/")
    assert "Hello, reader" in response.text
    assert not is_public(response)


def test_errors_writes_and_health_answers_are_never_public(client, post):
    assert not is_public(client.get("/posts/999999/"))
    assert not is_public(client.post("/i18n/setlang/", {"language": "en", "next": "/"}))
    assert not is_public(client.get("/healthz"))


def test_the_redirect_of_plain_http_to_https_is_private(settings):
    # Answered before most of the app runs; a web server that kept it would
    # send HTTPS readers round in circles.
    settings.SECURE_SSL_REDIRECT = True
    redirect = Client().get("/")
    assert redirect.status_code == 301
    assert "private" in redirect["Cache-Control"]
