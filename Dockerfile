# One image for every Sluice component; compose picks the command. A custom service's own
# image is FROM this one plus its folder (see README, "Writing a service").
# Every dependency installs from a wheel (libmagic comes in pylibmagic's): no compiler, no apt.
FROM python:3.12-slim
WORKDIR /opt/sluice
# The dependencies first, in a layer of their own (installed with empty stand-ins for Sluice's
# packages, then Sluice removed): a change to Sluice's code or README rebuilds in seconds.
COPY pyproject.toml /tmp/deps/
RUN cd /tmp/deps && touch README.md \
    && for pkg in schemas bus dispatcher services sluice; do mkdir "$pkg" && touch "$pkg/__init__.py"; done \
    && pip install --no-cache-dir ".[fast]" && pip uninstall --yes --quiet sluice && rm -rf /tmp/deps
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY bus bus
COPY dispatcher dispatcher
COPY services services
COPY sluice sluice
RUN pip install --no-cache-dir --no-deps .
RUN useradd --system --home /var/lib/sluice sluice && mkdir -p /var/lib/sluice && chown sluice /var/lib/sluice
USER sluice
ENV SLUICE_NATS_URL=nats://nats:4222
# `dispatcher`, `service run` and `up` serve /metrics, /healthz and /readyz here (see compose.yaml).
ENV SLUICE_METRICS_PORT=9090 SLUICE_METRICS_HOST=0.0.0.0
EXPOSE 9090
ENTRYPOINT ["sluice"]
