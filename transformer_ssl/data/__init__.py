"""Readers and synthetic writers of the transformer_ssl datasets (AMIGOS, EEG pretraining corpora)."""
