from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("board", "0003_reset_mail"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="comment",
            name="submission",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="post",
            name="submission",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.AddConstraint(
            model_name="comment",
            constraint=models.UniqueConstraint(
                fields=("author", "submission"), name="board_comment_submitted_once"
            ),
        ),
        migrations.AddConstraint(
            model_name="post",
            constraint=models.UniqueConstraint(
                fields=("author", "submission"), name="board_post_submitted_once"
            ),
        ),
    ]
