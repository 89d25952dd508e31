"""Samverkan's Data Docs inside the Airflow UI: served by the API server, behind Airflow's login.

A FastAPI app mounted at ``/samverkan-reports`` serves the value-free reports under
``$SAMVERKAN_DATA_ROOT/reports/data_docs`` (see ``samverkan.quality.reports``), and two external views put
them where engineers look: a "Data Docs" tab on every DAG run (it shows the pages of the nights
that run touched, read from the run's manifest) and a "Data quality" entry in the navigation.
Every route requires an Airflow user allowed to read the feed's DAG, so the reports are no more
public than the DAGs themselves. Point ``[core] plugins_folder`` at this directory (the embedded
default does).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from samverkan.orchestration.webreports import create_app

URL_PREFIX = "/samverkan-reports"


class SamverkanReportsPlugin(AirflowPlugin):
    name = "samverkan_reports"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Samverkan Data Docs"}]
    external_views = [
        {
            "name": "Data Docs",
            "href": "samverkan-reports/{DAG_ID}/runs/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "samverkan-data-docs",
        },
        {
            "name": "Data quality",
            "href": "samverkan-reports/",
            "destination": "nav",
            "category": "browse",
            "url_route": "samverkan-data-quality",
        },
        {
            "name": "Lägesbild",
            "href": "samverkan-reports/lagesbild/",
            "destination": "nav",
            "category": "browse",
            "url_route": "samverkan-lagesbild",
        },
    ]
