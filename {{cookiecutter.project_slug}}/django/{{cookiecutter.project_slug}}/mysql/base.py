"""Django's MySQL backend, counted for the metrics (django_prometheus's),
which waits for a database it cannot connect to, within the request's
bound (database_unavailable.py): a database restart then costs a few
seconds' wait, not failed requests."""

from django_prometheus.db.backends.mysql import base

from ..database_unavailable import connect_within_the_wait


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connect = super().get_new_connection
        return connect_within_the_wait(lambda: connect(conn_params))
