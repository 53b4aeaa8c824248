"""Board pages: list, detail, create, edit, delete, comments and sign-up."""

import logging
from collections import namedtuple

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.contrib.auth.views import redirect_to_login
from django.db import OperationalError
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.generic import CreateView, DeleteView, DetailView, ListView, UpdateView

from . import search
from .compiled import Compiled
from .forms import CommentForm, PostForm, SignUpForm
from .models import Comment, Post

logger = logging.getLogger(__name__)


# What the list shows of each post, in the order of its rows.
LISTED = ("pk", "title", "author_name", "created_at", "comment_count")
Listed = namedtuple("Listed", LISTED)


def listed_posts():
    """The posts as the list shows them, newest first: one row each of exactly
    what it shows, not model instances (making those cost more than the
    query itself). Each post's comments are counted in a subquery on the
    comments' post index and its author joined: no GROUP BY, so MySQL needs
    no temporary table (a join with GROUP BY made one for every page, on disk
    for the TEXT column). The content is not read."""
    comments = Comment.objects.filter(post=OuterRef("pk")).order_by()
    comment_count = comments.values("post").annotate(count=Count("pk")).values("count")
    author_name = F(f"author__{get_user_model().USERNAME_FIELD}")
    return Post.objects.annotate(
        author_name=author_name, comment_count=Coalesce(Subquery(comment_count), 0)
    ).values_list(*LISTED, named=True)


# Built once, then compiled once (LatestPosts) or copied for each search:
# building it took a fifth of the view's time.
LISTED_POSTS = listed_posts()


class LatestPosts:
    """The list when nobody searches, as its Paginator reads it: count() for
    the number of pages, then a slice for a page's posts. Every reader of
    the board runs these two queries; compiled once (board/compiled.py), the
    page costs the app a fifth less CPU. The count is of every post, as the
    list's: each has its author."""

    posts = Compiled(LISTED_POSTS)
    # COUNT(*) as SQL: Django's Count, alone in values(), would be grouped by
    # every column of the post (a row per post).
    counted = Compiled(Post.objects.order_by().values(count=RawSQL("COUNT(*)", ())))

    def count(self):
        ((count,),) = self.counted.rows()
        return count

    def __getitem__(self, page):
        return [Listed(*row) for row in self.posts.rows(page)]


class PostListView(ListView):
    paginate_by = 10
    context_object_name = "posts"
    template_name = "board/post_list.html"

    def get_queryset(self):
        query = self.search_query()
        if not query:
            return LatestPosts()
        return LISTED_POSTS.filter(Q(title__icontains=query) | Q(content__icontains=query))

    def search_query(self):
        return self.request.GET.get("q", "").strip()

    def get(self, request, *args, **kwargs):
        query = self.search_query()
        if not query:
            return super().get(request, *args, **kwargs)
        try:
            with search.time_limit(settings.SEARCH_TIME_LIMIT):
                # Rendered within the limit: the page's queries run as the
                # template reads them.
                return super().get(request, *args, **kwargs).render()
        except OperationalError as error:
            if not search.time_limit_passed(error):
                raise
        logger.warning(
            "A search took over %s s and was stopped: %r", settings.SEARCH_TIME_LIMIT, query
        )
        context = {"query": query, "search_too_slow": True}
        return render(request, "board/post_list.html", context)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(query=self.search_query(), **kwargs)
        context["posts_shown"] = shown(context["posts"])
        return context


def shown(posts):
    """Everything the list shows of these posts, and the time zone its dates
    are in: the key of the list's rendered fragment (post_list.html), which
    so is never stale. Rendering ten posts cost more than fetching them."""
    return timezone.get_current_timezone_name(), list(posts)


class PostDetailView(DetailView):
    queryset = Post.objects.select_related("author")

    def get_context_data(self, **kwargs):
        kwargs.setdefault("comment_form", CommentForm())
        comments = self.object.comments.select_related("author")
        return super().get_context_data(comments=comments, **kwargs)


class PostCreateView(LoginRequiredMixin, CreateView):
    model = Post
    form_class = PostForm

    def form_valid(self, form):
        self.object = form.save_once(author=self.request.user)
        messages.success(self.request, _("Your post was published."))
        return redirect(self.object)


class AuthorOrStaffMixin(LoginRequiredMixin, UserPassesTestMixin):
    """Anonymous users go to the login page; other users get 403 Forbidden."""

    model = Post

    def test_func(self):
        return self.get_object().can_be_changed_by(self.request.user)


class PostUpdateView(AuthorOrStaffMixin, UpdateView):
    form_class = PostForm

    def form_valid(self, form):
        messages.success(self.request, _("Your changes were saved."))
        return super().form_valid(form)


class PostDeleteView(AuthorOrStaffMixin, DeleteView):
    success_url = reverse_lazy("board:post_list")

    def form_valid(self, form):
        messages.success(self.request, _("The post was deleted."))
        return super().form_valid(form)


@require_POST
def comment_create(request, pk):
    post = get_object_or_404(Post.objects.select_related("author"), pk=pk)
    if not request.user.is_authenticated:
        # Back to the post after login: this URL only accepts POST.
        return redirect_to_login(post.get_absolute_url())
    form = CommentForm(request.POST)
    if form.is_valid():
        comment = form.save_once(post=post, author=request.user)
        messages.success(request, _("Your comment was added."))
        return redirect(f"{post.get_absolute_url()}#comment-{comment.pk}")
    context = {
        "post": post,
        "comments": post.comments.select_related("author"),
        "comment_form": form,
    }
    return render(request, "board/post_detail.html", context)


class SignUpView(CreateView):
    form_class = SignUpForm
    template_name = "registration/signup.html"
    success_url = reverse_lazy("board:post_list")

    def form_valid(self, form):
        response = super().form_valid(form)
        # Signed in by the backend that holds the accounts (axes, the first,
        # only counts failed log-ins).
        login(self.request, self.object, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(self.request, _("Welcome, %(name)s!") % {"name": self.object.username})
        return response
