# geologin as a container image, built from this repository: `docker build -t geologin .`
# Configure it with GEOLOGIN_* variables (docs/deploy.md); keep the instance folder on a volume.
FROM python:3.11-slim

WORKDIR /src
COPY . .
RUN pip install --no-cache-dir -c requirements.lock . \
    && rm -rf /src \
    && useradd --system --create-home --home-dir /var/lib/geologin geologin

USER geologin
WORKDIR /var/lib/geologin
ENV GEOLOGIN_INSTANCE=/var/lib/geologin/instance \
    GEOLOGIN_BIND=0.0.0.0:8000
VOLUME /var/lib/geologin/instance
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['GEOLOGIN_BIND'].rsplit(':', 1)[1] + '/readyz', timeout=4)"]
# Migrations run from one container per release: docker run --rm ... geologin db upgrade
CMD ["gunicorn", "-c", "python:geologin.gunicorn_conf", "geologin.wsgi:app"]
