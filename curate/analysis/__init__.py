"""The analysis stack, one stage a module: backends (detect -> landmarks -> embedding), alignment, pose,
quality and expression. Pure geometry lives here apart from the dataset operations in curate/."""
