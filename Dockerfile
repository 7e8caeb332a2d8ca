FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY workers workers
COPY schemas schemas
RUN pip install --no-cache-dir . && useradd --create-home app && mkdir -p /app/var && chown app /app/var
USER app
ENV DATA_DIR=/app/var PORT=8000
EXPOSE 8000
CMD ["sh", "-c", "gunicorn --config python:ingest.gunicorn_conf --bind 0.0.0.0:$PORT --workers ${WEB_CONCURRENCY:-2} --threads 8 'ingest:create_app()'"]
