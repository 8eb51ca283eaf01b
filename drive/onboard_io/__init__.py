"""Real I/O around `drive.onboard.OnboardPolicy`: a camera (or a video file) in, steering commands out on
stdout, UDP or a CAN bus, with a watchdog. Kept apart from `drive/onboard/` so that folder stays copyable
to a board alone; this one adds OpenCV and, for CAN, python-can (`pip install -e '.[car]'`)."""
