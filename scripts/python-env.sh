# Sourced by scripts/demo and scripts/test: sets $python to the project's own venv (.venv), made with the
# python3 found on PATH (or $PYTHON). Always a venv, never the machine's own packages: what runs here is
# what a newcomer's fresh clone runs.
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
base_python=${PYTHON:-python3}
if ! "$base_python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Kawal needs Python 3.11 or newer; $base_python is $("$base_python" --version 2>&1)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$base_python" -m venv .venv 2>/dev/null || {
    echo "python3-venv is missing; installing it" >&2
    rm -rf .venv
    $sudo_cmd apt-get update && $sudo_cmd apt-get install -y python3-venv
    "$base_python" -m venv .venv
  }
fi
python=.venv/bin/python
