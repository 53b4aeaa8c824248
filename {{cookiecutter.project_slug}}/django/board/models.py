"""Posts and their comments."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


class Submitted(models.Model):
    """A row that a member's form creates, keeping a key made of the ID that
    the form's page gave it and the words written on it (board/forms.py,
    SavedOnce): the same form sent again saves no second row. Unique per
    author, so that no one's key can meet another's."""

    submission = models.UUIDField(null=True, editable=False)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["author", "submission"], name="%(app_label)s_%(class)s_submitted_once"
            )
        ]


class Post(Submitted):
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="posts",
        verbose_name=_("author"),
    )
    title = models.CharField(_("title"), max_length=200)
    # Checked by the form (TextField has no limit in MySQL): what a reader
    # reads in one go, and what a client may make the database store.
    content = models.TextField(_("content"), max_length=10_000)
    # Indexed: the post list is ordered by it, newest first.
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta(Submitted.Meta):
        # The id breaks ties, so pages never repeat or skip a post.
        ordering = ["-created_at", "-id"]
        verbose_name = _("post")
        verbose_name_plural = _("posts")

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("board:post_detail", args=[self.pk])

    @property
    def was_edited(self):
        # Creation sets both times a few microseconds apart; an edit comes later.
        return (self.updated_at - self.created_at).total_seconds() > 1

    def can_be_changed_by(self, user):
        """Only the author or a staff member may edit or delete a post."""
        return user.is_authenticated and (user.pk == self.author_id or user.is_staff)


class Comment(Submitted):
    post = models.ForeignKey(
        Post,
        on_delete=models.CASCADE,
        related_name="comments",
        verbose_name=_("post"),
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="comments",
        verbose_name=_("author"),
    )
    content = models.TextField(_("comment"), max_length=2000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta(Submitted.Meta):
        ordering = ["created_at", "id"]
        verbose_name = _("comment")
        verbose_name_plural = _("comments")

    def __str__(self):
        return f"{self.author}: {self.content[:40]}"


class ResetMail(models.Model):
    """When a member was last sent a password reset link (board/forms.py):
    in the database, so that every replica counts the same."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True
    )
    sent_at = models.DateTimeField()

    def __str__(self):
        return f"{self.user} {self.sent_at:%Y-%m-%d %H:%M}"
