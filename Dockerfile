# The hub's image: every Airflow service of docker-compose.yml runs it.
#
# BASE_IMAGE defaults to Airflow's official image. Where image registries cannot be reached,
# scripts/docker builds it on a local Debian bookworm made with debootstrap instead
# (--build-arg BASE_IMAGE=local/debian:bookworm); deploy/hub/prepare-base.sh makes either base
# ready. Build with BuildKit (Compose v2 does; scripts/docker sets DOCKER_BUILDKIT=1).
#
# pip can be given a CA bundle for networks that inspect TLS, as a build secret, so the bundle
# never lands in a layer:  docker build --secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt
#
# The result: the pinned runtime requirements (requirements.txt with constraints.txt, no test
# tools) in /opt/venv, the project with everything its DAGs read in /opt/samverkan, Debian's
# Swedish word list, no compilers, running as the airflow user (uid 50000).
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
ARG BASE_IMAGE=apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

FROM ${BASE_IMAGE} AS base
USER root
COPY deploy/hub/ /usr/local/lib/samverkan-image/
RUN sh /usr/local/lib/samverkan-image/prepare-base.sh

# The Python packages, in a stage of their own: what pip needs to install them (the CA bundle,
# its caches) stays out of the final image, which takes /opt/venv only.
FROM base AS packages
COPY requirements.txt constraints.txt /tmp/requirements/
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
 && PIP_USER=false python3 -m venv /opt/venv \
 && PIP_USER=false /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        -r /tmp/requirements/requirements.txt -c /tmp/requirements/constraints.txt

FROM base AS runtime
COPY --from=packages /opt/venv /opt/venv
# What the DAGs and their tasks read, in the repository's layout (the code finds schemas/,
# expectations/ and agreements/ beside itself).
COPY samverkan /opt/samverkan/samverkan
COPY schemas /opt/samverkan/schemas
COPY expectations /opt/samverkan/expectations
COPY agreements /opt/samverkan/agreements
COPY dags /opt/samverkan/dags
COPY plugins /opt/samverkan/plugins
RUN install -d -o airflow -g 0 -m 770 /var/lib/samverkan /opt/airflow/logs \
 && find /opt/samverkan -name __pycache__ -prune -exec rm -rf {} +

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/samverkan \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/samverkan/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/samverkan/plugins \
    SAMVERKAN_DATA_ROOT=/var/lib/samverkan \
    GX_ANALYTICS_ENABLED=False
USER 50000:0
WORKDIR /opt/samverkan
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []

# The demo partners' data (docker-compose.yml, partner-data): the hub plus devkit/, whose synthetic
# generator writes partner files. Never the image the hub runs.
FROM runtime AS demo
COPY devkit /opt/samverkan/devkit

# The hub (the default target).
FROM runtime AS hub
