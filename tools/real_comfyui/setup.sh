#!/usr/bin/env bash
# A real ComfyUI for tests/test_real_comfyui.py, outside this repository (never committed). Idempotent.
#
#   tools/real_comfyui/setup.sh            # then run the eval line it prints last
#
# Environment (all optional):
#   COMFYUI_GIT     a ComfyUI git repository (bare is fine) to export from
#                   (default /work/.mirror/pollockjj+ComfyUI/repo: ComfyUI 0.8.0 merged with master of 2026-01-07)
#   COMFYUI_REV     the commit to export (default HEAD of COMFYUI_GIT)
#   COMFYUI_DIR     where the ComfyUI tree goes (default /work/comfyui)
#   TORCH_PYTHON    the interpreter whose torch / torchaudio ComfyUI reuses (default: python3 on PATH, i.e. the
#                   pack's venv when it is active); torch is never installed or upgraded here
#
# It makes:
#   $COMFYUI_DIR/          the tree of COMFYUI_REV (files whose blob a partial mirror lacks are left out and named)
#   $COMFYUI_DIR/.venv/    a venv of TORCH_PYTHON's Python where TORCH_PYTHON's site-packages come after the venv's
#                          own (a .pth), so torch / torchaudio and whatever else is there are reused; ComfyUI's other
#                          requirements and the torchvision built for that torch are installed from PyPI, with torch
#                          and torchaudio constrained to the versions found
#   $COMFYUI_DIR/.frontend-latest/
#                          the newest comfyui-frontend-package from PyPI (pip --target), for --front-end-root
set -euo pipefail

COMFYUI_GIT=${COMFYUI_GIT:-/work/.mirror/pollockjj+ComfyUI/repo}
COMFYUI_DIR=${COMFYUI_DIR:-/work/comfyui}
TORCH_PYTHON=${TORCH_PYTHON:-$(command -v python3)}
REV=$(git -C "$COMFYUI_GIT" rev-parse "${COMFYUI_REV:-HEAD}^{commit}")
VENV=$COMFYUI_DIR/.venv
LATEST=$COMFYUI_DIR/.frontend-latest
MARKER=$COMFYUI_DIR/.avgen-export-rev

log() { echo "[real_comfyui] $*" >&2; }

export_tree() {
    if [[ -f $MARKER && $(cat "$MARKER") == "$REV" ]]; then
        log "ComfyUI $REV already exported to $COMFYUI_DIR"
        return
    fi
    log "exporting ComfyUI $REV to $COMFYUI_DIR"
    mkdir -p "$COMFYUI_DIR"
    # A partial mirror may lack some blobs (large files): export every other file, and name those left out.
    local blob path excludes=() wanted=()
    while IFS=$'\t' read -r blob path; do
        if git -C "$COMFYUI_GIT" cat-file -e "$blob" 2>/dev/null; then
            wanted+=("$path")
        else
            excludes+=(":(exclude)$path")
            log "left out (blob not in the mirror): $path"
        fi
    done < <(git -C "$COMFYUI_GIT" ls-tree -r "$REV" |
             awk -F'\t' '{split($1, f, " ")} f[2] == "blob" {print f[3] "\t" $2}')
    # git archive still fails on the excluded missing blobs after writing every other file: check the files instead.
    git -C "$COMFYUI_GIT" archive "$REV" -- . "${excludes[@]}" 2>/dev/null | tar -x -C "$COMFYUI_DIR" || true
    for path in "${wanted[@]}"; do
        [[ -e $COMFYUI_DIR/$path || -L $COMFYUI_DIR/$path ]] || { log "export incomplete: no $path"; exit 1; }
    done
    echo "$REV" > "$MARKER"
}

make_venv() {
    local base torch_site site torch_version audio_version
    base=$("$TORCH_PYTHON" -c 'import sys; print(sys._base_executable)')
    torch_site=$("$TORCH_PYTHON" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
    torch_version=$("$TORCH_PYTHON" -c 'from importlib.metadata import version; print(version("torch"))')
    audio_version=$("$TORCH_PYTHON" -c 'from importlib.metadata import version; print(version("torchaudio"))')
    [[ -x $VENV/bin/python ]] || { log "creating $VENV from $base"; "$base" -m venv "$VENV"; }
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # A plain path line: TORCH_PYTHON's site-packages is searched after the venv's own, and its .pth files (such as
    # an editable install of this pack) are not run, so the pack is imported only the way ComfyUI imports it.
    echo "$torch_site" > "$site/zz_reuse_torch_site.pth"
    printf 'torch==%s\ntorchaudio==%s\n' "$torch_version" "$audio_version" > "$VENV/torch-constraints.txt"
    local done_marker=$VENV/.avgen-requirements-done  # the requirements.txt last installed
    if cmp -s "$COMFYUI_DIR/requirements.txt" "$done_marker" &&
        "$VENV/bin/python" -c 'import requests, torchvision' 2>/dev/null
    then
        log "requirements already installed in $VENV"
    else
        log "installing ComfyUI's requirements (torch $torch_version and torchaudio $audio_version reused)"
        # requests: app/frontend_management.py imports it without listing it (older transformers brought it along).
        "$VENV/bin/python" -m pip install --quiet -c "$VENV/torch-constraints.txt" \
            -r "$COMFYUI_DIR/requirements.txt" torchvision requests
        cp "$COMFYUI_DIR/requirements.txt" "$done_marker"
    fi
    "$VENV/bin/python" - "$torch_version" <<'EOF'
import sys
import torch, torchaudio, torchvision
assert torch.__version__.split("+")[0] == sys.argv[1].split("+")[0], (torch.__version__, sys.argv[1])
print(f"[real_comfyui] torch {torch.__version__} torchaudio {torchaudio.__version__} "
      f"torchvision {torchvision.__version__} from {torch.__file__}", file=sys.stderr)
EOF
}

frontend_version_in() {  # the comfyui-frontend-package version installed with pip --target $1, or nothing
    local info
    for info in "$1"/comfyui_frontend_package-*.dist-info; do
        [[ -d $info ]] && basename "$info" .dist-info | cut -d- -f2
    done
    return 0
}

latest_frontend() {
    local newest installed
    newest=$("$VENV/bin/python" -m pip index versions comfyui-frontend-package 2>/dev/null |
             sed -n 's/^comfyui-frontend-package (\(.*\))$/\1/p')
    installed=$(frontend_version_in "$LATEST")
    if [[ -n $installed && ( -z $newest || $installed == "$newest" ) ]]; then
        log "frontend $installed already in $LATEST${newest:+ (the newest)}"
        return
    fi
    log "installing comfyui-frontend-package ${newest:-(newest)} into $LATEST"
    rm -rf "$LATEST"
    "$VENV/bin/python" -m pip install --quiet --no-deps --target "$LATEST" \
        "comfyui-frontend-package${newest:+==$newest}"
}

export_tree
make_venv
latest_frontend
pinned=$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("comfyui-frontend-package"))')
latest=$(frontend_version_in "$LATEST")
log "ComfyUI $(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$COMFYUI_DIR/comfyui_version.py") at $REV;" \
    "frontends: $pinned (ComfyUI's venv), $latest ($LATEST)"
echo "export COMFYUI_DIR=$COMFYUI_DIR COMFYUI_PYTHON=$VENV/bin/python" \
     "AVGEN_FRONTEND_ROOT_LATEST=$LATEST/comfyui_frontend_package/static"
