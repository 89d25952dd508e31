# The hub's images, one Dockerfile, three targets:
#   hub   (default) every Airflow service of docker-compose.yml
#   pull  the partner-facing pull service: the hub's code with OpenSSH's sshd, run as root
#   demo  the hub plus devkit/ (synthetic partner files for the demo partners), never deployed
#
# BASE_IMAGE defaults to Airflow's official image. Where image registries cannot be reached,
# scripts/docker builds on a local Debian bookworm made with debootstrap instead
# (--build-arg BASE_IMAGE=local/debian:bookworm); deploy/hub/prepare-base.sh makes either base
# ready. Build with BuildKit (Compose v2 does; scripts/docker sets DOCKER_BUILDKIT=1).
#
# pip and npm can be given a CA bundle for networks that inspect TLS, as a build secret, so the
# bundle never lands in a layer:  docker build --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt
#
# The hub: the pinned runtime requirements (requirements.txt with constraints.txt, no test tools)
# in /opt/venv, the project with everything its DAGs read in /opt/samverkan (schemas,
# expectations, agreements, plugins, dags, measures if present, the report pages' vendored
# libraries), Debian's Swedish word list, no compilers, running as the airflow user (uid 50000).
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
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
 && PIP_USER=false python3 -m venv /opt/venv \
 && PIP_USER=false /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        -r /tmp/requirements/requirements.txt -c /tmp/requirements/constraints.txt

# The project itself as a wheel (devkit/ is not copied, so it is not in it). A stage of its own:
# a code change rebuilds the wheel and one small layer, not the dependencies.
FROM packages AS wheel
COPY pyproject.toml README.md requirements.txt requirements-test.txt requirements-dev.txt /tmp/project/
COPY samverkan /tmp/project/samverkan
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
 && PIP_USER=false /opt/venv/bin/pip wheel --no-cache-dir --disable-pip-version-check --no-deps \
        --wheel-dir /tmp/wheels /tmp/project

# The report pages' libraries at the versions of web/package-lock.json (docs/offline-assets.md),
# so no page loads a CDN. Debian's node runs npm's own release (checked against the registry's
# SHA-512): Debian's npm package drags in some 400 packages. Node and npm stay in this stage.
FROM base AS web
ARG NPM_VERSION=10.9.9
ARG NPM_SHA512=d60fba8cb42f688b81e33c2f1cbef2ad7b977166700ec0ad057f1b6d60ea6ef2524abf673e20c35931cd8305d1dbb8887134d6eefdc0e7b8435bd458bf65b862
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs \
 && rm -rf /var/lib/apt/lists/*
COPY web/package.json web/package-lock.json web/.npmrc /opt/samverkan/web/
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export CURL_CA_BUNDLE=/run/secrets/ca_bundle NODE_EXTRA_CA_CERTS=/run/secrets/ca_bundle; fi \
 && curl -fsSL -o /tmp/npm.tgz "https://registry.npmjs.org/npm/-/npm-${NPM_VERSION}.tgz" \
 && echo "${NPM_SHA512}  /tmp/npm.tgz" | sha512sum -c - \
 && tar -xzf /tmp/npm.tgz -C /tmp \
 && cd /opt/samverkan/web && node /tmp/package/bin/npm-cli.js ci --no-progress --no-update-notifier \
 && rm -rf /tmp/npm.tgz /tmp/package /root/.npm

FROM base AS runtime
COPY --from=packages /opt/venv /opt/venv
COPY --from=web /opt/samverkan/web /opt/samverkan/web
# What the DAGs and their tasks read, in the repository's layout (SAMVERKAN_CONFIG_ROOT).
COPY schemas /opt/samverkan/schemas
COPY expectations /opt/samverkan/expectations
COPY agreements /opt/samverkan/agreements
COPY dags /opt/samverkan/dags
COPY plugins /opt/samverkan/plugins
RUN --mount=type=bind,from=wheel,source=/tmp/wheels,target=/tmp/wheels \
    PIP_USER=false /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps /tmp/wheels/*.whl
# measures/ where the project has it (the glob copies nothing otherwise).
COPY pyproject.toml measure[s] /opt/samverkan/measures/
RUN rm -f /opt/samverkan/measures/pyproject.toml && rmdir --ignore-fail-on-non-empty /opt/samverkan/measures \
 && install -d -o airflow -g 0 -m 770 /var/lib/samverkan /opt/airflow/logs \
 && find /opt/samverkan -name __pycache__ -prune -exec rm -rf {} +

ENV PATH=/opt/venv/bin:$PATH \
    SAMVERKAN_CONFIG_ROOT=/opt/samverkan \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/samverkan/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/samverkan/plugins \
    SAMVERKAN_DATA_ROOT=/var/lib/samverkan \
    GX_ANALYTICS_ENABLED=False
USER 50000:0
WORKDIR /opt/samverkan
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []

# The demo partners' data (docker-compose.yml, partner-data): the hub plus devkit/, whose
# synthetic generator writes partner files. Never the image the hub runs.
FROM runtime AS demo
COPY devkit /opt/samverkan/devkit

# The pull service (docker-compose.yml, pull-service): sshd chroots each recipient, so it runs as
# root; it reads the outboxes read-only and serves root-owned copies (samverkan/sharing/pull_service.py).
FROM runtime AS pull
USER root
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server \
 && rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_*
ENTRYPOINT ["/usr/bin/dumb-init", "--", "python", "-m", "samverkan.sharing.pull_service"]

# The hub (the default target).
FROM runtime AS hub
