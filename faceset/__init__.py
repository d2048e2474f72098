"""faceset: curate face-sets in FiftyOne, train face-swap models on them, convert video with them."""
__version__ = "0.1.0"
