# syntax=docker/dockerfile:1
# The dbt image AWS Batch runs for lakegate's TransformWorkflow: dbt-core + dbt-athena and the EHR
# dbt project. Build from the repository root:
#   docker build -f deploy/docker/dbt.Dockerfile -t <registry>/lakegate-dbt:<tag> .
# Another dbt project: --build-arg DBT_PROJECT=<path in the repo> (its profiles.yml needs an
# `athena` output reading the LAKEGATE_ATHENA_* variables the job definition sets).

# Python 3.11: the version deploy/docker/dbt-requirements.txt was locked on.
FROM python:3.11-slim-bookworm AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY deploy/docker/dbt-requirements.txt /tmp/dbt-requirements.txt
RUN python -m venv /opt/dbt \
 && /opt/dbt/bin/pip install --no-deps -r /tmp/dbt-requirements.txt \
 && /opt/dbt/bin/pip check

FROM python:3.11-slim-bookworm
ARG DBT_PROJECT=examples/ehr/dbt
COPY --from=deps /opt/dbt /opt/dbt
# pipeline.yaml's project_dir/profiles_dir point here (deploy/k8s/pipeline.yaml).
COPY ${DBT_PROJECT} /opt/lakegate/dbt
COPY deploy/docker/dbt-entrypoint.sh /usr/local/bin/lakegate-dbt
COPY deploy/docker/lakegate-artifacts.py /usr/local/bin/lakegate-artifacts.py
RUN useradd --uid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin dbt \
 && rm -rf /opt/lakegate/dbt/target /opt/lakegate/dbt/logs
ENV PATH=/opt/dbt/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    LAKEGATE_DBT_TARGET=athena
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/lakegate-dbt"]
# Replaced by every job lakegate submits; on its own the image checks its profile and connection.
CMD ["dbt", "debug", "--project-dir", "/opt/lakegate/dbt", "--profiles-dir", "/opt/lakegate/dbt", "--target", "athena"]
