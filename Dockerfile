# pod-watcher: the watcher in a virtual environment with compiled bytecode, on a slim
# Python base, run as a fixed non-root UID, fit for readOnlyRootFilesystem: true.
#   docker build -t pod-watcher .                      (or podman build; needs PyPI)
#   --build-arg EXTRAS=""                              (without NVML; default: nvml)
#   scripts/build-image                                (no registry: local base, host wheels)
# The base must provide python3 with the venv module; both stages use the same one, so
# the venv's interpreter link points at the same path.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ARG EXTRAS="nvml"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
COPY . /src
# Wheels in the context's wheels/ (scripts/build-image puts them there) are installed
# without an index; otherwise the package is built from source and PyPI is used.
RUN set -eu; \
    python3 -m venv /opt/pod-watcher; \
    pip=/opt/pod-watcher/bin/pip; \
    if ls /src/wheels/*.whl >/dev/null 2>&1; then \
        $pip install --no-compile --no-index --find-links /src/wheels \
            "pod-watcher${EXTRAS:+[$EXTRAS]}"; \
    else \
        $pip install --no-compile "/src${EXTRAS:+[$EXTRAS]}"; \
    fi; \
    $pip uninstall --yes pip setuptools; \
    python3 -m compileall -q -j0 --invalidation-mode unchecked-hash /opt/pod-watcher

FROM ${BASE_IMAGE}
# Bytecode for the interpreter's own library too, where the base ships none: a read-only
# root cannot cache it, and compiling it at every start costs seconds. (A no-op when the
# base already has it.)
RUN python3 -m compileall -q -j0 -x '/(site|dist)-packages/' \
        "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
COPY --from=builder /opt/pod-watcher /opt/pod-watcher
ENV PATH=/opt/pod-watcher/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 9188
ENTRYPOINT ["/opt/pod-watcher/bin/pod-watcher"]
CMD ["run"]
