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

# 1) runtime dependencies only (the [project] dependencies of pyproject.toml, not the
#    training extra), in their own layer so code changes do not reinstall them.
#    The soundfile wheel bundles libsndfile; the check below fails the build otherwise.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && python -c "import soundfile; print('libsndfile', soundfile.__libsndfile_version__)" \
    && rm /tmp/requirements.txt

# 2) the project itself (service + shared signal contract)
COPY README.md ./
COPY denoise_core/ denoise_core/
COPY service/ service/
COPY training/__init__.py training/__init__.py
RUN pip install --no-deps . \
    && python -c "import service.app, denoise_core.model_file; import sys; assert not {'tensorflow', 'librosa'} & set(sys.modules)"

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
