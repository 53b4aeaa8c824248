"""Querysets compiled to SQL once per thread, not each time they run.

Django compiles a queryset to SQL every time it runs it. The post list runs
the same two queries for every reader who does not search, and compiling
them cost the app more CPU than running them did: a fifth of the page's.
Compiled here, once per thread, the SQL and the conversion of each value
are still Django's own, from its compiler: only the work is not repeated.
"""

import threading

from django.db import connections


class Compiled:
    """`queryset`'s SQL and the converters of its columns, as Django's
    compiler made them for this thread's connection (each thread has its own)."""

    def __init__(self, queryset):
        self.queryset = queryset
        self.per_thread = threading.local()

    def compiled(self, connection):
        """(compiler, SQL, parameters, converters) for `connection`, made once."""
        compiled = getattr(self.per_thread, "compiled", None)
        if compiled is None or compiled[0].connection is not connection:
            compiler = self.queryset.query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            columns = [column for column, _, _ in compiler.select[: compiler.col_count]]
            compiled = compiler, sql, params, compiler.get_converters(columns)
            self.per_thread.compiled = compiled
        return compiled

    def rows(self, page=None):
        """The rows, each a sequence of Python values as the queryset gives
        them; only those of `page` (a slice: from its start to its stop), if given."""
        connection = connections[self.queryset.db]
        compiler, sql, params, converters = self.compiled(connection)
        if page is not None:
            if page.start == page.stop:  # Django would write no LIMIT: every row
                return []
            sql += " " + connection.ops.limit_offset_sql(page.start, page.stop)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters:
            rows = compiler.apply_converters(rows, converters)
        return list(rows)
