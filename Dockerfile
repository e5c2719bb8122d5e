# The CTI middleware: gunicorn (gunicorn.conf.py: gthread workers, JSON logs) on :8000 and the
# stream server (screen-pop streams, no thread per stream) on :8001, both started by
# middleware/commands/serve.py. Run it behind the proxy (deploy/nginx.conf, docker-compose.yml): the ports
# are for the proxy on the container network, never to be published (docs/deployment.md).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml ./
COPY middleware ./middleware
COPY schemas ./schemas
COPY app.py gunicorn.conf.py ./
RUN pip install . \
    && useradd --system --home-dir /app --no-create-home cti \
    && mkdir -p /app/instance && chown cti /app/instance

USER cti
# 0.0.0.0 inside the container: reachable by the proxy's container, published nowhere.
ENV HOST=0.0.0.0 PORT=8000 STREAM_PORT=8001
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request as u; [u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=2) for p in (8000, 8001)]"
CMD ["python", "-m", "middleware.commands.serve"]
