"""A pretrained sentence encoder (all-MiniLM-L6-v2 by default) fine-tuned with a linear intent head on Banking77.

base_model: finding and loading the pretrained encoder · model: encoder + mean pooling + head ·
batches: tokenised, length-sorted batches · calibration: temperature and out-of-scope threshold ·
checkpoint: $MODEL_DIR/encoder · predictor: inference · train: `bankbot train encoder`.
"""
