"""The web side of the reports: a small FastAPI app the Airflow API server mounts (plugins/).

Only the value-free reports are served (Data Docs pages built by ``samverkan.quality.reports``); names in
URLs are checked against the contracts and ISO dates, so no path outside ``reports/data_docs``
can be reached. Airflow's own security dependencies guard every route: a user must be logged in
to Airflow and allowed to read the feed's DAG. The pages load their libraries from this app
(``/_assets/``, the files ``samverkan.quality.assets`` lists) and carry a Content-Security-Policy
header allowing the hub's own origin only: nothing a reader opens calls a third party.
"""

from __future__ import annotations

import html
import json
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the routes' (postponed) annotations here

from samverkan.core.contracts import load_contracts
from samverkan.core.publishing import manifest_name
from samverkan.core.settings import paths
from samverkan.quality import assets
from samverkan.quality.reports import data_docs_page, reports_root


def _feed(dag_id: str) -> str:
    from fastapi import HTTPException

    feed = dag_id.removeprefix("samverkan_")
    if not dag_id.startswith("samverkan_") or feed not in load_contracts():
        raise HTTPException(status_code=404, detail="no such feed")
    return feed


def _night(text: str) -> str:
    from fastapi import HTTPException

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise HTTPException(status_code=404, detail="not a night (YYYY-MM-DD)") from None


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body style='font-family: sans-serif'><h2>{html.escape(title)}</h2>{body}"
        "<p><small>Sample values in these reports are masked (9 = digit, a/A = letter).</small></p>"
        "</body></html>"
    )


def _written(request: Request, page: Path) -> str:
    """A written page, re-pointed from the copies beside it to the ones this app serves (its own prefix)."""
    served = f"{request.scope.get('root_path', '')}/{assets.ASSET_DIR}/"
    return assets.localise(page.read_text(encoding="utf-8"), served)


LAGESBILD_DAG = "samverkan_lagesbild"  # who may read that DAG may read its report


def _lagesbild_page(release: str | None) -> str:
    """A release by its id (checked against the releases on disk, never used as a path), or the newest."""
    from fastapi import HTTPException

    from samverkan.analysis.lagesbild import DATASET, HTML_FILE, report_dir
    from samverkan.sharing.outbox import report_release

    found = {p.name: p for p in report_dir(paths()).glob("[!.]*") if (p / HTML_FILE).is_file()}
    chosen = found.get(release) if release else report_release(paths(), DATASET)
    if chosen is None or not (chosen / HTML_FILE).is_file():
        if release is None:
            return _page("Lägesbild", "<p>No lägesbild has been built yet (DAG samverkan_lagesbild).</p>")
        raise HTTPException(status_code=404, detail="no such lägesbild release")
    return (chosen / HTML_FILE).read_text(encoding="utf-8")


def create_app(*, auth: bool = True) -> Any:
    """``auth=False`` only for tests of the content; the plugin always mounts the guarded app."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse

    class Page(HTMLResponse):
        """Every page with its Content-Security-Policy header: the hub's own origin only, framed by the UI only."""

        def __init__(self, content: Any = None, *args: Any, **kwargs: Any) -> None:
            super().__init__(content, *args, **kwargs)
            self.headers["Content-Security-Policy"] = assets.policy(bytes(self.body).decode("utf-8"), header=True)

    dag_guard, user_guard = [], []
    if auth:
        from airflow.api_fastapi.core_api.security import requires_access_dag, requires_authenticated

        dag_guard = [Depends(requires_access_dag(method="GET"))]
        user_guard = [Depends(requires_authenticated())]
    app = FastAPI(title="Samverkan Data Docs", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(f"/{assets.ASSET_DIR}/{{path:path}}", dependencies=user_guard)
    def asset(path: str) -> FileResponse:
        """The pages' libraries: only the files samverkan.quality.assets lists (a path is a key, not a path)."""
        source = assets.asset_files().get(path)
        if source is None:
            raise HTTPException(status_code=404, detail="no such asset")
        return FileResponse(
            source,
            headers={"Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"},
        )  # the version is in the path

    report_guard = [Depends(requires_access_dag(method="GET", param_dag_id=LAGESBILD_DAG))] if auth else []

    @app.get("/lagesbild/", response_class=Page, dependencies=report_guard)
    def lagesbild_latest() -> str:
        """The newest lägesbild (issue 12): self-contained, its counts already protected."""
        return _lagesbild_page(None)

    @app.get("/lagesbild/{release}/", response_class=Page, dependencies=report_guard)
    def lagesbild_release(release: str) -> str:
        return _lagesbild_page(release)

    @app.get("/", response_class=Page, dependencies=user_guard)
    def feeds() -> str:
        items = "".join(
            f'<li><a href="samverkan_{html.escape(f)}/">{html.escape(c.title)}</a></li>'
            for f, c in sorted(load_contracts().items())
        )
        return _page("Data quality per feed", f"<ul>{items}</ul>")

    @app.get("/{dag_id}/", response_class=Page, dependencies=dag_guard)
    def nights(dag_id: str) -> str:
        feed = _feed(dag_id)
        root = reports_root(paths().root) / "data_docs" / feed
        found = sorted((p.name for p in root.glob("*") if (p / "index.html").exists()), reverse=True)
        items = "".join(f'<li><a href="nights/{html.escape(n)}/">{html.escape(n)}</a></li>' for n in found)
        return _page(f"Data Docs: {feed}", f"<ul>{items}</ul>" if items else "<p>No validation results yet.</p>")

    @app.get("/{dag_id}/nights/{night}/", response_class=Page, dependencies=dag_guard)
    def night_page(request: Request, dag_id: str, night: str) -> str:
        page = data_docs_page(paths().root, _feed(dag_id), _night(night))
        if not page.exists():
            raise HTTPException(status_code=404, detail="no Data Docs for this night")
        return _written(request, page)

    @app.get("/{dag_id}/runs/{run_id}", response_class=Page, dependencies=dag_guard)
    def run_pages(request: Request, dag_id: str, run_id: str) -> str:
        """The DAG-run tab: the run's nights from its manifest; one night is shown in place."""
        feed = _feed(dag_id)
        manifest = paths().manifests(feed) / manifest_name(run_id)
        if not manifest.exists():
            return _page(f"{feed}: run {run_id}", "<p>This run has written no manifest (yet).</p>")
        docs = json.loads(manifest.read_text(encoding="utf-8")).get("data_docs") or {}
        if len(docs) == 1:
            page = data_docs_page(paths().root, feed, _night(next(iter(docs))))
            if page.exists():
                return _written(request, page)
        items = "".join(f'<li><a href="../nights/{html.escape(n)}/">{html.escape(n)}</a></li>' for n in sorted(docs))
        return _page(f"{feed}: run {run_id}", f"<ul>{items}</ul>" if items else "<p>This run processed no files.</p>")

    return app
