"""MAHNOB-HCI on disk.

mahnob     session.xml, session ids and file names, the continuous-valence label file
bdf        BioSemi BDF EEG (via MNE) and the Status channel's stimulus onset/offset
video      the frontal camera video (OpenCV): frame reading, 64-fps resampling, face crops
synthetic  a synthetic MAHNOB-HCI written in the real format (the embedded default)
"""
