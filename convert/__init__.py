"""Apply a trained model to videos and images: find, align, swap, colour-match, blend, write."""
