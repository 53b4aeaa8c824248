"""Mail written to the log, not sent: what `console://` in EMAIL_URL means
(the default, until a mail server is named; docs/mail.md).

Django's console backend prints each message to stdout, many lines each,
around the logging system: in a stack that logs one JSON object per line
(LOG_FORMAT=json) every message would break that. Here each message is one
log record, formatted like every other line.
"""

import logging

from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger(__name__)


class LogEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        for message in email_messages:
            logger.warning(
                "Mail not sent (no EMAIL_URL), to %s: %s\n%s",
                ", ".join(message.recipients()),
                message.subject,
                message.body,
            )
        return len(email_messages)
