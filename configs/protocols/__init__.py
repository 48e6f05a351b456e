"""One example config per protocol (`python -m jaxprune.main --config=configs/protocols/NAME.py`)."""
