"""Backups: dumps restored, to any moment."""

import datetime
import time
from zoneinfo import ZoneInfo

import requests

from .clients import Browser, site_answers, unique, wait_until
from .stack import Stack

# These destroy the database (what they ask of the stack: stack.py, "Backups").

# What a post may hold, all of which must come back byte for byte.
AWKWARD_TEXT = "첫 줄\nline two: 'quoted' \"double\" \\backslash\t tab, émoji 🎉"


def write_posts(browser, label, count=3):
    titles = [unique(label) for _ in range(count)]
    for title in titles:
        assert browser.create_post(title, f"{title}\n{AWKWARD_TEXT}"), f"{title} was not saved"
    return titles


def next_second(stack: Stack):
    """The next whole second, in the site's time zone as a restore takes it;
    back once it has begun."""
    moment = int(time.time()) + 1
    time.sleep(moment - time.time() + 0.05)
    zone = ZoneInfo(stack.time_zone)
    return datetime.datetime.fromtimestamp(moment, zone).strftime("%Y-%m-%d %H:%M:%S")


def latest_dump(stack: Stack):
    return stack.backup("list").split()[-1]


def check_a_restore_to_a_point_in_time_brings_back_exactly_the_posts_before_it(stack: Stack):
    """A dump, posts after it, a moment, more posts; the database destroyed.
    Restored to the moment: exactly the posts before it, byte for byte, from
    the dump and the binary logs after it. Restored in full: every post."""
    browser = Browser(stack)
    assert browser.sign_up(unique("backup")).status_code == 302
    write_posts(browser, "before the dump")
    stack.backup("now")
    dump = latest_dump(stack)
    write_posts(browser, "before the moment")
    moment = next_second(stack)
    time.sleep(1)  # the posts after the moment are written in a later second
    after = write_posts(browser, "after the moment")
    stack.backup("now")  # copies the binary logs that the first dump needs
    everything = stack.stored_posts()
    stack.destroy_database()
    status, output = stack.restore(dump, moment)
    assert status == 0, f"restore to {moment} failed:\n{output}"
    before_moment = [post for post in everything if not any(title in post for title in after)]
    assert stack.stored_posts() == before_moment, f"restored to {moment}: not the posts before it"
    status, output = stack.restore(dump)
    assert status == 0, f"the full restore failed:\n{output}"
    assert stack.stored_posts() == everything, "restored in full: not every post"
    # The restarted replicas may have new addresses, which the web servers
    # look up again every 2 s, also after a lookup failed while none ran.
    serving = wait_until(
        lambda: takes_a_post(browser), "the site took no post after the restore", 10, 0.5
    )
    return {
        "posts restored to the moment": len(before_moment),
        "in full": len(everything),
        "taking posts again after": f"{serving:.1f} s",
    }


def takes_a_post(browser):
    try:
        return bool(browser.create_post(unique("after the restore")))
    except requests.RequestException:
        return False


# Ways a dump gets damaged, as shell scripts run in the backup service's
# backups folder on a copy of a good dump ($1): truncated; a byte changed
# with checksums made to match (as by a copy that rewrote them); replaced by
# a dump cut short, encrypted to the same certificate, checksums matching;
# a byte changed in a binary log.
DAMAGE = {
    "truncated": "head -c 300 $1/dump.sql.gz.cms > cut && mv cut $1/dump.sql.gz.cms",
    "a byte changed with matching checksums": (
        "printf X | dd of=$1/dump.sql.gz.cms bs=1 seek=2000 conv=notrunc"
        " && (cd $1 && sha256sum dump.sql.gz.cms > SHA256SUMS)"
    ),
    "cut short and encrypted anew": (
        "printf -- '-- MySQL dump\\nCREATE TABLE cut (id INT);\\n' | gzip"
        " | openssl cms -encrypt -binary -aes-256-gcm -outform DER -out $1/dump.sql.gz.cms"
        " $BACKUP_CERTIFICATE_FILE && (cd $1 && sha256sum dump.sql.gz.cms > SHA256SUMS)"
    ),
    "a binary log corrupted": (
        "log=$(ls $1/binlogs/*.cms | head -n 1) && printf X | dd of=$log bs=1 seek=200 conv=notrunc"
    ),
}


# Moments a restore must refuse, with why.
BAD_MOMENTS = {
    "2000-01-01 00:00:00": "is before dump",
    "yesterday": "the moment must read 'YYYY-MM-DD HH:MM:SS'",
    "2026-02-30 12:00:00": "there is no moment",
}


def check_a_damaged_dump_or_a_bad_moment_is_refused_and_the_live_database_left_untouched(
    stack: Stack,
):
    browser = Browser(stack)
    assert browser.sign_up(unique("backup")).status_code == 302
    write_posts(browser, "in the dump")
    stack.backup("now")
    write_posts(browser, "after the dump", 1)
    good = latest_dump(stack)
    stack.backup("now")  # gives the good dump a binary log
    damaged = "00000000T000000Z"  # sorts first, so it is never the latest
    before = stack.stored_posts()
    for damage, script in DAMAGE.items():
        stack.backup_shell(f"rm -rf {damaged} && cp -rp {good} {damaged}")
        stack.backup_shell(f"set -- {damaged} && {script}")
        try:
            status, output = stack.restore(damaged)
        finally:
            stack.backup_shell(f"rm -rf {damaged}")
        assert status != 0 and "damaged" in output, f"{damage}: not refused:\n{output}"
        assert stack.stored_posts() == before, f"{damage}: the live database changed"
        assert site_answers(stack), f"{damage}: the site stopped answering"
    for moment, reason in BAD_MOMENTS.items():
        status, output = stack.restore(good, moment)
        assert status != 0 and reason in output, f"a restore to {moment!r}: not refused:\n{output}"
        assert stack.stored_posts() == before, f"a restore to {moment!r}: the database changed"
        assert site_answers(stack), f"a restore to {moment!r}: the site stopped answering"
    return {"refused": ", ".join([*DAMAGE, *BAD_MOMENTS])}


def check_a_dump_being_written_is_not_taken_for_a_good_one(stack: Stack):
    """A dump is written in a hidden folder and renamed once it checks out.
    Until then the listing, the healthcheck and a restore ignore it, even
    when it is the newest folder there."""
    stack.backup("now")
    good = latest_dump(stack)
    partial = ".partial-99991231T235959Z"
    stack.backup_shell(f"cp -rp {good} {partial} && touch {partial}/dump.sql.gz.cms")
    try:
        listed = stack.backup("list").split()
        health = stack.backup("health")
        status, output = stack.restore(partial)
    finally:
        stack.backup_shell(f"rm -rf {partial}")
    assert listed[-1] == good and partial not in listed, listed
    assert health.startswith(f"backup: last good dump {good},"), health
    assert status != 0 and f"no dump named '{partial}'" in output, output
    return {"ignored": partial}


BACKUPS = [
    check_a_dump_being_written_is_not_taken_for_a_good_one,
    check_a_damaged_dump_or_a_bad_moment_is_refused_and_the_live_database_left_untouched,
    check_a_restore_to_a_point_in_time_brings_back_exactly_the_posts_before_it,
]
