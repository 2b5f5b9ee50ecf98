#!/usr/bin/env bash
# Serve every model exported to saved_models/ with TensorFlow Serving (gRPC :8500, REST :8501).
#
#   saved_models/serve.sh docker        # the tensorflow/serving image, this folder mounted at /models
#   saved_models/serve.sh local         # a tensorflow_model_server binary on PATH (e.g. after install-apt)
#   sudo saved_models/serve.sh install-apt   # install tensorflow-model-server from Google's apt repository
#                                            # (Debian/Ubuntu, Google Colab: prefix with ! in a cell)
#   saved_models/serve.sh print         # only print the commands
# Options, after the mode (docker, local, print):
#   --batching   server-side batching: --enable_batching --batching_parameters_file=batching_parameters.txt
#                (the file beside this script, or BATCHING_PARAMETERS_FILE; its comments explain each value)
#   --xla        --xla_cpu_compilation_enabled=true, needed by the *_xla signatures of an
#                `export --xla` model: without it TF Serving loads the model, the plain signatures
#                work, and every *_xla request fails with an error (TF Serving calls
#                tensorflow::DisableXlaCompilation() unless the flag is set; no fallback).
#
# Without a mode: docker if it is installed, else local, else print.
# Environment: GRPC_PORT (8500), REST_PORT (8501), TF_SERVING_IMAGE (tensorflow/serving:latest),
# SAVED_MODELS_DIR (the folder to serve; default: the one holding this script),
# BATCHING_PARAMETERS_FILE (default: batching_parameters.txt in SAVED_MODELS_DIR, else beside this script).
#
# Export a model first (make demo does it):
#   seq2seq-keras export --model runs/demo --name demo        # -> saved_models/demo/<version>/, models.config
#   seq2seq-keras check-servable saved_models/demo
# Then, with the server running:
#   curl http://localhost:8501/v1/models/demo                  # "state": "AVAILABLE"
#   curl -d '{"signature_name": "translate_with_attention", "inputs": {"text": ["나는 학생이다"]}}' \
#        http://localhost:8501/v1/models/demo:predict
#   python -c "from seq2seq_keras.serving import RestClient; print(RestClient('http://localhost:8501', 'demo').translate('나는 학생이다'))"
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HERE="$(cd "${SAVED_MODELS_DIR:-$SCRIPT_DIR}" && pwd)"
GRPC_PORT="${GRPC_PORT:-8500}"
REST_PORT="${REST_PORT:-8501}"
IMAGE="${TF_SERVING_IMAGE:-tensorflow/serving:latest}"
CONFIG="$HERE/models.config"
if [[ -n "${BATCHING_PARAMETERS_FILE:-}" ]]; then BATCHING="$BATCHING_PARAMETERS_FILE"
elif [[ -f "$HERE/batching_parameters.txt" ]]; then BATCHING="$HERE/batching_parameters.txt"
else BATCHING="$SCRIPT_DIR/batching_parameters.txt"; fi
BATCHING_ON=0
XLA_ON=0

require_config() {
  if [[ ! -f "$CONFIG" ]]; then
    echo "No $CONFIG: export a model first (seq2seq-keras export --model runs/demo --name demo, or make demo)." >&2
    exit 2
  fi
}

require_batching() {
  if [[ "$BATCHING_ON" == 1 && ! -f "$BATCHING" ]]; then
    echo "--batching: no $BATCHING (set BATCHING_PARAMETERS_FILE to a text-format BatchingParameters file)." >&2
    exit 2
  fi
}

# Server flags for --batching and --xla; $1 is the batching file's path as the server sees it.
extra_flags() {
  EXTRA=()
  if [[ "$BATCHING_ON" == 1 ]]; then EXTRA+=(--enable_batching --batching_parameters_file="$1"); fi
  if [[ "$XLA_ON" == 1 ]]; then EXTRA+=(--xla_cpu_compilation_enabled=true); fi
}

docker_command() {
  # models.config names base paths under /models, where the folder is mounted (read-only).
  local mounts=(-v "$HERE:/models:ro") inside="/models/batching_parameters.txt"
  if [[ "$BATCHING_ON" == 1 && "$(cd "$(dirname "$BATCHING")" && pwd)/$(basename "$BATCHING")" != "$HERE/batching_parameters.txt" ]]; then
    mounts+=(-v "$(cd "$(dirname "$BATCHING")" && pwd)/$(basename "$BATCHING"):/batching/batching_parameters.txt:ro")
    inside="/batching/batching_parameters.txt"
  fi
  extra_flags "$inside"
  CMD=(docker run --rm -p "$GRPC_PORT:8500" -p "$REST_PORT:8501" "${mounts[@]}" "$IMAGE"
       --model_config_file=/models/models.config --model_config_file_poll_wait_seconds=60 "${EXTRA[@]}")
}

local_command() {
  # The same config with the host path instead of the container's /models.
  local config
  config="$(mktemp -t models.XXXXXX.config)"
  sed "s#base_path: \"/models/#base_path: \"$HERE/#" "$CONFIG" > "$config"
  extra_flags "$BATCHING"
  CMD=(tensorflow_model_server --port="$GRPC_PORT" --rest_api_port="$REST_PORT"
       --model_config_file="$config" --model_config_file_poll_wait_seconds=60 "${EXTRA[@]}")
}

install_apt() {
  # Google's apt repository for TensorFlow Serving; works on Debian/Ubuntu and in Colab (run as root there).
  # tensorflow-model-server-universal is the build without CPU-specific optimisations, for older CPUs.
  apt-get update
  apt-get install -y curl gnupg ca-certificates
  curl -fsSL https://storage.googleapis.com/tensorflow-serving-apt/tensorflow-serving.release.pub.gpg \
    | gpg --dearmor --yes -o /usr/share/keyrings/tensorflow-serving.gpg
  echo "deb [signed-by=/usr/share/keyrings/tensorflow-serving.gpg] http://storage.googleapis.com/tensorflow-serving-apt stable tensorflow-model-server tensorflow-model-server-universal" \
    > /etc/apt/sources.list.d/tensorflow-serving.list
  apt-get update
  apt-get install -y tensorflow-model-server
  tensorflow_model_server --version
}

mode=auto
FLAGS=""
for arg in "$@"; do
  case "$arg" in
    --batching) BATCHING_ON=1; FLAGS+=" --batching" ;;
    --xla) XLA_ON=1; FLAGS+=" --xla" ;;
    *) mode="$arg" ;;
  esac
done
if [[ "$mode" == auto ]]; then
  if command -v docker >/dev/null 2>&1; then mode=docker
  elif command -v tensorflow_model_server >/dev/null 2>&1; then mode=local
  else mode=print; fi
fi

case "$mode" in
  docker)
    require_config
    require_batching
    docker_command
    echo "+ ${CMD[*]}"
    exec "${CMD[@]}"
    ;;
  local)
    require_config
    require_batching
    command -v tensorflow_model_server >/dev/null 2>&1 || {
      echo "tensorflow_model_server is not on PATH: run 'sudo $0 install-apt' (or use '$0 docker')." >&2; exit 2; }
    local_command
    echo "+ ${CMD[*]}"
    exec "${CMD[@]}"
    ;;
  install-apt)
    install_apt
    ;;
  print)
    docker_command
    echo "# Docker (this folder mounted at /models):"
    printf '%q ' "${CMD[@]}"; echo
    echo
    echo "# apt (Debian/Ubuntu/Colab), then a local server on the same ports:"
    echo "sudo $0 install-apt && $0 local${FLAGS}"
    ;;
  -h|--help|help)
    sed -n '2,28p' "$0"
    ;;
  *)
    echo "unknown mode '$mode': use docker, local, install-apt or print" >&2
    exit 2
    ;;
esac
