# The hub's Airflow image: Airflow's official image plus the pinned requirements and the project.
# Built by docker-compose.yml (x-airflow-common); every Airflow service runs it.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

# Requirements first, so code changes do not reinstall them. constraints.txt pins the full set.
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/samverkan/
RUN pip install --no-cache-dir -r /opt/samverkan/requirements.txt -c /opt/samverkan/constraints.txt

COPY --chown=airflow:0 connectors /opt/samverkan/connectors
COPY --chown=airflow:0 samverkan /opt/samverkan/samverkan
COPY --chown=airflow:0 schemas /opt/samverkan/schemas
COPY --chown=airflow:0 expectations /opt/samverkan/expectations
COPY --chown=airflow:0 dags /opt/samverkan/dags

ENV PYTHONPATH=/opt/samverkan \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/samverkan/dags \
    SAMVERKAN_DATA_ROOT=/var/lib/samverkan \
    GX_ANALYTICS_ENABLED=False
WORKDIR /opt/samverkan
