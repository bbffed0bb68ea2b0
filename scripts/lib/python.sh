# Sourced by scripts/bootstrap.sh: which Python builds the .venv, and whether an existing .venv was
# built by it.  The app targets the Azure Functions Python 3.11 worker (pyproject: >=3.11,<3.12),
# so any other version is refused up front rather than failing later inside pip.
NEEDED_PYTHON=3.11

# The major.minor of an interpreter, or nothing when it does not run.
python_version() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
}

# Prints the interpreter to use: $PYTHON if set, else python3 when it is 3.11, else python3.11.
# Fails with a message naming the needed version and what was found.
find_python() {
  local candidate found=""
  if [ -n "${PYTHON:-}" ]; then
    if [ "$(python_version "$PYTHON")" = "$NEEDED_PYTHON" ]; then
      echo "$PYTHON"
      return 0
    fi
    echo "error: PYTHON=$PYTHON is Python $(python_version "$PYTHON" || echo '?'); Python $NEEDED_PYTHON is needed" >&2
    return 1
  fi
  for candidate in python3 "python$NEEDED_PYTHON"; do
    if command -v "$candidate" >/dev/null 2>&1; then
      local version
      version=$(python_version "$candidate")
      if [ "$version" = "$NEEDED_PYTHON" ]; then
        command -v "$candidate"
        return 0
      fi
      found="$found $candidate=${version:-broken}"
    fi
  done
  echo "error: Python $NEEDED_PYTHON is needed (found:${found:- no python3 on PATH});" \
    "install python$NEEDED_PYTHON or set PYTHON=/path/to/python$NEEDED_PYTHON" >&2
  return 1
}

# The Python version a venv was created with (pyvenv.cfg "version" / "version_info"), as major.minor.
venv_version() {
  local cfg="$1/pyvenv.cfg"
  [ -f "$cfg" ] || return 0
  sed -n -E 's/^version(_info)?[[:space:]]*=[[:space:]]*([0-9]+\.[0-9]+).*/\2/p' "$cfg" | head -n 1
}
