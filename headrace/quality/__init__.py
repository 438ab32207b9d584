"""Live model quality: ground truth arriving after the inference, joined with captured predictions by a
scheduled quality check, and the labelled production rows retraining learns from (issue 16)."""
