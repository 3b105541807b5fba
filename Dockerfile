# One image for a GPU box (`docker run --gpus all`) and for cluster nodes.
# TensorFlow's GPU image matches the TensorFlow version pinned in requirements.txt.
FROM tensorflow/tensorflow:2.21.0-gpu

ENV SDL_VIDEODRIVER=dummy \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONUNBUFFERED=1

RUN apt-get update && apt-get install -y --no-install-recommends swig build-essential make rsync openssh-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt requirements-dev.txt ./
# The base image's TensorFlow build already has CUDA; install the rest of the pins beside it.
RUN pip install --no-cache-dir -r requirements.txt -r requirements-dev.txt
# Cluster nodes (docs/cluster.md): Ray's dashboard and launcher extras, same Ray version as the pin.
RUN pip install --no-cache-dir "ray[default]==2.60.0"
COPY . .
# The project itself, editable, so `worldmodels <command>` and `python -m worldmodels.<command>` work anywhere.
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e .

# Artifacts go to /app/data: mount a volume there to keep them.
VOLUME ["/app/data"]
CMD ["bash", "-c", "for s in 01_generate_data.py 02_train_vae.py 03_generate_rnn_data.py 04_train_rnn.py 05_train_controller.py; do python $s --env ${ENV:-carracing} --preset ${PRESET:-paper} || exit 1; done"]
