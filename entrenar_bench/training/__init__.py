"""Trainer machinery: the Lightning loop set-up, several devices, mid-run checkpoints, peak memory."""
