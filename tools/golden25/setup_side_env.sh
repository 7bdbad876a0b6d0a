#!/usr/bin/env bash
# Builds the side environment that runs the OFFICIAL Lightricks code for tools/golden25/gen_cases.py.
# Nothing here is part of the pack: the environment and the unpacked sources live outside the repository.
#   bash tools/golden25/setup_side_env.sh            (defaults below; re-running is safe)
# SIDE_ENV     the venv to create (default /work/side25); it also sees the main venv's packages (torch 2.11 ...)
# SIDE_SRC     where the official packages are unpacked (default /work/side25-src)
# MAIN_VENV    the project venv whose site-packages are shared (default /work/venv)
# LTX_MIRROR   bare git mirror of Lightricks/LTX-2 (default /work/.mirror/Lightricks+LTX-2/repo), HEAD 400fd31
set -euo pipefail

SIDE_ENV=${SIDE_ENV:-/work/side25}
SIDE_SRC=${SIDE_SRC:-/work/side25-src}
MAIN_VENV=${MAIN_VENV:-/work/venv}
LTX_MIRROR=${LTX_MIRROR:-/work/.mirror/Lightricks+LTX-2/repo}

python3 -m venv "$SIDE_ENV"
main_site=$(echo "$MAIN_VENV"/lib/python3*/site-packages)
side_site=$(echo "$SIDE_ENV"/lib/python3*/site-packages)
# Appended after the side env's own site-packages: side installs (transformers 5.14.1 ...) take precedence.
echo "$main_site" > "$side_site/_main_venv.pth"

rm -rf "$SIDE_SRC" && mkdir -p "$SIDE_SRC"
git -C "$LTX_MIRROR" archive HEAD packages/ltx-core packages/ltx-pipelines | tar -x -C "$SIDE_SRC"
git -C "$LTX_MIRROR" rev-parse HEAD > "$SIDE_SRC/COMMIT"

pip=("$SIDE_ENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# The official pins (ltx-core pyproject): transformers >=5.8,<5.15; 5.14.1 is the release the shared goldens used.
"${pip[@]}" "transformers==5.14.1" accelerate "scipy>=1.14" openimageio cloudpickle
# The Gemma 4 processor (built by the official loader) imports torchvision: the release that pairs with the shared
# torch (torch 2.N <-> torchvision 0.(N+15)), without letting pip replace torch.
tv_minor=$("$SIDE_ENV/bin/python" -c "import torch; print(int(torch.__version__.split('.')[1]) + 15)")
"${pip[@]}" --no-deps "torchvision==0.${tv_minor}.*"
# The official packages are pure Python in a src/ layout: put them on the path (no build backend needed, and
# torch / torchaudio / av stay the main venv's).
printf '%s\n' "$SIDE_SRC/packages/ltx-core/src" "$SIDE_SRC/packages/ltx-pipelines/src" > "$side_site/_ltx_official.pth"

"$SIDE_ENV/bin/python" - <<'PY'
import ltx_core, ltx_pipelines.utils.blocks, torch, torchvision, transformers
print("side env ok: torch", torch.__version__, "transformers", transformers.__version__,
      "ltx_core", ltx_core.__file__)
PY
