#!/usr/bin/env bash
# Installs the Debian packages Isoline needs (see DEVELOPERS.md), only the missing ones.
# Works as root or through sudo. Safe to run repeatedly: does nothing when all are present.
set -euo pipefail

PKGS=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # C++ libraries
  libinsighttoolkit5-dev libdcmtk-dev libvtk9-dev libtorch-dev libeigen3-dev
  pybind11-dev nlohmann-json3-dev libcpp-httplib-dev libsqlite3-dev
  libgtest-dev libgmock-dev libomp-dev zlib1g-dev libpng-dev libfftw3-dev
  # Python (the interpreter is /usr/bin/python3)
  python3 python3-dev python3-numpy python3-torch python3-pydicom python3-nibabel
  python3-pytest python3-distributed python3-matplotlib python3-scipy
  python3-venv python3-pip python3-setuptools python3-wheel
  # independent judges used by tests
  dicom3tools plastimatch elastix dcmtk libgdcm-tools
  # DICOM node integration tests (a real PACS as the TPS stand-in; REST checks)
  orthanc curl
  # make fuzz (libFuzzer harnesses of the DICOM readers)
  clang libclang-rt-14-dev
  # review UI browser tests (headless)
  chromium
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# node/npm bundle the review web client (a NodeSource node already ships npm)
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "deps: missing packages (${missing[*]}) and not root and no sudo" >&2; exit 1
  fi
fi
echo "deps: installing ${#missing[@]} missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
