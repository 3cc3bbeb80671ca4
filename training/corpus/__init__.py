"""The training corpus behind ``rt-data``: clean speech, music, noise textures and rooms, built from what a fresh
machine installs from package registries (:mod:`.build` is the command; :mod:`.items` plans and renders one file)."""
