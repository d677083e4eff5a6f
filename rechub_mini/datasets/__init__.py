"""Datasets: the Ali-CCP schema, its loader, a synthetic stand-in and the raw-log preprocessor."""
