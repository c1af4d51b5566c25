# Sourced by scripts/demo and scripts/test: sets $python to an interpreter that pip may install into.
# A distribution's own Python refuses pip installs (PEP 668); a project venv is used there.
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' \
   && "$python" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv 2>/dev/null || {
      echo "python3-venv is missing; installing it" >&2
      $sudo_cmd apt-get update && $sudo_cmd apt-get install -y python3-venv
      "$python" -m venv .venv
    }
  fi
  python=.venv/bin/python
fi
