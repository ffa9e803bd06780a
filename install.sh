#!/usr/bin/env bash
# Installs flowc and its runtime library:
#   ./install.sh [PREFIX]        (PREFIX defaults to ~/.local)
# puts `flowc` in PREFIX/bin and `libflowc.a` — the run time that `flowc build` links into
# every executable — in PREFIX/lib/flowc, where flowc looks for it (driver/aot.rs). After
# that, `flowc build prog.flow -o prog` works from any folder, with no source tree around.
# (`cargo install --path compiler` installs only the binary: cargo does not install static
# libraries, so `flowc build` would not find its runtime.)
set -euo pipefail
prefix=${1:-$HOME/.local}
cd "$(dirname "$0")"
cargo build --release --locked -p flowc
mkdir -p "$prefix/bin" "$prefix/lib/flowc"
install -m 755 target/release/flowc "$prefix/bin/flowc"
install -m 644 target/release/libflowc.a "$prefix/lib/flowc/libflowc.a"
echo "installed $prefix/bin/flowc and $prefix/lib/flowc/libflowc.a"
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "note: $prefix/bin is not on your PATH" ;;
esac
