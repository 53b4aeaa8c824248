"""Refuse answers that would bake a broken project.

Cookiecutter runs this before any file is written and removes the (still
empty) project folder when it exits non-zero. The rules live in answers.py
beside this file; every problem is reported as one line naming the prompt, so
a user can fix all answers in one go.
"""

import sys

# Cookiecutter runs a rendered copy of this file from a temporary folder: the
# rules module is found in the template's own hooks folder.
sys.path.insert(0, {{ hooks_dir | jsonify }})  # noqa: S108 (wherever the template is)
import answers  # noqa: E402

# Every answer as a JSON string literal, which is also a valid Python one: a
# quote or backslash in an answer cannot break this file. Non-ASCII text is
# written as itself (`quoted`): an escaped emoji would arrive as two lone
# surrogates, which the rules refuse as control characters. A yes/no answer
# arrives as a boolean or as text, depending on cookiecutter's version;
# local_extensions.py reads both the same way.
ANSWERS = {
{%- for key, value in cookiecutter.items() if not key.startswith("_") %}
    {{ key | jsonify }}: {{ (value | yes_no if key.startswith("use_") or key == "kubernetes" else value) | quoted }},
{%- endfor %}
}


def main():
    problems = answers.problems(ANSWERS)
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    if problems:
        return 1
    for warning in answers.warnings(ANSWERS):
        print(f"WARNING: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
