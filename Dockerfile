ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# rainclean inference service: onnxruntime + FastAPI, no TensorFlow.
#   docker build -t rainclean .
#   docker run --rm -p 8000:8000 rainclean
# Settings come from environment variables (see service/settings.py), e.g. PORT,
# MODEL_PATH, MAX_CONCURRENCY, ORT_INTRA_OP_THREADS, API_KEY.

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    HOST=0.0.0.0

WORKDIR /app

# 1) runtime dependencies only, pinned with hashes by requirements/service.lock (`make lock`
#    compiles it from the [project] dependencies of pyproject.toml, not the training extra),
#    in their own layer so code changes do not reinstall them. --no-deps: the lock is the
#    whole closure. What the service never loads is removed in the same layer:
#    onnxruntime's C-API library (libonnxruntime.so, 35 MB: the Python binding
#    onnxruntime_pybind11_state links onnxruntime in itself and does not load it), its
#    offline tool packages (transformers, tools, quantization) and the packages' test
#    suites. No .pyc here (--no-compile); step 2 compiles what the service imports.
#    The soundfile wheel bundles libsndfile; the check below fails the build otherwise.
COPY requirements/service.lock /tmp/service.lock
RUN pip install --no-deps --require-hashes --no-compile -r /tmp/service.lock \
    && rm /tmp/service.lock \
    && site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
    && rm -rf "$site"/onnxruntime/capi/libonnxruntime.so* "$site"/onnxruntime/transformers \
              "$site"/onnxruntime/tools "$site"/onnxruntime/quantization \
    && find "$site" -depth -type d -name tests -prune -exec rm -rf {} + \
    && python -c "import soundfile; print('libsndfile', soundfile.__libsndfile_version__)"

# 2) the project itself (service + shared signal contract). Then byte-code for exactly the
#    modules the service imports at start (PYTHONDONTWRITEBYTECODE lifted for that one
#    import): the unprivileged user cannot write .pyc later, and compiling FastAPI,
#    pydantic, numpy, ... at every start cost 1.5-2.5 s here; compiling everything would
#    add the byte-code of modules never loaded.
COPY pyproject.toml README.md ./
COPY denoise_core/ denoise_core/
COPY service/ service/
COPY training/__init__.py training/__init__.py
RUN pip install --no-deps --no-compile . \
    && rm -rf build ./*.egg-info \
    && PYTHONDONTWRITEBYTECODE= python -c "import service.__main__, service.app, service.cli, denoise_core.model_file, uvicorn.loops.auto, uvicorn.loops.asyncio, uvicorn.protocols.http.auto, uvicorn.protocols.http.h11_impl, uvicorn.protocols.websockets.auto, uvicorn.lifespan.on, multipart, soxr, onnxruntime; import sys; bad = {'tensorflow', 'librosa', 'scipy', 'numba', 'llvmlite', 'sklearn'} & set(sys.modules); assert not bad, bad"

# 3) unprivileged user; the model path is absolute so the working directory does not matter.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin rainclean
ENV MODEL_PATH=/app/models/denoiser.onnx
USER rainclean

# 4) the model last, so replacing it rebuilds only this layer
COPY models/ models/

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4).status == 200 else 1)"]

CMD ["python", "-m", "service"]
