"""Standalone modeling code shipped inside exported checkpoints (:func:`adamoe.hf.io.export_remote`).

The two modules here are copied verbatim next to the weights, so ``trust_remote_code=True`` loads an
AdaMoE checkpoint where adamoe is not installed. They must import only torch and transformers (and each
other, relatively) -- never adamoe; tests/hf/test_auto.py checks it. This package imports nothing.
"""
