"""Project package: settings, URLs and the WSGI entry point.

PyMySQL stands in for mysqlclient under the name MySQLdb, which Django's MySQL
backend imports. It is pure Python, so the image needs no compiler and no
MySQL/MariaDB client library, and with `cryptography` installed it completes
MySQL 8's caching_sha2_password login over plain TCP (the RSA key exchange that
mysqlclient built on Debian's MariaDB library refuses with "RSA Encryption not
supported"). It is installed here, before settings load, so every entry point
(manage.py, wsgi.py, pytest) gets it.
"""

import pymysql

pymysql.install_as_MySQLdb()
