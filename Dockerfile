# The EnergyWatch image: one image, one CLI; docker-compose.yml picks the subcommand
# (`topics create`, `worker`, `notifier`, `simulate`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged uid so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 energywatch \
 && useradd --system --uid 10001 --gid energywatch --create-home --home-dir /home/energywatch \
        --shell /usr/sbin/nologin energywatch

WORKDIR /opt/energywatch/src
# .dockerignore keeps .venv, .local, .git, tests and any .env out of the build context.
COPY . .
RUN pip install --no-cache-dir . \
 && energywatch --help > /dev/null

USER energywatch
# A writable working directory: Faust keeps its `<app id>-data` folder there.
WORKDIR /home/energywatch

ENTRYPOINT ["energywatch"]
CMD ["--help"]
