# The speech recipes' clean material and degradations, one definition for the scripts that train or
# pack them. Source it; CORPUS_DIR is an `rt-data build` folder.
#
# The first generation (scripts/train-default.sh reproduces the shipped `speech`, `speech-monitor`):
#   speech_pipeline CORPUS_DIR BANDLIMIT_SHARE   speech-monitor was trained with 0.15, speech with 0.3
#   speech_mix CORPUS_DIR                        TTS speech and music; prints the folder
# The second generation (issue 16; scripts/train-speech.sh, scripts/gpu-pack.sh):
#   speech_erb_pipeline CORPUS_DIR               real and synthetic noise, rooms, band limits
#   speech_erb_mix CORPUS_DIR                    TTS and real voices, and music; prints the folder
#   speech_erb_noise CORPUS_DIR                  synthetic textures, TTS babble, real noises and babble
#                                                (and music-noise: the music as a noise under voices)
#   speech_erb_dataset_args CORPUS_DIR           validation on held-out real speakers (voices/val)
#   speech_voices_mix CORPUS_DIR                 the second lineage's clean material: TTS and real voices only
#   speech_voices_pipeline CORPUS_DIR            its degradations: every window under noise, no untouched pairs,
#                                                no music
#   speech_voices_music_mix CORPUS_DIR           the third lineage's (session 27): the voices and the music once
#   speech_voices_music_pipeline CORPUS_DIR      9 windows in 10 under noise, music under voices, no band limits
#                                                (`speech` is the campaign's network with this one's GRU input)
# speech-restore (issue 17; scripts/train-speech-restore.sh, scripts/gpu-pack.sh --recipe speech-restore):
#   speech_restore_folders CORPUS_DIR            links to the full-band voices (rt-data wide); prints the
#                                                training folder (CORPUS_DIR/restore/train; .../val beside it)
#   speech_restore_pipeline                      low-passes at 3.5-12 kHz, a little noise
#   speech_restore_dataset_args CORPUS_DIR       validation on the full-band voices of held-out speakers
# The `music` model and session 16's restoration trial (issue 17; scripts/train-music.sh):
#   restore_music_folders CORPUS_DIR [all]       full-band voices, a third (all) of the full-band real music, the renders
#   restore_music_pipeline                       more identity and full-band windows than speech-restore's
speech_pipeline() {
    echo "identity 0.15,maybe 0.3 rir $1/rir/train 0 20,maybe 0.85 noise $1/noise/train -5 25,maybe 0.3 noise synth 0 30,maybe $2 bandlimit 3500 16000,gain -18 6"
}

# A folder of links, made only when one is missing (a corpus that is read-only stays untouched).
_speech_links() {
    local folder="$1" name target
    shift
    mkdir -p "$folder"
    while [ $# -gt 0 ]; do
        name="$1" target="$2"
        shift 2
        [ "$(readlink "$folder/$name" 2>/dev/null)" = "$target" ] || ln -sfn "$target" "$folder/$name"
    done
    echo "$folder"
}

# The clean material of the speech recipe: speech and (full-band) music, so music is kept. Prints the folder.
speech_mix() {
    _speech_links "$1/mix-train" speech "$1/speech/train" music "$1/music/train"
}

# Stage 1 (docs/models.md) had identity 0.1: clean music and band-limited speech suffered. Stages 1-3a low-passed
# the input only ("maybe 0.3 bandlimit"), which asks a gains-only model to restore the highs: it boosted the edge of
# the band and band-limited voices lost 0.45 PESQ. Since stage 3b band-limited sources are kept band-limited;
# since stage 3c identity 0.3 (clean music).
# Since stage 5 (session 7) the rooms' target keeps the first 50 ms of reflections ("early 50"): the direct-path
# target asked a gains-only model for what it cannot do (remove reflections inside its own frame), and it
# learnt to turn reverberant speech down instead; the late tail is what it can and should remove.
# Since stage 5b (session 7) music is also noise: 1 window in 4 gets a rendered or real piece under it ("maybe
# 0.25 noise music-noise 0 20"). Trained only to keep music, the model kept every tonal or musical noise
# under a voice too (hum, buzz, sonic-pi samples: docs/models.md, "by noise").
# Since session 11 each stretch of the noise folder plays at a random speed (half to twice) and spectral tilt
# ("vary"): trained on noises of every pitch and colour, the network stopped treating tonal music as noise (real
# produced music 12 -> 27 dB SI-SDR on validation); session 12's shipped `speech` is the mean of weights trained
# with and without it (docs/models.md).
speech_erb_pipeline() {
    echo "maybe 0.3 both bandlimit 3500 16000,identity 0.3,$(_erb_room "$1"),maybe 0.9 $(_erb_noise "$1"),$(_erb_music_noise "$1"),$(_erb_tail)"
}

# The steps the speech lineages share (speech_erb_pipeline above, the voices' and voices-and-music's below).
_erb_room() { echo "maybe 0.3 rir $1/rir/train 0 20 early 50"; }
_erb_noise() { echo "noise $1/noise-train -5 20 vary"; }
_erb_music_noise() { echo "maybe 0.25 noise $1/music-noise 0 20"; }  # needs speech_erb_noise's folders
_erb_tail() { echo "maybe 0.3 noise synth 0 30,gain -18 6"; }

# A third of the real produced music's training files, as links (made once); prints the folder, or nothing (and
# fails) when the corpus has no real music.
_realmusic_third() { [ -d "$1/realmusic/train" ] && _every_third "$1/realmusic/train" "$1/realmusic-third"; }

# Every third file below SRC (sorted paths), as links in the folder DST, made once. Prints DST.
_every_third() {
    local src="$1" dst="$2" i=0 f
    if [ ! -d "$dst" ]; then
        mkdir -p "$dst"
        while IFS= read -r f; do
            [ $((i % 3)) -eq 0 ] && ln -sfn "$f" "$dst/$(echo "${f#"$src"/}" | tr '/' '_')"
            i=$((i + 1))
        done < <(find -L "$src" -type f | LC_ALL=C sort)
    fi
    echo "$dst"
}

speech_erb_mix() {  # its own folder: the first generation's mix-train must not gain the real voices
    # music twice: 5 h of voices left it 11 % of the windows, and clean music suffered (stage 1)
    # three times since stage 3c: stage 3b still took clean music to 27 dB SI-SDR (the bar is 30)
    # since stage 4 (session 6) the third share is real produced music (`realmusic`, when the corpus has it):
    # the renders alone taught nothing about real recordings, which `speech` turned 7 dB down (0.3 dB SI-SDR)
    # since stage 5b (session 7) a third of its files: all of it made music 42 % of the windows (1.6 GB beside
    # 3.5 GB of voices), and the model grew careful with every tonal noise
    local third=music-thrice third_dir="$1/music/train" real
    if real="$(_realmusic_third "$1")"; then
        third=realmusic third_dir="$real"
        rm -f "$1/mix-erb-train/music-thrice" 2>/dev/null || true
    fi
    _speech_links "$1/mix-erb-train" speech "$1/speech/train" voices "$1/voices/train" music "$1/music/train" \
        music-again "$1/music/train" "$third" "$third_dir"
}

speech_erb_noise() {  # prints the main noise folder; also makes music-noise (rendered and real music)
    local music=("rendered" "$1/music/train")
    [ -d "$1/realmusic/train" ] && music+=("real" "$1/realmusic/train")
    _speech_links "$1/music-noise" "${music[@]}" >/dev/null
    _speech_links "$1/noise-train" synthetic "$1/noise/train" recorded "$1/realnoise/train"
}

speech_erb_dataset_args() {
    echo "val_dir=$1/voices/val"
}

# The voices-only lineage (session 22's diagnostic, committed as training/checkpoints/speech-erb-voices.pt): the same
# noises and rooms, but no clean music, no untouched pairs, no band-limited voices and no music under voices. Alone it
# removes more noise and harms music and band-limited voices. Sessions 23-24 shipped `speech` as 85 % the recipe
# above and 15 % this; in sessions 25-26 the recipe above with only the GRU's input projection moved 70 % to this
# (python -m rt_enhance.training.average --layer; docs/models.md, "Session 25"); since session 27 the projection comes
# from the voices-and-music lineage below instead.
speech_voices_mix() {
    _speech_links "$1/mix-voice-only" speech "$1/speech/train" voices "$1/voices/train"
}

speech_voices_pipeline() {  # the same rooms and noises, every window under noise
    echo "$(_erb_room "$1"),$(_erb_noise "$1"),$(_erb_tail)"
}

# speech-restore: voices whose measured content reaches 14 kHz, real (training speakers) and TTS, so that no
# target teaches the model that a voice stops at 8 kHz; validation on the held-out speakers' full-band voices.
# PY (default python3) must import rt_enhance.
speech_restore_folders() {
    "${PY:-python3}" -m rt_enhance.training.corpus.build wide "$1" --into "$1/restore/train" --split train \
        --kinds voices,speech >&2
    "${PY:-python3}" -m rt_enhance.training.corpus.build wide "$1" --into "$1/restore/val" --split val --kinds voices >&2
    echo "$1/restore/train"
}

speech_restore_pipeline() {
    echo "identity 0.1,maybe 0.9 bandlimit 3500 12000,maybe 0.3 noise synth 20 40,gain -12 3"
}

speech_restore_dataset_args() {
    echo "val_dir=$1/restore/val"
}

# The restoration network on music (issue 17; docs/models.md): the `speech-restore` network on the full-band voices,
# the full-band real music excerpts (content to 16 kHz; split by piece) and the FluidSynth renders (dull material,
# which teaches it to leave a quiet top octave alone). Prints the folder of links.
#   restore_music_folders CORPUS_DIR          session 16's trial R (`music-restore-r.pt`): every third excerpt
#   restore_music_folders CORPUS_DIR all      the shipped `music` (session 17): every excerpt, the voices and the
#                                             renders three times each (R's shares, three times the distinct music)
restore_music_folders() {
    speech_restore_folders "$1" >/dev/null
    "${PY:-python3}" -m rt_enhance.training.corpus.build wide "$1" --into "$1/restore-music/train" --split train \
        --kinds realmusic --min-bandwidth 16000 >&2
    if [ "${2:-}" = all ]; then
        _speech_links "$1/restore-mix-all" music "$1/restore-music/train" \
            voices1 "$1/restore/train" voices2 "$1/restore/train" voices3 "$1/restore/train" \
            renders1 "$1/music/train" renders2 "$1/music/train" renders3 "$1/music/train"
        return
    fi
    _every_third "$1/restore-music/train" "$1/restore-mix/music3" >/dev/null
    _speech_links "$1/restore-mix" voices "$1/restore/train" renders "$1/music/train"
}

restore_music_pipeline() {
    echo "identity 0.3,maybe 0.6 bandlimit 3500 12000,maybe 0.3 noise synth 20 40,gain -12 3"
}

# The voices-and-music lineage (session 27; training/checkpoints/speech-erb-df-voicemusic.pt): between the two above.
# The voices-only run's GRU input projection, moved into the campaign's network, took music down 1-4 dB with it: that
# run never heard music. This one hears the music once (renders and a third of the real pieces), mostly under noise
# (its clean target kept), 1 window in 10 untouched, music under voices as noise, and no band limits; since session 27
# the shipped `speech` is the campaign + filter with this run's `gru_in.` at 70 % (docs/models.md, "Session 27").
speech_voices_music_mix() {
    local real=() third
    third="$(_realmusic_third "$1")" && real=(realmusic "$third")
    _speech_links "$1/mix-voice-music" speech "$1/speech/train" voices "$1/voices/train" music "$1/music/train" "${real[@]}"
}

speech_voices_music_pipeline() {
    echo "identity 0.1,$(_erb_room "$1"),maybe 0.9 $(_erb_noise "$1"),$(_erb_music_noise "$1"),$(_erb_tail)"
}
