#!/usr/bin/env bash
# Train styles side by side on one GPU machine from a pack made by scripts/pack_for_device.py,
# then score them with benchmarks/quality.py. Run from the repository root; results go to $OUT.
#   MINUTES=6 bash scripts/device_train.sh "starry_night 16,32,64 8 1" "great_wave 16,32,64 8 10"
#   MINUTES=7 STEPS=21000 EXTRA="--lr-decay-start 7800" bash scripts/device_train.sh "starry_night resume"
# Each argument: NAME WIDTHS STYLE_WEIGHT COLOR_WEIGHT, or NAME resume (runs/NAME/checkpoint.safetensors);
# the painting is PACK/styles/NAME.jpg.
set -u
PACK=${PACK:-.devicepack}
OUT=${OUT:-out/device}
MINUTES=${MINUTES:-6}
STEPS=${STEPS:-200000}
EXTRA=${EXTRA:-}
export PYTHONPATH=$PWD STYLIZE_HED_WEIGHTS=$PWD/$PACK/hed_vgg16.h5 PYTHONUNBUFFERED=1
mkdir -p "$OUT" runs
nvidia-smi -L
names=()
for spec in "$@"; do
  read -r name widths style_weight color_weight <<<"$spec"
  names+=("$name")
  if [ "$widths" = resume ]; then
    args=(--resume)
  else
    args=(--widths "$widths" --style-weight "$style_weight" --color-weight "$color_weight" --size 128 --batch 8)
  fi
  python3 -m stylize.cli train "$PACK/styles/$name.jpg" --name "$name" --content-dir "$PACK/content" \
    --steps "$STEPS" --workers 2 --cache-content --max-minutes "$MINUTES" --checkpoint-every 1000 \
    --device cuda "${args[@]}" $EXTRA >>"runs/$name.log" 2>&1 &
done
wait
for name in "${names[@]}"; do grep -E "max-minutes|step [0-9]+000/" "runs/$name.log" | tail -3; done
python3 benchmarks/quality.py --device cuda --size 128 --style-dir "$PACK/styles" --styles "${names[@]}" \
  --json runs/quality.json 2>&1 | tee runs/quality.txt
tar czf "$OUT/results.tgz" runs/*.log runs/quality.* runs/*/sample_*000.jpg \
  $(for n in "${names[@]}"; do echo "weights/$n.safetensors styles/$n.json styles/$n.jpg"; done)
tar cf "$OUT/checkpoints.tar" $(for n in "${names[@]}"; do f=runs/$n/checkpoint.safetensors; \
  [ "$(stat -c %s "$f")" -lt 8000000 ] && echo "$f"; done)
