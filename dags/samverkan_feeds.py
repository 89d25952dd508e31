"""One Airflow ingest DAG per feed contract in schemas/ (police, transit, guards, ...).

Adding a partner means adding a contract; this file does not change. Parsing it reads only the
contracts: the work happens in samverkan.ingest.pipeline when a task runs.
"""

from samverkan.core.contracts import load_contracts
from samverkan.orchestration.feed_dags import build_feed_dag

for _contract in load_contracts().values():
    globals()[f"samverkan_{_contract.id}"] = build_feed_dag(_contract)
