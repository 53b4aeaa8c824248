import datetime

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import DataError, connection

from board.models import Comment, Post

pytestmark = pytest.mark.django_db


def test_post_is_named_by_its_title_and_links_to_its_page(post):
    assert str(post) == "Hello board"
    assert post.get_absolute_url() == f"/posts/{post.pk}/"


def test_posts_are_ordered_newest_first(author):
    first = Post.objects.create(author=author, title="first", content="x")
    second = Post.objects.create(author=author, title="second", content="x")
    assert list(Post.objects.all()) == [second, first]


def test_only_the_author_or_staff_can_change_a_post(post, author, stranger, staff):
    assert post.can_be_changed_by(author)
    assert post.can_be_changed_by(staff)
    assert not post.can_be_changed_by(stranger)
    assert not post.can_be_changed_by(AnonymousUser())


def test_a_post_counts_as_edited_only_after_a_later_save(post):
    assert not post.was_edited
    post.updated_at = post.created_at + datetime.timedelta(minutes=5)
    assert post.was_edited


def test_comments_are_ordered_oldest_first_and_go_with_their_post(post, stranger):
    first = Comment.objects.create(post=post, author=stranger, content="one")
    second = Comment.objects.create(post=post, author=stranger, content="two")
    assert list(post.comments.all()) == [first, second]
    assert str(first) == "stranger: one"
    post.delete()
    assert not Comment.objects.exists()


def test_text_keeps_every_unicode_character(author):
    # utf8mb4 on MySQL: four-byte characters (emoji) survive a round trip.
    post = Post.objects.create(author=author, title="안녕하세요 🎉", content="내용 😀")
    post.refresh_from_db()
    assert post.title == "안녕하세요 🎉"
    assert post.content == "내용 😀"


@pytest.mark.skipif(connection.vendor != "mysql", reason="strict mode is a MySQL setting")
def test_mysql_strict_mode_refuses_a_too_long_title_instead_of_truncating_it(author):
    with pytest.raises(DataError):
        Post.objects.create(author=author, title="x" * 201, content="too long")
