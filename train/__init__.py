"""faceset training: shared-encoder face-swap autoencoders (original, LIAE) on exported face-sets."""
