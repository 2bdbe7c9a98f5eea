# The gateway, the projector worker and the sandbox payment provider share this image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY commands ./commands
COPY queries ./queries
COPY projections ./projections
COPY migrations ./migrations
COPY alembic.ini schema.graphql ./
RUN pip install --upgrade pip && pip install . \
    && useradd --system --uid 10001 gateway
USER gateway

EXPOSE 8000
CMD ["commerce-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
