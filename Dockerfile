# The code location image: the allocator's Dagster definitions served over gRPC on port 4000.
#
# deploy/docker-compose.yaml runs this one image as the code server, the webserver, the daemon
# and (through the Docker run launcher) every run; with Dagster's Helm chart it is the user
# deployment, so every run pod uses it too (deploy/helm/values.yaml). Build from the repository
# root:
#
#     docker build -t allocator-dagster:0.1.0 .
#
# No secret is baked in: the databases and the API endpoints come from environment variables
# at run time (README, Configuration and Deployment).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/dagster/app

# The declared dependencies first, at the exact versions of constraints.txt, so that a code
# change rebuilds only the last layers. The `deploy` extra adds the Docker and Kubernetes run
# launchers, which the run containers need to load the instance that launched them.
COPY pyproject.toml constraints.txt README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['deploy']))" > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY allocator_dagster ./allocator_dagster
RUN pip install --no-deps -c constraints.txt . \
    && useradd --create-home --uid 1000 dagster \
    && mkdir -p "$DAGSTER_HOME/storage" \
    && chown -R dagster:dagster "$DAGSTER_HOME"

USER dagster
# matplotlib's font list, built once into the image for the user the runs are: every run is a
# new container, which would otherwise scan the fonts again before its first chart (about
# 0.25 s of CPU on the development machine)
RUN python -c "import matplotlib.font_manager"
EXPOSE 4000
HEALTHCHECK --interval=20s --timeout=10s --start-period=60s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]

# The code server; the webserver and the daemon override this command (deploy/docker-compose.yaml).
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "allocator_dagster.definitions", "-a", "defs"]
