# The CTI middleware under gunicorn (gunicorn.conf.py: gthread workers, JSON logs).
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
ENV HOST=0.0.0.0 PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["gunicorn", "app:app", "--config", "gunicorn.conf.py"]
