"""The weekly lägesbild report (samverkan.orchestration.lagesbild_dags); parsing reads nothing."""

from samverkan.orchestration.lagesbild_dags import build_lagesbild_dag

samverkan_lagesbild = build_lagesbild_dag()
