"""Project package: settings, URLs and the WSGI entry point.

PyMySQL stands in for mysqlclient under the name MySQLdb, which Django's MySQL
backend imports. It is pure Python, so the image needs no compiler and no
MySQL/MariaDB client library; mysqlclient built on Debian's MariaDB library
cannot even log in to MySQL 8 and newer over plain TCP ("RSA Encryption not
supported"). PyMySQL logs in over TLS instead (see DB_SSL_CA in settings.py).
It is installed here, before settings load, so every entry point (manage.py,
wsgi.py, pytest) gets it.
"""

import pymysql

pymysql.install_as_MySQLdb()
