"""The viewer: a recorded drive or an evaluation folder in Rerun, on one timeline (`drive view`)."""
