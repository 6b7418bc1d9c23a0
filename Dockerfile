# The HayMaker agent: the Azure CLI plus the haymaker package and its scenario catalog.
# Each run's Container Apps Job starts it as `haymaker agent run`; pin the image by digest in
# haymaker:agentImage (agent-image.yml publishes the digest). The base is pinned by the digest of the
# tag's multi-architecture index, so a rebuild of the tag upstream changes nothing here.
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/haymaker \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/opt/haymaker/bin:$PATH

# The Azure CLI in a virtual environment of its own: its pinned Azure SDKs would clash with the
# project's. It comes from a hashed lock (scripts/lock_azcli.sh): every package pinned, every file
# checked against its sha256, so nothing the lock does not name enters the image. The tests install
# the same lock (scripts/azcli.sh). A two-line wrapper puts `az` on PATH without that environment's python.
COPY requirements/azure-cli.txt requirements/uv.txt /tmp/
RUN python -m venv /opt/azure-cli \
 && /opt/azure-cli/bin/pip install --require-hashes --no-deps -r /tmp/azure-cli.txt \
 && printf '#!/bin/sh\nexec /opt/azure-cli/bin/python -m azure.cli "$@"\n' > /usr/local/bin/az \
 && chmod 0755 /usr/local/bin/az \
 && pip install --require-hashes --no-deps -r /tmp/uv.txt \
 && rm /tmp/azure-cli.txt /tmp/uv.txt

# Every CLI extension the catalog's commands need (scenarios/extensions.py), pinned and installed
# now, outside the per-run config directory; the agent never installs one at run time. None of them
# is published on PyPI, so they cannot join the hashed lock: `az extension add --version` fetches each
# wheel from the extension index and refuses one whose sha256 differs from the index's digest.
ENV AZURE_EXTENSION_DIR=/opt/azure-cli-extensions \
    AZURE_EXTENSION_USE_DYNAMIC_INSTALL=no
RUN az extension add --yes --allow-preview true --name connectedmachine --version 3.0.0b1 \
 && az extension add --yes --name databricks --version 1.3.2 \
 && az extension add --yes --name datafactory --version 1.0.4 \
 && az extension add --yes --name ml --version 2.44.1 \
 && az extension add --yes --allow-preview true --name powerbidedicated --version 1.0.0b1 \
 && az extension add --yes --name site-recovery --version 1.0.0 \
 && az extension add --yes --name stack-hci --version 1.1.0 \
 && az extension add --yes --name stream-analytics --version 1.0.6 \
 && az extension list --query "[].{name:name,version:version}" --output tsv \
 && rm -rf /root/.azure

WORKDIR /app
# Dependencies first, exactly as locked and without dev tools, so a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY Pulumi.yaml Pulumi.dev.yaml Pulumi.prod.yaml ./
COPY components/ ./components/
COPY haymaker/ ./haymaker/
COPY policies/ ./policies/
COPY scenarios/ ./scenarios/
COPY stacks/ ./stacks/
# The catalog is baked in: refuse to build an image whose scenarios do not validate.
RUN uv sync --frozen --no-dev && haymaker scenarios validate

RUN useradd --create-home --uid 10001 --user-group haymaker
USER 10001:10001
ENTRYPOINT ["haymaker", "agent", "run"]
