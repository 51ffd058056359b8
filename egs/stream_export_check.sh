#!/usr/bin/env bash
# Checks that a unidirectional model gives the same transcripts every way it can be run: `recur decode`
# (offline), `recur stream` at 10, 37, 160 and 1000 ms chunks, and its export folder (`recur export`)
# through `python -m toolkit.deploy` (whole files and 160 ms chunks) in a Python where importing torch
# fails, and through `recur stream`.
#
#   bash egs/stream_export_check.sh MODEL MANIFEST OUT [DECODING OPTIONS...]
#
# MODEL: an experiment folder; MANIFEST: a .jsonl set; OUT: a folder for the transcripts and the export;
# DECODING OPTIONS: recur decode's (--beam, --lm, --lexicon, --lm-weight, --word-score, --blank-penalty);
# --lm and --lexicon are copied into the export folder. Prints one line per comparison and, last,
# "N of N identical"; exits 1 if any differs.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash egs/stream_export_check.sh MODEL MANIFEST OUT [recur decode options...]" >&2
  exit 2
fi
model=$1 manifest=$2 out=$3
shift 3
decoding=("$@")
export_opts=() deploy_opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --lm|--lexicon) export_opts+=("$1" "$2"); shift 2 ;;
    *) deploy_opts+=("$1"); shift ;;
  esac
done
mkdir -p "$out"
same=0 total=0
compare() {  # compare NAME FILE: FILE against the offline decode
  total=$((total + 1))
  if cmp -s "$out/decode.txt" "$2"; then same=$((same + 1)); echo "identical: $1"; else echo "DIFFERENT: $1 ($2)"; fi
}
recur --threads 1 decode --model "$model" "$manifest" "${decoding[@]}" --out "$out/decode.txt"
for chunk in 10 37 160 1000; do
  recur --threads 1 stream --model "$model" "$manifest" --chunk-ms "$chunk" "${decoding[@]}" --out "$out/stream$chunk.txt"
  compare "recur stream, $chunk ms chunks" "$out/stream$chunk.txt"
done
rm -rf "$out/export"
recur --threads 1 export --model "$model" --out "$out/export" "${export_opts[@]}"
# a sitecustomize that makes importing torch, torchaudio and Lightning fail: the runtime must not need them
blocker=$(mktemp -d)
cat > "$blocker/sitecustomize.py" <<'PY'
import sys


class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchaudio", "lightning", "pytorch_lightning"}:
            raise ImportError(f"{name} is blocked: toolkit.deploy must not need it")


sys.meta_path.insert(0, _NoTorch())
PY
deploy() { PYTHONPATH="$blocker${PYTHONPATH:+:$PYTHONPATH}" python -m toolkit.deploy "$out/export" "$manifest" "$@"; }
deploy "${deploy_opts[@]}" > "$out/deploy.txt"
compare "python -m toolkit.deploy (no torch), offline" "$out/deploy.txt"
deploy --chunk-ms 160 "${deploy_opts[@]}" > "$out/deploy_stream160.txt"
compare "python -m toolkit.deploy --chunk-ms 160 (no torch), streaming" "$out/deploy_stream160.txt"
rm -rf "$blocker"
recur --threads 1 stream --model "$out/export" "$manifest" --chunk-ms 160 "${decoding[@]}" --out "$out/export_stream160.txt"
compare "recur stream --model EXPORT, 160 ms chunks (onnxruntime)" "$out/export_stream160.txt"
echo "$same of $total identical"
[ "$same" -eq "$total" ]
