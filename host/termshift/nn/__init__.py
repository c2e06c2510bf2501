"""Models as quantized graphs: numpy-only graph nodes and execution (graph.py,
im2col.py, artifact.py), and the torch side that builds them (models.py,
train.py, lower.py). Only the torch side imports torch.
"""
