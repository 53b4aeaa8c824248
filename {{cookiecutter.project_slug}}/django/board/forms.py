from django import forms
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from .models import Comment, Post


def at_most(model, field):
    """The form's own words for a field's length limit, in the reader's language."""
    limit = model._meta.get_field(field).max_length
    return _("At most %(limit)s characters.") % {"limit": number_format(limit, force_grouping=True)}


class PostForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = ["title", "content"]
        widgets = {"content": forms.Textarea(attrs={"rows": 12})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.Meta.fields:
            self.fields[name].help_text = at_most(Post, name)


class CommentForm(forms.ModelForm):
    class Meta:
        model = Comment
        fields = ["content"]
        widgets = {"content": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["content"].help_text = at_most(Comment, "content")
