from django.contrib import admin

from .models import Comment, Post


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    raw_id_fields = ["author"]


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["title", "author", "created_at", "updated_at"]
    list_filter = ["created_at"]
    search_fields = ["title", "content", "author__username"]
    raw_id_fields = ["author"]
    inlines = [CommentInline]
    list_select_related = ["author"]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "post", "author", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["content", "author__username", "post__title"]
    raw_id_fields = ["post", "author"]
    list_select_related = ["post", "author"]
