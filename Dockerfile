# caseloop for docker-compose.yml: one image for the migration job and the engine's processes.

# The pages' stylesheet, compiled from the pinned GOV.UK Design System packages (no package runs
# code at install); only the compiled CSS goes into the image.
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY web/assets ./web/assets
RUN mkdir -p web/static && npm run build

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Pango and a font for WeasyPrint's PDF letters.
RUN apt-get update && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-droid-fallback \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflow ./workflow
COPY config ./config
COPY tasks ./tasks
COPY letters ./letters
COPY messaging ./messaging
COPY services ./services
COPY web ./web
COPY --from=assets /build/web/static ./web/static
COPY cli ./cli
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --create-home caseloop \
    && mkdir -p /var/lib/caseloop && chown caseloop /var/lib/caseloop
USER caseloop
ENTRYPOINT ["caseloop"]
CMD ["--help"]
