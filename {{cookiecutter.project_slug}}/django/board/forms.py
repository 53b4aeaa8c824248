import uuid

from django import forms
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm, UserCreationForm
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from {{ cookiecutter.project_slug }}.database_unavailable import repeatable_writes

from .models import Comment, Post, ResetMail


def at_most(model, field):
    """The form's own words for a field's length limit, in the reader's language."""
    limit = model._meta.get_field(field).max_length
    return _("At most %(limit)s characters.") % {"limit": number_format(limit, force_grouping=True)}


class SavedOnce(forms.ModelForm):
    """A form for a new row, saved once per page the form came on and what
    was written on it: the page carries a fresh ID, and the row keeps a key
    made of that ID and its words (board/models.py, Submitted). The same
    form sent again (a double click, a browser sending it again, or the app
    running a request again after losing the database under way:
    {{ cookiecutter.project_slug }}/database_unavailable.py) gets the row it
    saved the first time; one edited after going back saves a new row."""

    submission = forms.UUIDField(widget=forms.HiddenInput, required=False, initial=uuid.uuid4)

    def save_once(self, **fields):
        """The new row with `fields` set, saved now or by an earlier send."""
        row = self.instance
        for name, value in fields.items():
            setattr(row, name, value)
        page = self.cleaned_data["submission"]
        if page is None:  # a client that did not send the page's ID
            return self.save()
        words = "\0".join(str(self.cleaned_data[name]) for name in self._meta.fields)
        row.submission = uuid.uuid5(page, words)
        try:
            with repeatable_writes(), transaction.atomic():
                return self.save()
        except IntegrityError:
            earlier = type(row).objects.filter(author=row.author, submission=row.submission).first()
            if earlier is None:
                raise  # not this submission's row (a post deleted meanwhile, say)
            return earlier


class PostForm(SavedOnce):
    class Meta:
        model = Post
        fields = ["title", "content"]
        widgets = {"content": forms.Textarea(attrs={"rows": 12})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.Meta.fields:
            self.fields[name].help_text = at_most(Post, name)
        if self.instance.pk:  # an edit: saving it again changes nothing more
            del self.fields["submission"]


class CommentForm(SavedOnce):
    class Meta:
        model = Comment
        fields = ["content"]
        widgets = {"content": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["content"].help_text = at_most(Comment, "content")


class SignUpForm(UserCreationForm):
    """A user name and a password, as Django asks, and an address for a
    password reset link: optional, so that no one must give one."""

    email = forms.EmailField(
        label=gettext_lazy("Email"),
        required=False,
        help_text=gettext_lazy("Optional: where to send a link if you forget your password."),
    )

    class Meta(UserCreationForm.Meta):
        fields = ["username", "email"]


class RateLimitedPasswordResetForm(PasswordResetForm):
    """Django's reset form, sending each member at most one link per
    PASSWORD_RESET_MAIL_INTERVAL: asks past that are answered alike (the page
    never says whether an address has an account) and send nothing, so that
    no one, from however many addresses, can fill a member's inbox."""

    def get_users(self, email):
        return (user for user in super().get_users(email) if claim_reset_mail(user))

    def save(self, **kwargs):
        # The link names the site's public address, never the Host a client
        # sent (which could point a member's link at another site).
        return super().save(**{**kwargs, "domain_override": settings.PUBLIC_HOST})


def claim_reset_mail(user):
    """True, and the time recorded, if the member may be sent a link now. One
    conditional UPDATE (or the first INSERT), so that of two replicas asked
    at once only one sends."""
    now = timezone.now()
    claimed = ResetMail.objects.filter(
        user=user, sent_at__lte=now - settings.PASSWORD_RESET_MAIL_INTERVAL
    ).update(sent_at=now)
    if claimed:
        return True
    try:
        with transaction.atomic():
            ResetMail.objects.create(user=user, sent_at=now)
    except IntegrityError:
        return False  # sent within the interval
    return True
