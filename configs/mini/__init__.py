"""The CPU mini-reproduction (`make reproduce-mini`): `base.py` and one file per paper."""
