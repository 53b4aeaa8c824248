"""Jinja helpers for this template (cookiecutter loads them via _extensions).

A yes/no prompt does not always arrive as a boolean: cookiecutter 2.7 turns
`use_nginx=no` on the command line into False, 2.6 passes the string "no".
Templates ask `{% if cookiecutter.use_nginx is yes %}` and get the same
answer either way.
"""

from jinja2.ext import Extension

YES = {"1", "true", "t", "yes", "y", "on"}
NO = {"0", "false", "f", "no", "n", "off"}


def is_yes(value):
    return str(value).strip().lower() in YES


def yes_no(value):
    """The answer as "yes" or "no"; anything else unchanged, for the pre-gen hook to refuse."""
    text = str(value).strip().lower()
    return "yes" if text in YES else "no" if text in NO else str(value)


class YesNoExtension(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.tests["yes"] = is_yes
        environment.filters["yes_no"] = yes_no
