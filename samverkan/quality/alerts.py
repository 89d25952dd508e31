"""Alerts to the hub's engineers: a feed late past its deadline, a rejected file, a failed task.

Sent with Airflow's notifier mechanism (``SmtpNotifier`` from the SMTP provider), so the mail
server, sender and credentials are an Airflow connection (``[email] email_conn_id``, default
``smtp_default``) and the recipients an Airflow Variable (``samverkan_alert_to``, comma-separated):
a deployment changes them without touching code.

Each alert is claimed in the ledger before it is sent (one row per feed, night, kind and key), so
a retry, a re-run or a second task cannot send it twice: a feed past its deadline produces
exactly one e-mail however often its DAG runs. A send that fails gives the claim back and raises,
so the task's retry sends it later.

Messages carry feed, night, file names, counts, reasons written in the contract and a link to
the run in the Airflow UI; never a value from a partner file, and never an exception's text
(an exception can quote a value).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

RECIPIENTS_VARIABLE = "samverkan_alert_to"
SUBJECT_PREFIX = "[Samverkan]"


def airflow_base_url() -> str:
    from airflow.sdk.configuration import conf

    return (conf.get("api", "base_url", fallback=None) or "http://localhost:8080/").rstrip("/")


def run_url(dag_id: str, run_id: str, task_id: str | None = None) -> str:
    """The run (or one task of it) in the Airflow UI, as the UI's own routes spell it."""
    url = f"{airflow_base_url()}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return f"{url}/tasks/{quote(task_id, safe='')}" if task_id else url


def recipients() -> list[str]:
    from airflow.sdk import Variable

    value = Variable.get(RECIPIENTS_VARIABLE, default=None)
    return [a.strip() for a in str(value or "").replace(";", ",").split(",") if a.strip()]


def render_html(title: str, lines: Iterable[str], link: str | None) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    anchor = f'<p><a href="{html.escape(link, quote=True)}">Open the run in Airflow</a></p>' if link else ""
    return (
        f"<h3>{html.escape(title)}</h3><ul>{items}</ul>{anchor}"
        "<p>This message contains no personal data; the details are in the run's log, manifest and Data Docs.</p>"
    )


def send(
    ledger: Any,
    *,
    feed: str,
    night: str,
    kind: str,
    key: str = "",
    title: str,
    lines: Iterable[str],
    link: str | None,
    context: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> bool:
    """Send one alert unless it was sent before; returns whether this call sent it."""
    to = recipients()
    if not to:
        log.warning(
            "alert %s for %s night %s not sent: Airflow Variable %s names no recipients",
            kind,
            feed,
            night,
            RECIPIENTS_VARIABLE,
        )
        return False
    if not ledger.claim_alert(feed, night, kind, key, run_id):
        log.info("alert %s for %s night %s was already sent; not sending it again", kind, feed, night)
        return False
    lines = list(lines)
    try:
        notify(to, f"{SUBJECT_PREFIX} {title}", render_html(title, lines, link), context)
    except BaseException:
        ledger.release_alert(feed, night, kind, key)
        raise
    log.info("alert %s for %s night %s sent to %d recipient(s)", kind, feed, night, len(to))
    return True


def notify(to: list[str], subject: str, html_content: str, context: Mapping[str, Any] | None) -> None:
    """Through ``SmtpNotifier``; the text rides in the context, so Jinja never parses partner-named files."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    notifier = SmtpNotifier(to=to, subject="{{ samverkan_alert.subject }}", html_content="{{ samverkan_alert.html }}")
    notifier({**(context or {}), "samverkan_alert": {"subject": subject, "html": html_content}})


# --- the three kinds --------------------------------------------------------------------------


def feed_late(
    ledger: Any,
    contract: Any,
    night: str,
    deadline: str,
    *,
    dag_id: str,
    run_id: str,
    context: Mapping[str, Any] | None = None,
) -> bool:
    lines = [
        f"Feed: {contract.id} ({contract.raw['partner']['name']})",
        f"Night: {night}",
        f"Deadline: {deadline}",
        f"No complete file for this night on the partner's server {contract.directory}/ "
        f"(completeness rule: {contract.completeness['rule']}).",
        "The next runs keep looking for it; this alert is sent once.",
    ]
    return send(
        ledger,
        feed=contract.id,
        night=night,
        kind="late",
        title=f"{contract.id}: night {night} is late",
        lines=lines,
        link=run_url(dag_id, run_id),
        context=context,
        run_id=run_id,
    )


def file_rejected(
    ledger: Any,
    contract: Any,
    result: Mapping[str, Any],
    *,
    dag_id: str,
    run_id: str,
    context: Mapping[str, Any] | None = None,
) -> bool:
    from samverkan.quality.reports import data_docs_url

    lines = [
        f"Feed: {contract.id} ({contract.raw['partner']['name']})",
        f"File: {result['name']} (SHA-256 {result.get('sha256')})",
        f"Night: {result['night']}",
        f"Reason: {result.get('reason')}",
        f"Records read before the decision: {result.get('rows_received', 0)}",
        "Nothing from this file was published; the partner got a receipt saying so.",
        f"Data Docs: {airflow_base_url()}/{data_docs_url(contract.id, result['night'])}",
    ]
    return send(
        ledger,
        feed=contract.id,
        night=result["night"],
        kind="rejected",
        key=str(result.get("sha256")),
        title=f"{contract.id}: file {result['name']} rejected",
        lines=lines,
        link=run_url(dag_id, run_id, "process_file"),
        context=context,
        run_id=run_id,
    )


def on_task_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of every feed task: runs once the task has used up its retries."""
    from samverkan.core.ledger import Ledger, ledger_location
    from samverkan.core.settings import paths

    ti = context["ti"]
    dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
    map_index = getattr(ti, "map_index", -1)
    feed = dag_id.removeprefix("samverkan_")
    where = task_id if map_index in (None, -1) else f"{task_id}[{map_index}]"
    lines = [
        f"DAG: {dag_id}",
        f"Run: {run_id}",
        f"Task: {where}, try {getattr(ti, 'try_number', '?')}",
        "The task failed after its retries. The reason is in the task log (linked below); "
        "it is not repeated here because an error message can quote data.",
    ]
    try:
        send(
            Ledger(ledger_location(paths().ensure().ledger)),
            feed=feed,
            night="",
            kind="task_failed",
            key=f"{run_id}/{where}",
            title=f"{dag_id}: task {where} failed",
            lines=lines,
            link=run_url(dag_id, run_id, task_id),
            context=context,
            run_id=run_id,
        )
    except Exception:  # a callback that raises only hides the original failure
        log.exception("could not send the task-failure alert for %s", where)
