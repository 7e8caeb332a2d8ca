FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY ingest ingest
COPY workers workers
COPY schemas schemas
COPY cli cli
RUN pip install --no-cache-dir . && useradd --create-home app && mkdir -p /app/var && chown app /app/var
USER app
ENV DATA_DIR=/app/var PORT=8000
EXPOSE 8000
# The same command line as the Procfile's web process (cli/commands.py is the source; a test compares them).
CMD ["sh", "-c", "gunicorn --config python:ingest.gunicorn_conf --bind 0.0.0.0:$PORT --workers ${WEB_CONCURRENCY:-2} --threads 8 --graceful-timeout 10 'ingest:create_app()'"]
