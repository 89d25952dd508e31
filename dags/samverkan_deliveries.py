"""One Airflow delivery DAG per data-sharing agreement in agreements/ (municipality, police, ...).

Adding a recipient means adding an agreement; this file does not change. Parsing it reads only
the agreements: the work happens in samverkan.sharing.delivery when a task runs.
"""

from samverkan.orchestration.delivery_dags import build_delivery_dag
from samverkan.sharing.agreements import load_agreements

for _agreement in load_agreements().values():
    globals()[f"samverkan_deliver_{_agreement.id}"] = build_delivery_dag(_agreement)
