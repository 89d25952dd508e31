"""The Airflow DAG of the weekly lägesbild report (samverkan.orchestration.lagesbild_dags).

Parsing it reads nothing: the report is built when the task runs.
"""

from samverkan.orchestration.lagesbild_dags import build_lagesbild_dag

samverkan_lagesbild = build_lagesbild_dag()
