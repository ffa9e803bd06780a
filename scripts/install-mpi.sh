#!/usr/bin/env bash
# Installs what the `mpi` cargo feature needs on Debian/Ubuntu: Open MPI (the `mpirun` launcher
# and the library with its headers) and libclang (the `mpi` crate generates its bindings with
# bindgen at build time). A no-op when all three packages are present; uses sudo when not root.
set -euo pipefail
packages=(openmpi-bin libopenmpi-dev libclang-dev)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-mpi: ${packages[*]} already installed"
    exit 0
fi
if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
export DEBIAN_FRONTEND=noninteractive
"${apt_get[@]}" update -qq
"${apt_get[@]}" install -y -qq --no-install-recommends "${missing[@]}"
echo "install-mpi: installed ${missing[*]}"
