#!/usr/bin/env bash
# Fetches the cp312 wheels bench/gpu_check.sh installs on a GPU machine without a package
# registry (the packages its image lacks, see docs/benchmarks.md "GPU check"), into the
# ignored folder wheels/ (about 15 MiB). Run here, where PyPI is reachable:
#   bash bench/fetch_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
mkdir -p wheels
# Versions of this project's lock (pyproject.toml / the CPU venv); pure-Python or
# manylinux x86_64 cp312 wheels, no dependencies resolved (the list is complete for the
# import paths of the library and its tests; pyarrow and requests are never imported).
PKGS=(
  tensorflow-datasets==4.9.10 grain==0.2.18 array-record==0.8.6 ml-collections==1.1.0
  pycocotools==2.0.11 tensorboardX==2.6.5 dm-tree==0.1.10 immutabledict==4.3.1
  tensorflow-metadata==1.21.0 googleapis-common-protos==1.76.0 termcolor==3.3.0
  toml==0.10.2 wrapt==2.5.2 cloudpickle==3.1.3 portpicker==1.6.0 simple_parsing==0.1.9
  docstring-parser==0.18.0 six==1.17.0 attrs==26.1.0 protobuf==7.36.2 psutil==7.2.2
  etils==1.15.0 importlib_resources==7.1.0 zipp==4.1.2 setuptools==75.8.0
)
"$PY" -m pip download --python-version 3.12 --only-binary=:all: --no-deps -d wheels "${PKGS[@]}"
# promise 2.3 (a tensorflow-datasets dependency) exists only as an sdist: build its
# pure-Python wheel here.
"$PY" -m pip wheel --no-deps -w wheels promise==2.3
du -sh wheels
