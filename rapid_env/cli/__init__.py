"""The console scripts of rapid-env: one module per command, holding its parser and ``main``."""
