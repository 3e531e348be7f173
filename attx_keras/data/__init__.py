"""WESAD on disk: the reader (:mod:`.wesad`) and the synthetic writer (:mod:`.synthetic`)."""
