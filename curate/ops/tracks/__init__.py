"""Who is in each face, over time: shot cuts of a video and face tracks within its shots."""
