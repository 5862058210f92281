# The ragpause service: CPU torch (from PyTorch's CPU index, not the multi-GB CUDA build),
# llama-cpp-python built from source for x86-64-v3 (AVX2; never for the build machine's CPU,
# since the image runs elsewhere), the shipped models inside their PyPI packages.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY deploy/build_llama_cpp.sh deploy/build_llama_cpp.sh
COPY service service
COPY query_unit query_unit
COPY retrieval retrieval
COPY index_data/starter index_data/starter
ARG LLAMA_BASELINE=x86-64-v3
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && RAGPAUSE_WHEEL_CACHE=/tmp/wheels deploy/build_llama_cpp.sh python "$LLAMA_BASELINE" \
 && rm -rf /tmp/wheels \
 && pip install --no-cache-dir .
EXPOSE 8000
CMD ["python", "-m", "service"]
