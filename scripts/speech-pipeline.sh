# The degradations of the speech recipe, shared by scripts/train-default.sh and scripts/gpu-pack.sh.
# Source it, then: speech_pipeline CORPUS_DIR BANDLIMIT_SHARE (speech-monitor was trained with 0.15,
# speech with 0.3). CORPUS_DIR is an `rt-data build` folder (its noise/train and rir/train are read).
speech_pipeline() {
    echo "identity 0.15,maybe 0.3 rir $1/rir/train 0 20,maybe 0.85 noise $1/noise/train -5 25,maybe 0.3 noise synth 0 30,maybe $2 bandlimit 3500 16000,gain -18 6"
}

# The clean material of the speech recipe: speech and (full-band) music, so music is kept. Prints the folder.
speech_mix() {
    local mix="$1/mix-train"
    mkdir -p "$mix"
    ln -sfn "$1/speech/train" "$mix/speech"
    ln -sfn "$1/music/train" "$mix/music"
    echo "$mix"
}
