"""3D Gaussian Splatting: the model, the training step, strategies, the trainer and file formats."""
