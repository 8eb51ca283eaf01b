"""Closed-loop evaluation: the episode matrix (`plan`), one episode as a job (`episode`), the pool that
runs them (`evaluate`), and what comes out: statistics and report (`report`), plots, overlay videos,
interpretation (PCA, SSIM).
"""
