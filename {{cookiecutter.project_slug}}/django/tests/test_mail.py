"""Mail: a forgotten password reset by a link, a password changed, errors to ADMINS."""

import json
import logging
import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail
from django.db.models import F

from board.models import ResetMail

from {{ cookiecutter.project_slug }}.logs import line_formatter

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-pass-phrase"


@pytest.fixture(autouse=True)
def site(settings):
    settings.PUBLIC_HOST = "board.example.com:8443"


@pytest.fixture
def member(make_user):
    return make_user("member", email="member@example.com")


def ask_for_a_link(client, address="member@example.com", **extra):
    response = client.post("/accounts/password_reset/", {"email": address}, **extra)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"


def the_link_in(message):
    return re.search(r"^(https?)://([^/\s]+)(/accounts/reset/\S+)$", message.body, re.M)


def test_signup_keeps_an_optional_address_for_reset_links(client):
    for username, email in (("with", "with@example.com"), ("without", "")):
        form = {"username": username, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
        assert client.post("/accounts/signup/", {**form, "email": email}).status_code == 302
        assert get_user_model().objects.get(username=username).email == email


def test_a_reset_link_sets_a_new_password_once(client, member, password, settings):
    ask_for_a_link(client)
    [message] = mail.outbox
    assert message.to == ["member@example.com"]
    assert settings.PROJECT_NAME in message.subject
    path = the_link_in(message).group(3)

    form = client.get(path, follow=True)
    assert form.context["validlink"]
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert done["Location"] == "/accounts/reset/done/"

    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert not member.check_password(password)
    # Used once, the link is spent.
    assert not client.get(path, follow=True).context["validlink"]


@pytest.mark.parametrize(("minutes", "works"), [(59, True), (61, False)])
def test_a_reset_link_works_within_an_hour(client, member, monkeypatch, minutes, works):
    # It travels by mail, and its first request is in the access logs.
    ask_for_a_link(client)
    path = the_link_in(mail.outbox[0]).group(3)
    later = datetime.now() + timedelta(minutes=minutes)
    monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: later)
    assert client.get(path, follow=True).context["validlink"] == works


def test_the_link_names_the_site_not_the_host_the_client_sent(client, member, settings):
    settings.PASSWORD_RESET_MAIL_INTERVAL = timedelta(0)
    ask_for_a_link(client, HTTP_HOST="127.0.0.1")
    ask_for_a_link(client, HTTP_HOST="localhost", secure=True)
    links = [the_link_in(message).group(1, 2) for message in mail.outbox]
    assert links == [("http", "board.example.com:8443"), ("https", "board.example.com:8443")]


def test_an_unknown_address_gets_the_same_page_and_no_mail(client, member):
    ask_for_a_link(client, "nobody@example.com")
    assert mail.outbox == []


def test_a_member_gets_one_link_per_interval_however_often_asked(client, member, settings):
    settings.PASSWORD_RESET_MAIL_INTERVAL = timedelta(minutes=5)
    for _ in range(5):
        ask_for_a_link(client)
    assert len(mail.outbox) == 1
    # Once the interval has passed, another.
    ResetMail.objects.update(sent_at=F("sent_at") - timedelta(minutes=5))
    ask_for_a_link(client)
    assert len(mail.outbox) == 2


def test_a_reset_mail_speaks_the_readers_language(client, member):
    ask_for_a_link(client, HTTP_ACCEPT_LANGUAGE="ko")
    assert "새 비밀번호" in mail.outbox[0].subject
    assert "안녕하세요" in mail.outbox[0].body


def test_a_changed_password_ends_the_other_sessions(client, member, password):
    elsewhere = type(client)()
    elsewhere.force_login(member)
    client.force_login(member)
    wrong = client.post(
        "/accounts/password_change/",
        {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert wrong.status_code == 200
    assert wrong.context["form"].errors["old_password"]

    changed = client.post(
        "/accounts/password_change/",
        {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed["Location"] == "/accounts/password_change/done/"
    assert client.get("/").context["user"] == member
    assert not elsewhere.get("/").context["user"].is_authenticated


def test_the_password_pages_are_for_members_only(client):
    response = client.get("/accounts/password_change/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_server_error_is_mailed_to_the_admins(client, settings, monkeypatch):
    settings.ADMINS = [("ops@example.com", "ops@example.com")]
    client.raise_request_exception = False

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a view")

    monkeypatch.setattr("board.views.PostListView.get_queryset", broken)
    assert client.get("/").status_code == 500
    [message] = mail.outbox
    assert message.to == ["ops@example.com"]
    assert "RuntimeError" in message.body


def test_without_a_mail_server_a_message_is_one_json_log_line(settings, caplog):
    # As the stack logs (LOG_FORMAT=json): Django's console backend would
    # print the message's many lines around the logging system.
    settings.EMAIL_BACKEND = "{{ cookiecutter.project_slug }}.mail_log.LogEmailBackend"
    with caplog.at_level(logging.WARNING):
        sent = mail.send_mail("A subject", "A body\nof two lines", None, ["someone@example.com"])
    assert sent == 1
    [record] = [r for r in caplog.records if r.name.endswith("mail_log")]
    line = line_formatter().format(record)
    assert "\n" not in line
    message = json.loads(line)["message"]
    assert "someone@example.com" in message and "of two lines" in message
