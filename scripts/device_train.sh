#!/usr/bin/env bash
# Train side by side on one GPU machine from a pack made by scripts/pack_for_device.py; logs, samples,
# checkpoints and weights come back in $OUT. Run from the repository root. Each argument is one run,
# "NAME|PAINTINGS|OPTIONS" (PAINTINGS: names in PACK/styles; several make a catalogue network). Each run
# exports into its own runs/export-NAME (weights/, styles/; a catalogue's trunk in weights/trunks/) and comes
# back as $OUT/results-NAME.tgz (log, export, last samples), its checkpoint beside it where there is room (a large
# one in parts: cat them back together):
#   MINUTES=6 bash scripts/device_train.sh \
#     "catalogue|starry_night udnie great_wave|--widths 32,64,128 --batch 32 --identity-style" \
#     "great_wave|great_wave|--init weights/great_wave.safetensors --batch 16"
# Every run trains towards OPTIONS' --steps (default 200,000) and stops at MINUTES, its learning rate
# decaying over the second half of whichever comes first.
set -u
PACK=${PACK:-.devicepack}
OUT=${OUT:-out/device}
MINUTES=${MINUTES:-6}
DEVICE=${DEVICE:-cuda}
export PYTHONPATH=$PWD STYLIZE_HED_WEIGHTS=$PWD/$PACK/hed_vgg16.h5 PYTHONUNBUFFERED=1
mkdir -p "$OUT" runs
nvidia-smi -L 2>/dev/null
grep -m1 "model name" /proc/cpuinfo
names=()
for spec in "$@"; do
  IFS='|' read -r name paintings options <<<"$spec"
  names+=("$name")
  files=()
  for painting in $paintings; do files+=("$PACK/styles/$painting.jpg"); done
  # shellcheck disable=SC2086  # OPTIONS are words on purpose
  python3 -m stylize.cli train "${files[@]}" --name "$name" --content-dir "$PACK/content" --device "$DEVICE" \
    --cache-content --max-minutes "$MINUTES" --steps 200000 --lr-decay-start 100000 --checkpoint-every 500 \
    --style-size 1024 --export-to "runs/export-$name" $options >"runs/$name.log" 2>&1 &
done
wait
for name in "${names[@]}"; do echo "== $name"; grep -v "^step" "runs/$name.log" | tail -5; grep "^step" "runs/$name.log" | tail -1; done
# what comes back is capped (16 MiB a file, 64 MiB in all): every run's results first, then the checkpoints
# (weights and Adam state, for --resume) while there is room, a large one in parts
for name in "${names[@]}"; do
  tar czf "$OUT/results-$name.tgz" "runs/$name.log" "runs/export-$name" $(ls runs/"$name"/sample_*.jpg 2>/dev/null | tail -2)
done
for name in "${names[@]}"; do
  checkpoint=runs/$name/checkpoint.safetensors
  if [ $(( $(du -sb "$OUT" | cut -f1) + $(stat -c %s "$checkpoint") )) -gt $((60 * 2**20)) ]; then
    echo "no room to return $checkpoint"
  elif [ "$(stat -c %s "$checkpoint")" -gt 15000000 ]; then split -b 15M "$checkpoint" "$OUT/$name.checkpoint.part-"
  else cp "$checkpoint" "$OUT/$name.checkpoint.safetensors"; fi
done
ls -l "$OUT"
