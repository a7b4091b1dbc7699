# One image for every Sluice component; compose picks the command. A custom service's own
# image is FROM this one plus its folder (see README, "Writing a service").
FROM python:3.12-slim
# libarchive13: extract reads xar with it (the libarchive the archi wheel ships lacks xar).
RUN apt-get update && apt-get install -y --no-install-recommends libmagic1 libarchive13 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/sluice
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY bus bus
COPY dispatcher dispatcher
COPY services services
COPY sluice sluice
RUN pip install --no-cache-dir ".[fast]"
RUN useradd --system --home /var/lib/sluice sluice && mkdir -p /var/lib/sluice && chown sluice /var/lib/sluice
USER sluice
ENV SLUICE_NATS_URL=nats://nats:4222
# `dispatcher`, `service run` and `up` serve /metrics, /healthz and /readyz here (see compose.yaml).
ENV SLUICE_METRICS_PORT=9090 SLUICE_METRICS_HOST=0.0.0.0
EXPOSE 9090
ENTRYPOINT ["sluice"]
